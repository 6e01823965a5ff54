"""The ceiling our own code allows: a plain aiokafka loop that runs the worker's pure steps
(``streams.flow.process``) over the raw topic, keeps the entries in a dict, and produces the
same output records (state, transition, and a changelog record per payment per batch) with
acks=all, awaiting them per batch as the worker does. No Faust, no RocksDB.

Run as ``python -m bench.domain_loop BOOTSTRAP TOPIC EXPECTED``; prints ``rate <events/s>
cpu <cores busy>`` on stderr once it has read EXPECTED records (timed from the first).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from domain.records import Entry
from streams import flow


async def run(bootstrap: str, topic: str, expected: int) -> tuple[float, float]:
    tag = uuid.uuid4().hex[:8]
    outs = {k: f"bench.domain.{k}.{tag}" for k in ("state", "transitions", "changelog", "dlq")}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(t, 4, 1) for t in outs.values()])
    await admin.close()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"domain-{tag}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, max_batch_size=512 * 1024
    )
    await consumer.start()
    await producer.start()
    table: dict[bytes, Entry] = {}
    seen, started, cpu0 = 0, 0.0, 0.0
    try:
        while seen < expected:
            got = await consumer.getmany(timeout_ms=1000, max_records=500)
            messages = [m for records in got.values() for m in records]
            if not messages:
                continue
            if not seen:
                started, cpu0 = time.perf_counter(), time.process_time()
            out = flow.process(
                messages,
                lambda key, _m: table.get(key) or Entry(),
                7 * 24 * 3600 * 1000,
                512 * 1024,
                int(time.time() * 1000),
            )
            sent = [await producer.send(outs["dlq"], v, key=k) for k, v in out.dead]
            for key, w in out.payments.items():
                table[key] = w.entry
                if w.value is not None:
                    sent.append(await producer.send(outs["changelog"], w.value, key=key))
                sent.append(await producer.send(outs["state"], w.snapshot, key=key))
            sent += [await producer.send(outs["transitions"], v, key=k) for k, v in out.transitions]
            await producer.flush()
            await asyncio.gather(*sent)
            await consumer.commit()
            seen += len(messages)
        elapsed = time.perf_counter() - started
        return seen / elapsed, (time.process_time() - cpu0) / elapsed
    finally:
        await producer.stop()
        await consumer.stop()


def main() -> None:
    bootstrap, topic, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rate, cpu = asyncio.run(run(bootstrap, topic, expected))
    os.write(2, f"rate {rate:.1f} cpu {cpu:.3f}\n".encode())


if __name__ == "__main__":
    main()
