"""Shared plumbing of the checkout pipeline: settings, topic names, the raw-record envelope."""
