"""Hostile input, as Hypothesis strategies: malformed JSON, deep nesting, huge numbers and
strings, odd unicode (escaped lone surrogates, NUL, RTL marks, overlong UTF-8), wrong content
types, forms for JSON providers and JSON for the form provider.

``hostile_document`` plants one hostile value in a provider's own, realistic payload, so that
a correctly signed request gets past the signature check and reaches the parsers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from pipeline.settings import ProviderSettings
from testing.webhooks import SUPPORTED, SampleEvent, signed_request

PROVIDERS = ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard", "jwt")
JSON_PROVIDERS = tuple(p for p in PROVIDERS if p != "coinpayments")
DEEP = 100_000  # nesting depth of the deepest documents (200 kB: under the 256 KiB limit)

#: JSON values as raw text, each hostile in its own way
FRAGMENTS: tuple[bytes, ...] = (
    b'"a\\u0000b"',
    b'"\\u0000"',
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"x\\udc00"',
    b'"\\ud83d\\ude00"',  # a valid pair
    '"\u202eevil\u202c"'.encode(),  # right-to-left override, raw UTF-8
    b'"\\u202e\\u2066\\u200f"',
    b'"\\ufeff\\ufffe\\uffff"',
    b'"\\n\\r\\t\\b\\f"',
    b'"\xc0\xaf"',  # overlong "/"
    b'"\xe0\x80\xaf"',  # overlong, 3 bytes
    b'"\xed\xa0\x80"',  # a surrogate encoded as UTF-8
    b'"\xf4\x90\x80\x80"',  # above U+10FFFF
    b'"\xff\xfe"',
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"9" * 5000,  # 10**5000-ish: over Python's int-from-string limit
    b"-" + b"9" * 5000,
    b"0." + b"0" * 1000 + b"1",
    b"123456789012345678901234567890",
    b"1e18",
    b"99999999999999999999.999999999999999999",
    b"-1",
    b"-0",
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"null",
    b"true",
    b"[]",
    b"{}",
    b'""',
    b'"' + b"x" * 100_000 + b'"',
    b"[" * 2000 + b"]" * 2000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b"[" * 900 + b"1" + b"]" * 900,
    b'"0000-00-00T00:00:00Z"',
    b'"9999-12-31T23:59:59Z"',
    b'"0001-01-01T00:00:00Z"',
    b'"2026-13-45T25:61:61Z"',
    b"253402300800",
    b"-62135596801",
    b"\"' OR '1'='1' --\"",
    b'"1; DROP TABLE transactions; --"',
    b'"../../../../etc/passwd"',
    b'"<script>alert(1)</script>"',
    b'"%00%0d%0a"',
)

#: broken JSON documents, whole
MALFORMED: tuple[bytes, ...] = (
    b"",
    b"{",
    b"}",
    b'{"a":}',
    b'{"a" 1}',
    b"{'a': 1}",
    b'{"a":1,}',
    b'{"a":1}{"b":2}',
    b'{"a":1} trailing',
    b'{"a":"unterminated}',
    b'{"a":"\\x41"}',
    b'{"a":"\\u12"}',
    b"\xef\xbb\xbf{}",  # a BOM
    b"\x00{}",
    b'{"a":01}',
    b'{"a":.5}',
    b'{"a":+1}',
    b'{"a":0x10}',
    b"[]",
    b"null",
    b'"just a string"',
    b"[" * DEEP + b"]" * DEEP,
    b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
    b"[" * DEEP,  # never closed
    b"a=1&b=2",
    b"merchant=x&ipn_id=%00",
    b"<?xml version='1.0'?><a/>",
)

CONTENT_TYPES = (
    None,
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-7",
    "APPLICATION/JSON",
    "text/json",
    "application/cloudevents+json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "text/plain",
    "text/html",
    "application/xml",
    "application/octet-stream",
    "application/json\xe2\x80\xae",  # an RTL mark, as the UTF-8 bytes a sender would put
    "*/*",
    "",
    ";",
    "application/" + "x" * 500,
)

SIGNATURE_HEADERS = (
    "x-cc-webhook-signature",
    "btcpay-sig",
    "x-nowpayments-sig",
    "hmac",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "authorization",
)

#: header values an attacker may send (latin-1 only: HTTP carries bytes, not text)
header_values = st.one_of(
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300),
    st.text(st.characters(min_codepoint=0xA0, max_codepoint=0xFF), max_size=40),
    st.sampled_from(
        [
            "sha256=",
            "v1,",
            "v1," + "A" * 5000,
            "Bearer ",
            "Bearer a.b.c",
            "Bearer eyJhbGciOiJub25lIn0.eyJpYXQiOjB9.",
            "9" * 40,
            "-1",
            "1e400",
        ]
    ),
)


def sample(provider: str, external_id: str, status: str | None = None) -> SampleEvent:
    return SampleEvent(
        provider=provider,
        external_id=external_id,
        status=status or SUPPORTED[provider][1],
        amount=Decimal("12.5"),
        currency="USDC",
        occurred_at=datetime.now(UTC).replace(microsecond=0),
        event_id=f"evt-{external_id}",
        order_id=f"order-{external_id}",
    )


def base_document(provider: str, providers: ProviderSettings, external_id: str) -> Any:
    """The provider's realistic payload as a parsed JSON document (CoinPayments: a dict)."""
    body, _ = signed_request(sample(provider, external_id), providers)
    if provider == "coinpayments":
        from urllib.parse import parse_qsl

        return dict(parse_qsl(body.decode()))
    return json.loads(body)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


