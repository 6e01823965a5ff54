"""How the Faust process is configured and run: the app's settings, the worker that runs it,
and what happens when an agent fails. The topology (topics, table, agent) is in
``streams.topology``; where the worker reaches into Faust, in ``streams.faust_glue``."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import faust

from pipeline.entry import tune_gc
from pipeline.partitioner import CachedPartitioner
from pipeline.settings import Settings
from streams import READY_LINE
from streams.faust_glue import BatchTable, LeanMonitor, WorkerTransport

log = logging.getLogger("streams")

#: exit status of a worker whose agent failed (EX_SOFTWARE)
EXIT_AGENT_FAILED = 70


def faust_app(settings: Settings) -> faust.App:
    """The app: acks=all, short session and rebalance times, no web server, a table whose
    changelog the worker writes a batch at a time (decision 0150), and the fetch loop of
    decisions 0008 and 0009."""
    s, t = settings.streams, settings.topics
    app = faust.App(
        s.app_id,
        broker=f"kafka://{settings.kafka.bootstrap}",
        store=s.store,
        datadir=s.data_dir,
        topic_partitions=t.partitions,
        topic_replication_factor=t.replication,
        topic_allow_declare=True,
        web_enabled=False,
        producer_acks=-1,
        producer_linger=s.producer_linger_ms / 1000,
        producer_max_batch_size=512 * 1024,
        producer_partitioner=CachedPartitioner(),
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        consumer_auto_offset_reset="earliest",
        table_cleanup_interval=300.0,
        logging_config=None,
        Table=BatchTable,
        monitor=LeanMonitor(),
    )
    transport = WorkerTransport(app.conf.broker_consumer, app)
    transport.gapless_topics = frozenset({t.raw})
    app.transport = transport
    return app


class StreamWorker(faust.Worker):
    """A Faust worker for a service: no terminal spinner (at WARNING and above it turns the
    root logger to DEBUG, and every library then builds debug records), the collector tuned
    once started (``tune_gc``), and one line on stderr when it is ready, whatever the log
    level (the local stack's launcher waits for it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spinner = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        tune_gc()  # after Faust built its services, tables and topics
        os.write(2, f"{READY_LINE}\n".encode())  # below Faust's redirection of sys.stderr


@asynccontextmanager
async def fail_loudly(agent: str) -> AsyncIterator[None]:
    """An agent that fails (a delivery the broker refused, a bug) ends the worker process at
    once with a non-zero status, so that the launcher, compose or Kubernetes restarts it:
    nothing of the failed batch is acked or committed, and the restart resumes from the last
    commit. Faust would otherwise restart the agent alone, or leave the process idling."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        log.critical("agent %s failed, the worker exits: %r", agent, exc, exc_info=exc)
        logging.shutdown()
        os._exit(EXIT_AGENT_FAILED)
