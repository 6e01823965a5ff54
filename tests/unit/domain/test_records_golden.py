"""The records keep the bytes of the code before ``domain.records`` (decision 0090).

``golden_records.json`` was written by that code (``golden_records_gen``): raw records of
every provider, checkouts (one overruled), every status, amounts absent and odd, times with
offsets and microseconds, duplicates, late and refused events, a table value written before
origins were kept, dead letters with and without key and value. Today's code must write the
same bytes from the same inputs, and read each record back equal.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from domain.dlq import dead_letter
from domain.records import (
    DEAD_LETTER,
    ENTRY,
    SNAPSHOT,
    TRANSITION,
    RawWebhook,
    decode_entry,
    encode,
)
from streams import flow
from tests.unit.domain.golden_records_gen import GOLDEN, NOW_MS, TTL_MS, Msg, run_batches

GOLD: dict[str, Any] = orjson.loads(GOLDEN.read_bytes())


def _store() -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in GOLD["table"].items()}


def _batches() -> list[list[Msg]]:
    return [[Msg.of(m) for m in b["messages"]] for b in GOLD["batches"]]


def test_the_stream_step_writes_the_same_bytes_from_the_same_raw_records() -> None:
    assert run_batches(_store(), _batches()) == GOLD["batches"]


def test_what_the_stream_step_writes_reads_back_equal_to_what_it_held() -> None:
    store = _store()
    checked = 0
    for msgs in _batches():
        out = flow.process(msgs, lambda k, _: decode_entry(store.get(k)), TTL_MS, 1 << 20, NOW_MS)
        for key, w in out.payments.items():
            assert w.entry.state is not None
            assert SNAPSHOT.decode(w.snapshot) == w.entry.state.snapshot()
            if w.value is not None:
                assert decode_entry(w.value) == w.entry
                store[key] = w.value
                checked += 1
    assert checked > 40


def _texts(kind: str) -> list[bytes]:
    out: list[bytes] = []
    for b in GOLD["batches"]:
        got = b[kind]
        rows = got.values() if isinstance(got, dict) else (v for _, v in got)
        out += (v.encode() for v in rows if v is not None)
    return out


@pytest.mark.parametrize(
    ("kind", "decoder"),
    [
        ("values", ENTRY),
        ("snapshots", SNAPSHOT),
        ("transitions", TRANSITION),
        ("dead", DEAD_LETTER),
    ],
)
def test_every_record_decodes_and_encodes_back_to_its_bytes(kind: str, decoder: Any) -> None:
    texts = _texts(kind) + (
        [v.encode() for v in GOLD["table"].values()] if kind == "values" else []
    )
    assert len(texts) > 1
    for raw in texts:
        record = decoder.decode(raw)
        assert encode(record) == raw
        assert decoder.decode(encode(record)) == record


def test_a_value_written_before_origins_were_kept_reads_without_them() -> None:
    (old,) = GOLD["table"].values()
    entry = decode_entry(old.encode())
    assert entry.state is not None and entry.state.events
    assert all(a.origin is None for a in entry.state.events)
    assert encode(entry) == old.encode()


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def test_dead_letters_are_todays_bytes() -> None:
    for case in GOLD["dead_letters"]:
        kw = dict(case["kwargs"])
        kw["key"], kw["value"] = _bytes(kw["key"]), _bytes(kw["value"])
        kw["headers"] = [(k, _bytes(v)) for k, v in kw["headers"]]
        record = dead_letter(**kw)
        assert encode(record) == case["bytes"].encode()
        assert DEAD_LETTER.decode(case["bytes"]) == record


def test_a_raw_webhook_keeps_its_kafka_key_and_headers() -> None:
    for case in GOLD["raw_webhooks"]:
        f = dict(case["fields"], body=_bytes(case["fields"]["body"]))
        raw = RawWebhook(**f)
        headers = [(k, _bytes(v) or b"") for k, v in case["kafka_headers"]]
        assert raw.kafka_key == _bytes(case["kafka_key"])
        assert raw.to_kafka_headers() == headers
        assert RawWebhook.from_kafka(raw.body, headers) == RawWebhook(**{**f, "key": ""})
