"""docs/benchmarks.md from the results of ``make bench``; hand-written notes below NOTES are kept."""

from __future__ import annotations

from typing import Any

from bench.notify_bench import render as notify_render
from bench.rebuild_bench import render as rebuild_render

NOTES = "\n## Reading the figures\n"


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def ingest(i: dict[str, Any]) -> list[str]:
    proc_ = i.get("in_process", {})
    out = [
        "## Ingest",
        "",
        *(
            [
                "The app alone, in process (ASGI called directly, no server, an in-memory "
                f"writer), CPU µs per request over {proc_['requests']:,} signed webhooks of "
                f"every provider: bare Litestar endpoint {proc_['bare']['us_per_request']}, "
                f"ingest {proc_['ingest']['us_per_request']} (signature checks included).",
                "",
            ]
            if proc_
            else []
        ),
        "Signature verification per request, typical 2 KB body (µs):",
        "",
        _row(list(i["verify_us"])),
        "|" + "---|" * len(i["verify_us"]),
        _row(list(i["verify_us"].values())),
        "",
        "Accepted webhooks per second, closed loop with 64 in flight (loadgen on the same machine), "
        "verification on and one Kafka ack (acks=all) per webhook, against a bare Litestar endpoint "
        "that only answers 202, same server and settings:",
        "",
        "| server | bare /s | ingest /s | ingest / bare (target ≥ 60 %) | ingest p50 | ingest p99 "
        "| server CPU µs per request, bare / ingest | load generator µs per request |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, row in i["servers"].items():
        bare, ours = row["bare"], row["ingest"]
        out.append(
            _row(
                [
                    kind,
                    f"{bare['accepted_per_s']:,.0f}",
                    f"{ours['accepted_per_s']:,.0f}",
                    _pct(row["ratio"]),
                    f"{ours['p50_ms']} ms",
                    f"{ours['p99_ms']} ms",
                    f"{bare.get('server_us_per_request', '-')} / "
                    f"{ours.get('server_us_per_request', '-')}",
                    ours.get("loadgen_us_per_request", "-"),
                ]
            )
        )
    return [*out, ""]


def streams(s: dict[str, Any]) -> list[str]:
    return [
        "## Streams",
        "",
        f"{s['events']:,} raw webhooks of every provider (keyed by payment, as ingest writes them) "
        "through one Faust worker (read, normalize, dedupe, state machine; table changelog, state "
        "and transition records, acks awaited), side by side on the same topic with: a raw aiokafka "
        "consumer that only decodes, a Faust agent that only decodes, and a plain aiokafka loop "
        "that runs our pure steps and produces the same records with acks=all (the ceiling of our "
        "own code). CPU µs per webhook = cores busy / rate:",
        "",
        "| raw decode /s | Faust decode only /s | domain loop /s | domain loop µs | worker /s "
        "| worker µs (target ≤ 250) | worker / domain loop (≥ 70 %) | worker / raw (≥ 5 %) "
        "| worker cores | worker RSS |",
        "|---|---|---|---|---|---|---|---|---|---|",
        _row(
            [
                f"{s['raw_consumer_per_s']:,}",
                f"{s.get('faust_decode_only_per_s', 0):,}",
                f"{s.get('domain_loop_per_s', 0):,}",
                s.get("domain_loop_us_per_event", "-"),
                f"{s['worker_per_s']:,}",
                s.get("worker_us_per_event", "-"),
                _pct(s["ratio_to_domain_loop"]) if s.get("ratio_to_domain_loop") else "-",
                _pct(s["ratio"]),
                s.get("worker_cores_busy", "-"),
                f"{s['worker_rss_mib']} MiB",
            ]
        ),
        "",
        f"Dedup ids (kept per payment with their first-seen time): {s['dedup']['memory_mib_per_million']} MiB "
        f"of Python memory and {s['dedup']['disk_mib_per_million']} MiB of RocksDB disk per million ids.",
        "",
    ]


def sinks(k: dict[str, Any]) -> list[str]:
    out = [
        "## Sinks",
        "",
        f"{k['snapshots']:,} state snapshots into Postgres and {k['transitions']:,} transition records into "
        "ClickHouse, through each sink and through its raw driver writing the same rows in the same batches "
        "(asyncpg COPY; clickhouse-connect insert into the same tables and views):",
        "",
        "| batch | Postgres sink /s | COPY /s | ratio | sink p99 flush | ClickHouse sink /s | insert /s | ratio | sink p99 flush |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in k["postgres"]:
        p, c = k["postgres"][size], k["clickhouse"][size]
        out.append(
            _row(
                [
                    size,
                    f"{p['sink']['rows_per_s']:,}",
                    f"{p['driver']['rows_per_s']:,}",
                    _pct(p["ratio"]),
                    f"{p['sink']['p99_flush_ms']} ms",
                    f"{c['sink']['rows_per_s']:,}",
                    f"{c['driver']['rows_per_s']:,}",
                    _pct(c["ratio"]),
                    f"{c['sink']['p99_flush_ms']} ms",
                ]
            )
        )
    if "sink_us_per_row" in next(iter(k["postgres"].values()))["sink"]:
        out += [
            "",
            "CPU µs per record, the sink's own process / the database server's (the ClickHouse "
            "sink looks every key up before its insert):",
            "",
            "| batch | Postgres sink | Postgres COPY | ClickHouse sink | insert |",
            "|---|---|---|---|---|",
        ]
        for size in k["postgres"]:
            p, c = k["postgres"][size], k["clickhouse"][size]

            def cpu(m: dict[str, Any]) -> str:
                return f"{m['sink_us_per_row']} / {m['db_us_per_row']}"

            out.append(
                _row(
                    [
                        size,
                        cpu(p["sink"]),
                        cpu(p["driver"]),
                        cpu(c["sink"]),
                        cpu(c["driver"]),
                    ]
                )
            )
    return [*out, ""]


def e2e(e: dict[str, Any]) -> list[str]:
    return [
        "## End to end",
        "",
        f"The whole stack on this machine, open loop at {e['target_rate']:.0f} webhooks/s for {e['seconds']} s "
        f"after {e.get('warm_s', 0):.0f} s of warm-up at {e.get('warm_rate', 300):.0f} /s "
        "(the broker's JIT) "
        "(loadgen on the same machine):",
        "",
        "| achieved /s | ingest p50 | ingest p99 | payments with a 202, in Postgres | receipt → Postgres p50 | p99 (target ≤ 250 ms at 1,000/s) | max |",
        "|---|---|---|---|---|---|---|",
        _row(
            [
                f"{e['load']['accepted_per_s']:,}",
                f"{e['load']['p50_ms']} ms",
                f"{e['load']['p99_ms']} ms",
                f"{e['payments_in_postgres']:,} / {e['payments']:,}",
                f"{e['receipt_to_postgres_p50_ms']:,} ms",
                f"{e['receipt_to_postgres_p99_ms']:,} ms",
                f"{e['receipt_to_postgres_max_ms']:,} ms",
            ]
        ),
        "",
        *_e2e_details(e),
    ]


def _e2e_details(e: dict[str, Any]) -> list[str]:
    out = []
    if st := e.get("stages"):
        out += [
            "Where that time goes, per payment's final version: receipt → its state record on "
            f"the broker (ingest, Kafka, the stream worker) p50 {st['receipt_to_state_p50_ms']:,} ms, "
            f"p99 {st['receipt_to_state_p99_ms']:,} ms; then → Postgres row "
            f"(the sink's fetch and write) p50 {st['state_to_row_p50_ms']:,} ms, "
            f"p99 {st['state_to_row_p99_ms']:,} ms.",
            "",
        ]
    if "cpu_us_per_webhook" in e:
        out += [
            "CPU µs per accepted webhook, by process: "
            + ", ".join(f"{k} {v}" for k, v in e["cpu_us_per_webhook"].items())
            + f"; the stack without the load generator and the merchant's receiver "
            f"{e['stack_cpu_us_per_webhook']} (target ≤ 1,000).",
            "",
        ]
    out += [
        "Resident memory at the end of the run (MiB, each part with its child processes): "
        + ", ".join(f"{k} {v}" for k, v in e["rss_mib"].items())
        + ".",
        "",
    ]
    if big := e.get("largest_process_rss_mib"):
        out += [
            "The largest single process of each part (MiB; target: none over 300): "
            + ", ".join(f"{k} {v}" for k, v in big.items())
            + ".",
            "",
        ]
    if n := e.get("notifications"):
        out += [
            "Merchant notifications in the outbox at the end, by state (the bench's receiver "
            "answers 204): " + ", ".join(f"{k} {v:,}" for k, v in n.items()) + ".",
            "",
        ]
    if "cores_busy" in e:
        out += [
            "Cores each process kept busy while the load ran (2 cores in all, the load "
            "generator and the receiver of the notifications included): "
            + ", ".join(f"{k} {v}" for k, v in e["cores_busy"].items())
            + f", total {sum(e['cores_busy'].values()):.2f}. After the last request, the "
            f"last payment had its row in Postgres {e.get('drain_s', '?')} s later.",
            "",
        ]
    return out


def ramp(r: dict[str, Any]) -> list[str]:
    out = [
        "## End to end: the sustained rate",
        "",
        f"Open-loop steps of {r['seconds_per_step']} s on one stack warmed for "
        f"{r.get('warm_s', 30):.0f} s at {r.get('warm_rate', 300):.0f} /s, up until receipt → "
        f"Postgres p99 passes {r['p99_limit_ms']} ms or a webhook is refused: sustained "
        f"**{r['sustained_rate']:,.0f} webhooks/s**.",
        "",
        "| offered /s | accepted /s | receipt → Postgres p50 | p99 | stack CPU µs per webhook "
        "| load generator µs | cores busy (stack) | largest process RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for st in r["steps"]:
        cores = sum(v for k, v in st["cores_busy"].items() if k not in ("loadgen", "receiver"))
        big = max(st.get("largest_process_rss_mib", st["rss_mib"]).items(), key=lambda kv: kv[1])
        out.append(
            _row(
                [
                    f"{st['rate']:,.0f}",
                    f"{st['load']['accepted_per_s']:,}",
                    f"{st['receipt_to_postgres_p50_ms']:,} ms",
                    f"{st['receipt_to_postgres_p99_ms']:,} ms",
                    st["stack_cpu_us_per_webhook"],
                    st["cpu_us_per_webhook"].get("loadgen", "-"),
                    f"{cores:.2f}",
                    f"{big[0]} {big[1]} MiB",
                ]
            )
        )
    return [*out, ""]


def page(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {m['date']}: {m['cpu']}, {m['cores']} cores, {m['memory']}, "
        f"Python {m['python']}, kernel {m['kernel']}. The machine is shared and noisy: read the ratios "
        "(measured side by side in one run) rather than the absolute rates. Each part takes under five minutes.",
        "",
    ]
    for name, fn in (
        ("ingest", ingest),
        ("streams", streams),
        ("sinks", sinks),
        ("e2e", e2e),
        ("e2e_ramp", ramp),
        ("e2e_sustained", e2e),
        ("e2e_light", e2e),
        ("notify", notify_render),
        ("rebuild", rebuild_render),
    ):
        part = r.get(name)
        if isinstance(part, dict) and "error" in part:
            out += [f"## {name}", "", f"Failed in this run: {part['error']}", ""]
        elif isinstance(part, dict):
            out += fn(part)
    return "\n".join(out)
