"""NOWPayments IPN: ``x-nowpayments-sig`` = hex HMAC-SHA512 over the body re-serialized.

The one documented exception to "verify the raw bytes": the JSON body is parsed, its keys sorted
(nested objects too) and written without spaces. NOWPayments publishes two reference forms that
differ on non-ASCII text and number formatting, so both are accepted (each still needs the secret,
and both encode the same parsed document):

- Python (and PHP) reference: ``json.dumps(msg, separators=(",", ":"), sort_keys=True)``, whose
  default ``ensure_ascii=True`` writes non-ASCII as ``\\uXXXX`` (PHP's ``json_encode`` agrees).
- Node reference: ``JSON.stringify`` of the key-sorted object: raw UTF-8, JavaScript numbers
  (``0.00005`` rather than Python's ``5e-05``, ``5`` rather than ``5.0``).

The Python form is built and checked first; the Node form only when it did not match. Before
either, the work is bounded: an IPN is a flat object of a few dozen fields, so a body over
``MAX_BYTES`` or with more than ``MAX_VALUES`` JSON values (an upper bound counted in C over
the bytes, before any parsing) is refused with 413 without being parsed: an unsigned body
cannot hold the event loop for longer than a real IPN does.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from ingest.verify.base import Headers, SignatureError, any_matches, hmac_hex, require_header

HEADER = "x-nowpayments-sig"
NOT_JSON = "body is not JSON, cannot verify"
MAX_BYTES = 64 * 1024
MAX_VALUES = 2000
TOO_BIG = f"body over {MAX_BYTES} bytes or {MAX_VALUES} JSON values, not verified"
_SURROGATE = re.compile("[\ud800-\udfff]")


class NowPaymentsVerifier:
    kept_headers: tuple[str, ...] = ()

    def __init__(self, secrets: Sequence[str]) -> None:
        self._secrets = [s.encode() for s in secrets]

    def verify(self, body: bytes, headers: Headers) -> None:
        given = require_header(headers, HEADER)
        check_bounds(body)
        for form in (python_form, js_form):  # the second only when the first did not match
            signed = form(body)
            if any_matches(given, (hmac_hex(s, signed, "sha512") for s in self._secrets)):
                return
        raise SignatureError("bad signature")


def check_bounds(body: bytes) -> None:
    """Every JSON value but the document is preceded by one of ``[`` ``{`` ``,`` ``:`` (a
    value in a container: the first after ``[``, the others after ``,``; a member after ``:``),
    so their count plus one bounds the number of values; bytes in strings only add to it."""
    values = 1 + sum(body.count(c) for c in (b"[", b"{", b",", b":"))
    if len(body) > MAX_BYTES or values > MAX_VALUES:
        raise SignatureError(TOO_BIG, 413)


def python_form(body: bytes) -> bytes:
    """Python's and PHP's reference: sorted keys, no spaces, ASCII escapes."""
    try:
        doc = json.loads(body, parse_constant=_reject)
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError included
        raise SignatureError(NOT_JSON, 400) from None


def js_form(body: bytes) -> bytes:
    """Node's reference: ``JSON.stringify`` of the key-sorted object."""
    try:
        doc = json.loads(body, parse_int=float, parse_float=float, parse_constant=_reject)
        return _js(doc).encode()
    except (ValueError, RecursionError):
        raise SignatureError(NOT_JSON, 400) from None


def canonical_forms(body: bytes) -> list[bytes]:
    """The signed strings of both reference implementations; SignatureError if not JSON."""
    return [python_form(body), js_form(body)]


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _js(value: Any) -> str:
    """``JSON.stringify`` of an object whose keys were sorted, as Node writes it."""
    if isinstance(value, dict):
        items = ",".join(f"{_js_str(k)}:{_js(value[k])}" for k in _js_key_order(value))
        return "{" + items + "}"
    if isinstance(value, list):
        return "[" + ",".join(_js(v) for v in value) + "]"
    if isinstance(value, str):
        return _js_str(value)
    if isinstance(value, float):
        return _js_number(value)
    return json.dumps(value)  # true, false, null


def _js_str(text: str) -> str:
    out = json.dumps(text, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)


def _js_key_order(obj: dict[str, Any]) -> list[str]:
    """Array-index keys first in numeric order (JS objects iterate so), then UTF-16 order."""
    index = sorted((k for k in obj if _is_index(k)), key=int)
    rest = sorted((k for k in obj if not _is_index(k)), key=_utf16)
    return index + rest


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")  # byte order = UTF-16 code unit order


def _is_index(key: str) -> bool:
    canonical = key == "0" or key[:1] != "0"
    return key.isascii() and key.isdigit() and canonical and int(key) < 2**32 - 1


def _js_number(x: float) -> str:
    """ECMAScript Number::toString over the shortest round-trip digits (same as Python's repr)."""
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "0"
    if x < 0:
        return "-" + _js_number(-x)
    _, digits_t, exp = Decimal(repr(x)).normalize().as_tuple()
    digits = "".join(map(str, digits_t))
    k = len(digits)
    n = k + int(exp)  # the value is 0.<digits> * 10**n
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
