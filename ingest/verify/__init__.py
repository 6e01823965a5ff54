"""Signature verifiers: one small class per provider scheme, pure, with an injected clock."""
