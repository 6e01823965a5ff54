"""JWT-signed generic events: the body is the project's generic event (see ``standard``).

Dedup id: the body's ``id``. The bearer token itself is not kept: it is a credential.
"""

from __future__ import annotations

from domain.providers._json import load_object, text
from domain.providers.standard import generic_event
from domain.records import PaymentEvent, RawWebhook


def normalize(raw: RawWebhook) -> list[PaymentEvent]:
    doc = load_object(raw.body)
    return [generic_event(doc, f"jwt:{text(doc, 'id')}", "jwt")]
