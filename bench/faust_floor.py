"""The framework's own ceiling: a Faust agent that only decodes each raw webhook, as the raw
consumer does. Run as ``python -m bench.faust_floor BOOTSTRAP TOPIC EXPECTED``; it writes
``rate <events/s>`` to stderr once it has read EXPECTED records (timed from the first)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from urllib.parse import parse_qsl

import faust
import orjson

from bench import common
from streams.faust_app import StreamWorker


def main() -> None:
    bootstrap, topic_name, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    app = faust.App(
        f"floor-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=False,
        logging_config=None,
        datadir=os.path.join(common.BENCH_RUN, "faust-floor"),
    )
    topic = app.topic(topic_name, key_type=bytes, value_type=bytes, value_serializer="raw")
    seen, started = 0, 0.0

    @app.agent(topic)
    async def decode(stream: faust.StreamT[bytes]) -> None:
        nonlocal seen, started
        async for value in stream:
            if not seen:
                started = time.perf_counter()
            if value[:1] == b"{":
                orjson.loads(value)
            else:
                parse_qsl(value.decode(), strict_parsing=True)
            seen += 1
            if seen == expected:
                rate = (expected - 1) / (time.perf_counter() - started)
                os.write(2, f"rate {rate:.1f}\n".encode())

    StreamWorker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
