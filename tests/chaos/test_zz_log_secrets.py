"""Last in the chaos suites (the name sorts last): every log line the stack wrote during the
session holds no secret. Scanned: the logs of ingest, streams, sinks, Kafka, Postgres and
ClickHouse (rotated ones too). Searched for: every configured provider secret (and the decoded
Standard Webhooks keys), JWT keys, the dashboard token, database passwords, every bearer token
and every full body of the signed webhooks these suites sent, raw or escaped.

The one intended order dependence between test files (decision 0061): this scan covers what
the session did before it, so it runs last on purpose. It never needs another file to pass: run
alone, it scans the logs of a stack that only started, which must hold no secret either; run
last, it also sees everything the other suites provoked.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.settings import Settings
from stack.launcher import StackInfo
from tests.chaos.probes import SENT_BODIES, SENT_TOKENS

WINDOW = 48  # a needle this long is first looked up by its first WINDOW characters
MIN_BODY = 24  # shorter bodies ("{}") could appear by chance; none of the sent ones is that short


def log_files(stack: StackInfo) -> list[Path]:
    run = Path(stack.run_dir)
    files = {Path(p.log) for p in stack.parts.values() if p.log}
    files |= {f for f in (run / "logs").glob("*") if f.is_file()}
    # Logs a server keeps beside its data, never the data itself. os.walk, not rglob: the
    # servers are still running, and a directory that vanishes mid-walk (ClickHouse's
    # tmp_insert_* parts) is skipped rather than failing the scan.
    for root, dirs, names in os.walk(run):
        dirs[:] = [d for d in dirs if d not in {"data", "streams-data"}]
        files |= {Path(root, n) for n in names if ".log" in n}
    return sorted(f for f in files if f.is_file())


def secrets(settings: Settings) -> dict[str, str]:
    p = settings.providers
    out: dict[str, str] = {}
    for name in ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard"):
        for i, s in enumerate(getattr(p, name).secrets):
            out[f"{name} secret #{i}"] = s.get_secret_value()
    for i, s in enumerate(p.standard.secrets):
        encoded = s.get_secret_value().removeprefix("whsec_")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except binascii.Error:
            continue
        if key.isascii() and key.decode().isprintable():
            out[f"standard key #{i} (decoded)"] = key.decode()
    for i, k in enumerate(p.jwt.keys):
        if k.secret is not None:
            out[f"jwt {k.alg} key #{i}"] = k.secret.get_secret_value()
        if k.public_key_pem:
            lines = [ln for ln in k.public_key_pem.splitlines() if ln and "-----" not in ln]
            out[f"jwt {k.alg} key #{i} (PEM)"] = "".join(lines)[:64]
    out["dashboard token"] = settings.dashboard.token.get_secret_value()
    for i, t in enumerate(settings.api.tokens):
        out[f"API token #{i}"] = t.get_secret_value()
    out["clickhouse password"] = settings.clickhouse.password.get_secret_value()
    out["postgres password"] = urlsplit(settings.postgres.dsn.get_secret_value()).password or ""
    return {label: value for label, value in out.items() if len(value) >= 6}


def spellings(body: bytes) -> set[str]:
    """How a body would look in a log line: as is, JSON-escaped, or as a Python bytes repr."""
    text = body.decode("utf-8", "replace")
    return {
        text,
        json.dumps(text)[1:-1],
        json.dumps(text, ensure_ascii=False)[1:-1],
        repr(body)[2:-1],
    }


def found_in(needles: Iterable[str], haystack: str) -> list[str]:
    """Needles that occur in haystack. Long ones are first looked up by their first WINDOW
    characters among the haystack's windows that start like a needle does, so that thousands
    of bodies are checked against megabytes of logs in a moment; every hit is then exact."""
    needles = set(needles)
    short = {n for n in needles if len(n) < WINDOW}
    long = needles - short
    windows: set[str] = set()
    for start in {n[:2] for n in long}:
        at = haystack.find(start)
        while at != -1:
            windows.add(haystack[at : at + WINDOW])
            at = haystack.find(start, at + 1)
    hits = [n for n in long if n[:WINDOW] in windows and n in haystack]
    return hits + [n for n in short if n in haystack]


def test_no_log_line_holds_a_secret_a_token_or_a_signed_body(
    stack: StackInfo, settings: Settings
) -> None:
    files = log_files(stack)
    names = {f.name for f in files}
    for part in ("ingest", "streams", "sinks", "kafka", "postgres", "clickhouse"):
        assert f"{part}.log" in names, f"no log of {part} in {stack.run_dir}"
    logs = {f: f.read_text(errors="replace") for f in files}
    assert sum(len(t) for t in logs.values()) > 0
    configured = secrets(settings)
    assert configured, "no secret configured: nothing to look for"
    bodies = {s for b in SENT_BODIES if len(b) >= MIN_BODY for s in spellings(b)}
    tokens = set(SENT_TOKENS)
    leaks = []
    for path, text in logs.items():
        for label, value in configured.items():
            if value in text:
                leaks.append(f"{path.name}: {label}")
        leaks += [f"{path.name}: bearer token {t[:12]}..." for t in found_in(tokens, text)]
        leaks += [f"{path.name}: signed body {b[:40]!r}..." for b in found_in(bodies, text)]
    lines = sum(t.count("\n") for t in logs.values())
    assert not leaks, f"{len(leaks)} leaks in {len(files)} logs ({lines} lines): {leaks[:10]}"


def test_the_scan_finds_what_it_looks_for() -> None:
    """Not vacuous: a body is found raw, JSON-escaped and as a bytes repr; so is a token."""
    body = b'{"id":"evt_1","type":"payment.completed","data":{"payment_id":"p-1","amount":"1"}}'
    for line in (
        f"received {body.decode()} from x",
        json.dumps({"event": "oops", "body": body.decode()}),
        f"raw={body!r}",
    ):
        assert found_in(spellings(body), "[INFO] start\n" + line + "\n"), line
    assert found_in(spellings(body), json.dumps({"event": "fine", "id": "evt_1"})) == []
    token = "eyJhbGciOiJIUzI1NiJ9.eyJpYXQiOjE3OTB9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    assert found_in({token}, f"authorization: Bearer {token}") == [token]
