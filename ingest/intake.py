"""Shallow, pure checks of a webhook request before it is written: is it readable at all?

Deep parsing belongs to streams. Here only: the content type fits the provider, and the body
is the kind of document the provider sends (a JSON object, or a form for CoinPayments).
"""

from __future__ import annotations

import orjson

FORM_PROVIDERS = frozenset({"coinpayments"})
JSON_TYPES = ("application/json", "text/json", "application/cloudevents+json")
FORM_TYPES = ("application/x-www-form-urlencoded",)


class Unreadable(ValueError):
    """The body cannot be read as this provider's document: answer 400."""


class WrongMediaType(ValueError):
    """The declared content type is not one this provider sends: answer 415."""


def check_content_type(provider: str, content_type: str | None) -> None:
    """A missing content type is tolerated (some senders omit it); a wrong one is not."""
    if not content_type:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    allowed = FORM_TYPES if provider in FORM_PROVIDERS else JSON_TYPES
    if media not in allowed:
        raise WrongMediaType(
            f"content type {media[:60]!r} not accepted for {provider}; send {allowed[0]}"
        )


def check_readable(provider: str, body: bytes) -> None:
    if not body:
        raise Unreadable("empty body")
    if provider in FORM_PROVIDERS:
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            raise Unreadable("form body is not URL-encoded ASCII") from None
        if "=" not in text:
            raise Unreadable("form body has no fields")
        return
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Unreadable(f"body is not valid JSON: {str(exc)[:80]}") from None
    if not isinstance(doc, dict):
        raise Unreadable("body is not a JSON object")