_MARK = "@@hostile@@"


def _plant(doc: Any, path: tuple[Any, ...]) -> Any:
    """A copy of ``doc`` with the value at ``path`` replaced by the marker string."""
    if not path:
        return _MARK
    head, rest = path[0], path[1:]
    if isinstance(doc, dict):
        return {k: (_plant(v, rest) if k == head else v) for k, v in doc.items()}
    return [(_plant(v, rest) if i == head else v) for i, v in enumerate(doc)]


@st.composite
def hostile_document(draw: st.DrawFn, provider: str, doc: Any) -> bytes:
    """The provider's payload with one or two hostile values planted (or a key renamed)."""
    if provider == "coinpayments":
        return draw(hostile_form(doc))
    text = json.dumps(doc, separators=(",", ":"))
    for _ in range(draw(st.integers(1, 2))):
        current = json.loads(text)
        planted = json.dumps(_plant(current, draw(st.sampled_from(_paths(current)))))
        fragment = draw(st.sampled_from(FRAGMENTS))
        body = planted.encode().replace(f'"{_MARK}"'.encode(), fragment)
        try:
            text = body.decode()
            json.loads(text)
        except (ValueError, RecursionError):  # invalid UTF-8, or JSON Python cannot read: final
            return body
    return text.encode()


@st.composite
def hostile_form(draw: st.DrawFn, fields: dict[str, str]) -> bytes:
    """A CoinPayments form with hostile values; ``merchant`` stays (it is checked at ingest)."""
    name = draw(st.sampled_from([k for k in fields if k != "merchant"]))
    value = draw(
        st.sampled_from(
            [
                "\x00",
                "a\x00b",
                "\u202eevil",
                "9" * 5000,
                "1e400",
                "-99999",
                "x" * 100_000,
                "NaN",
                "",
                "\ud800",
            ]
        )
    )
    changed = {**fields, name: value}
    body = urlencode(changed, errors="surrogatepass").encode()
    extra = draw(
        st.sampled_from([b"", b"&" + name.encode() + b"=dup", b"&%C0%AF=1", b"&=", b"&&", b"&a"])
    )
    return body + extra


malformed_bodies = st.one_of(
    st.sampled_from(MALFORMED),
    st.binary(max_size=2000),
    st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
        lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids),
        max_leaves=30,
    ).map(lambda d: json.dumps(d).encode()),
)
