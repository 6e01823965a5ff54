"""How each real service of the local stack is fetched, initialised and started."""

from __future__ import annotations

import base64
import os
import pwd
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import psutil

from stack.errors import StartError

REPO = Path(__file__).resolve().parent.parent
KAFKA_POM = REPO / "deploy" / "kafka" / "pom.xml"
KAFKA_LIBS = REPO / ".cache" / "kafka-libs"


def ensure_kafka_jars() -> Path:
    """Apache Kafka and its runtime jars from Maven Central (cached in ~/.m2)."""
    if KAFKA_LIBS.is_dir() and any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        return KAFKA_LIBS
    if shutil.which("mvn") is None:
        raise StartError("kafka", "mvn not found (apt-get install maven)")
    failed = copy_maven_jars(KAFKA_POM, KAFKA_LIBS)
    if failed is not None:
        raise StartError("kafka", "could not fetch the Kafka jars with Maven", failed[-3000:])
    return KAFKA_LIBS


def copy_maven_jars(pom: Path, dest: Path) -> str | None:
    """The runtime jars ``pom`` depends on, copied into ``dest`` by Maven (cached in ~/.m2);
    ``dest`` appears only once complete. None, or Maven's output when it failed."""
    tmp = dest.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    done = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={tmp}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return done.stdout + done.stderr
    tmp.rename(dest)
    return None


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise StartError("kafka", "java not found (apt-get install openjdk-17-jre-headless)")
    return path


#: the broker sized for a small machine (2 cores, shared with the whole stack); decision 0018
#: has the measurements and the values for compose and for a cluster. Kafka's defaults are for
#: a dedicated many-core server: 3 network and 8 I/O threads, 10 background threads.
BROKER_TUNING = {
    "num.network.threads": "1",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.replica.fetchers": "1",
    "num.recovery.threads.per.data.dir": "1",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),  # 128 MiB by default
}
#: a fixed, small heap (the broker keeps little on it: records live in the page cache), the
#: serial collector (no GC threads competing for two cores), bounded metaspace and code cache
JVM_OPTIONS = [
    "-Xmx192m",
    "-Xms192m",
    "-XX:+UseSerialGC",
    "-XX:MaxMetaspaceSize=96m",
    "-XX:ReservedCodeCacheSize=64m",
    "-XX:CICompilerCount=2",
    "-Xss512k",
]
#: what the local stack ran before decision 0018, for measuring against
_UNTUNED_JVM = ["-Xmx512m", "-Xms128m", "-XX:+UseSerialGC"]


def _untuned() -> bool:
    """``PIPELINE_STACK_KAFKA=defaults``: Kafka's own thread defaults and the old heap (for
    the benchmark that compares them); anything else: the settings above."""
    return os.environ.get("PIPELINE_STACK_KAFKA", "") == "defaults"


def broker_tuning() -> dict[str, str]:
    return {} if _untuned() else dict(BROKER_TUNING)


def jvm_options() -> list[str]:
    return list(_UNTUNED_JVM if _untuned() else JVM_OPTIONS)


def kafka_command(home: Path, port: int, controller_port: int) -> list[str]:
    """Format the KRaft log dir once, write server.properties; the broker's command line."""
    libs = ensure_kafka_jars()
    home.mkdir(parents=True, exist_ok=True)
    props = home / "server.properties"
    props.write_text(
        "process.roles=broker,controller\nnode.id=1\n"
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n"
        "controller.listener.names=CONTROLLER\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
        f"log.dirs={home / 'data'}\n"
        "num.partitions=1\nauto.create.topics.enable=false\n"
        "offsets.topic.replication.factor=1\noffsets.topic.num.partitions=4\n"
        "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
        "group.initial.rebalance.delay.ms=0\nlog.retention.hours=-1\n"
        + "".join(f"{k}={v}\n" for k, v in broker_tuning().items())
    )
    log4j = home / "log4j2.properties"
    log4j.write_text(
        "rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=OUT\n"
        "appender.out.type=Console\nappender.out.name=OUT\n"
        "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=[%d] %p %m (%c)%n\n"
        "logger.server.name=kafka.server.KafkaRaftServer\nlogger.server.level=INFO\n"
    )
    base = [
        java(),
        *jvm_options(),
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{libs}/*",
    ]
    if not (home / "data" / "meta.properties").exists():
        cluster = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        done = subprocess.run(
            [
                *base,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster}",
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise StartError(
                "kafka",
                "could not format the KRaft log directory",
                (done.stdout + done.stderr)[-3000:],
            )
    return [*base, "kafka.Kafka", str(props)]


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def pg_bin(name: str) -> str:
    for cand in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(cand)
    found = shutil.which(name)
    if found is None:
        raise StartError("postgres", f"{name} not found (apt-get install postgresql)")
    return found


def postgres_home(run_home: Path) -> Path:
    """Where the cluster lives. As root the server runs as ``postgres``, which may not reach a
    run folder under a private directory (``/root``, pytest's tmp): then the cluster lives in
    a folder of its own under /var/tmp, tied to this run folder by a pointer file, and wiped
    when the run folder is new."""
    if os.geteuid() != 0:
        return run_home
    pointer = run_home.with_suffix(".home")
    run_home.mkdir(parents=True, exist_ok=True)
    pw = pwd.getpwnam("postgres")
    os.chown(run_home, pw.pw_uid, pw.pw_gid)
    reachable = subprocess.run(_as_postgres(["test", "-w", str(run_home)]), check=False)
    if reachable.returncode == 0:
        return run_home
    if pointer.exists():
        return Path(pointer.read_text().strip())
    home = Path("/var/tmp/checkout-pipeline-pg") / uuid.uuid4().hex[:12]
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    pointer.write_text(str(home))
    return home


def wait_postmaster_gone(data: Path, timeout: float = 20.0) -> None:
    """A postmaster killed a moment ago exists until it is reaped, and a new server refuses to
    start on its data folder until then ("lock file postmaster.pid already exists")."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).name() != "postgres":
                return  # the pid now belongs to another program
        except psutil.Error:
            return  # gone
        time.sleep(0.1)


def postgres_command(run_home: Path, port: int) -> list[str]:
    """initdb once (as the postgres user when we are root); the server's command line."""
    home = postgres_home(run_home)
    data = home / "data"
    wait_postmaster_gone(data)
    if not (data / "PG_VERSION").exists():
        home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(home, pw.pw_uid, pw.pw_gid)
        done = subprocess.run(
            _as_postgres(
                [
                    pg_bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "pipeline",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise StartError("postgres", "initdb failed", (done.stdout + done.stderr)[-3000:])
    return _as_postgres(
        [
            pg_bin("postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={data}",
            "-c",
            "max_connections=50",
            "-c",
            "shared_buffers=64MB",
        ]
    )


async def create_database(port: int, name: str = "pipeline") -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="pipeline", database="postgres")
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def postgres_ready(port: int) -> bool:
    from stack.proc import run_sync

    run_sync(lambda: create_database(port))
    return True


def clickhouse_command(home: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "stack.chserver", str(port), str(home / "data")]


def http_ok(url: str, expect: str | None = None) -> bool:
    r = httpx.get(url, timeout=1.0)
    return r.status_code == 200 and (expect is None or r.text.strip() == expect)
