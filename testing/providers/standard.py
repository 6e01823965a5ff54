"""Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` =
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` with the ``whsec_`` key."""

from __future__ import annotations

import base64
import hashlib
import hmac

from testing.builder import Builder, Signing, first_secret
from testing.encode import JSON
from testing.providers import generic
from testing.sample import SampleEvent


def headers(ev: SampleEvent, raw: bytes, signing: Signing) -> dict[str, str]:
    secret = first_secret(signing.providers, ev.provider).decode()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    ts = str(int(signing.when))
    mac = hmac.new(key, f"{ev.event_id}.{ts}.".encode() + raw, hashlib.sha256).digest()
    return {
        "content-type": JSON,
        "webhook-id": ev.event_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


BUILDER = Builder(generic.STATUSES, generic.body, headers)
