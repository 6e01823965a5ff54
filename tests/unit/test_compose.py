"""docker-compose.yml, read as Docker Compose would (no Docker engine here): valid against the
compose specification, no start without the secrets of .env, each service's data in its
volume, Kafka replicated so that acks=all means something, and an image that holds every
command of the project and a build context without .venv or .run."""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONFIG = tomllib.loads((ROOT / "config" / "compose.toml").read_text())
SERVICES = ("ingest", "streams", "sinks")


class Refused(Exception):
    """Compose would stop here: a required variable is unset or empty."""


_VAR = re.compile(r"\$(?:\$|\{(\w+)(?:(:?[-?])([^}]*))?\}|(\w+))")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation, over every string of the parsed file: ``$$``,
    ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?err}``,
    ``${VAR?err}``."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        got = env.get(name)
        missing = got is None or (op is not None and op.startswith(":") and got == "")
        if op and op.endswith("?") and missing:
            raise Refused(f"{name}: {arg}")
        if op and op.endswith("-") and missing:
            return arg
        return got or ""

    return _VAR.sub(one, value)


def dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (``#`` comments, optional single or double quotes), as compose reads."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


EXAMPLE = dotenv(ROOT / ".env.example")
FILLED = {
    **{k: f"filled-{k.lower()}" for k in EXAMPLE},
    **{
        k: json.dumps([f"filled-{k.lower()}"])
        for k in EXAMPLE
        if k.endswith(("_SECRETS", "_TOKENS"))
    },
    "STANDARD_SECRETS": json.dumps(["whsec_ZmlsbGVkLXN0YW5kYXJkLXNlY3JldA=="]),
    "JWT_KEYS": json.dumps([{"alg": "HS256", "secret": "filled-jwt-hs256-secret-of-32-bytes!!"}]),
}


def compose_schema() -> dict[str, Any]:
    """The compose specification's JSON schema, as vendored by check-jsonschema (a dev
    dependency; only its data file is used here)."""
    files = importlib.metadata.files("check-jsonschema") or []
    path = next(f for f in files if f.name == "compose-spec.json")
    return dict(json.loads(Path(str(path.locate())).read_text()))


def test_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    for doc in (COMPOSE, interpolate(COMPOSE, FILLED)):
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    bad = interpolate(COMPOSE, FILLED)
    bad["services"]["kafka-1"]["volumes"] = "kafka-1-data:/var/lib/kafka/data"  # not a list
    assert not validator.is_valid(bad)


def test_compose_refuses_to_start_without_each_secret_of_env() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required == set(EXAMPLE), "every secret the file needs is in .env.example"
    assert all(v == "" for v in EXAMPLE.values()), ".env.example ships no value"
    with pytest.raises(Refused):
        interpolate(COMPOSE, EXAMPLE)
    for name in required:
        with pytest.raises(Refused, match=name):
            interpolate(COMPOSE, {**FILLED, name: ""})
    interpolate(COMPOSE, FILLED)  # all set: it starts
    assert ".env" in (ROOT / ".gitignore").read_text().split()


def service_settings(
    service: str, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    svc = interpolate(COMPOSE, env)["services"][service]
    for k in list(os.environ):
        if k.startswith("PIPELINE_"):
            monkeypatch.delenv(k)
    for k, v in svc["environment"].items():
        monkeypatch.setenv(k, str(v))
    monkeypatch.setenv("PIPELINE_CONFIG", str(ROOT / "config" / "compose.toml"))
    return Settings()


@pytest.mark.parametrize("service", SERVICES)
def test_services_take_every_secret_from_env_and_none_from_the_repo(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = service_settings(service, FILLED, monkeypatch)
    p = s.providers
    for name in ("coinbase", "btcpay", "nowpayments", "coinpayments"):
        got = [x.get_secret_value() for x in getattr(p, name).secrets]
        assert got == [f"filled-{name}_secrets"], name
    assert p.coinpayments.merchant_id == "filled-coinpayments_merchant_id"
    assert [x.get_secret_value() for x in p.standard.secrets] == json.loads(
        FILLED["STANDARD_SECRETS"]
    )
    assert p.jwt.keys[0].secret is not None
    assert p.jwt.keys[0].secret.get_secret_value() == "filled-jwt-hs256-secret-of-32-bytes!!"
    assert s.dashboard.token.get_secret_value() == "filled-dashboard_token"
    assert s.clickhouse.password.get_secret_value() == "filled-clickhouse_password"
    assert ":filled-postgres_password@postgres:" in s.postgres.dsn.get_secret_value()
    api = getattr(s, "api", None)  # issue 12's merchant API tokens
    if api is not None:
        assert [t.get_secret_value() for t in api.tokens] == ["filled-api_tokens"]
    env = interpolate(COMPOSE, FILLED)["services"][service]["environment"]
    assert env["PIPELINE_API__TOKENS"] == FILLED["API_TOKENS"]
    # the config file in the image holds no secret at all
    for section in ("coinbase", "btcpay", "nowpayments", "coinpayments", "standard"):
        assert not CONFIG.get("providers", {}).get(section, {}).get("secrets")
    assert "jwt" not in CONFIG.get("providers", {}) and not CONFIG["dashboard"]["token"]
    assert ":" not in CONFIG["postgres"]["dsn"].split("//")[1].split("@")[0], "no password"


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """target -> named volume (bind mounts left out)."""
    out = {}
    for v in service.get("volumes", []):
        source, target = v.split(":")[:2]
        if source in COMPOSE["volumes"]:
            out[target] = source
    return out


#: where each image keeps its data unless told otherwise (the images' documented defaults)
IMAGE_DATA_DIRS = {
    "postgres:15": ("PGDATA", "/var/lib/postgresql/data"),
    "clickhouse/clickhouse-server:25.8": (None, "/var/lib/clickhouse"),
    "grafana/grafana:12.1.1": ("GF_PATHS_DATA", "/var/lib/grafana"),
    "apache/kafka:4.1.1": ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
}


def test_each_service_keeps_its_data_in_its_volume() -> None:
    services = COMPOSE["services"]
    brokers = [n for n in services if n.startswith("kafka-")]
    checked = []
    for name, svc in services.items():
        image = svc.get("image", "")
        if image not in IMAGE_DATA_DIRS or name == "topics":
            continue
        var, default = IMAGE_DATA_DIRS[image]
        data_dir = svc.get("environment", {}).get(var, default) if var else default
        assert data_dir in mounts(svc), f"{name} writes {data_dir}, which is no volume"
        checked.append(name)
    prom = services["prometheus"]
    tsdb = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--storage.tsdb.path="))
    assert tsdb in mounts(prom)
    streams_dir = Path(CONFIG["streams"]["data_dir"])
    assert any(streams_dir.is_relative_to(t) for t in mounts(services["streams"]))
    assert set(brokers) <= set(checked) and {"postgres", "clickhouse", "grafana"} <= set(checked)
    volumes = [v for n in brokers for v in mounts(services[n]).values()]
    assert len(set(volumes)) == len(brokers), "each broker its own volume"


def test_kafka_replication_makes_acks_all_mean_something() -> None:
    services = COMPOSE["services"]
    brokers = {n: s["environment"] for n, s in services.items() if n.startswith("kafka-")}
    assert len(brokers) == 3
    ids = {int(env["KAFKA_NODE_ID"]) for env in brokers.values()}
    assert len(ids) == 3
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in brokers.values()}
    assert voters == {
        ",".join(f"{i}@{n}:9093" for i, n in zip(sorted(ids), sorted(brokers), strict=True))
    }
    rf = CONFIG["topics"]["replication"]
    assert rf == 3
    for env in brokers.values():
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == rf
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == rf
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == rf
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2
        assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    create = services["topics"]["command"][0]
    assert f"--replication-factor {rf}" in create and "min.insync.replicas=2" in create
    assert f"--partitions {CONFIG['topics']['partitions']}" in create
    topics = re.search(r"for t in ([^;]+);", create)
    assert topics is not None
    t = CONFIG["topics"]
    assert topics.group(1).split() == [
        t[k] for k in ("raw", "events", "state", "transitions", "dlq")
    ]
    assert set(CONFIG["kafka"]["bootstrap"].split(",")) == {f"{n}:9092" for n in brokers}


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_image_holds_every_command_of_the_project() -> None:
    copied = set(re.findall(r"^COPY (\S+) \./", (ROOT / "Dockerfile").read_text(), re.M))
    packages = {
        p.rstrip("*") for p in pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    assert packages <= copied, f"not in the image: {packages - copied}"
    for script, target in pyproject()["project"]["scripts"].items():
        assert target.split(".")[0] in copied, script


def test_every_command_imports_without_the_local_stack_extra() -> None:
    """The image installs the project without `[stack]` (chdb): each command must start."""
    modules = [t.split(":")[0] for t in pyproject()["project"]["scripts"].values()]
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'chdb': raise ImportError('no chdb in the image')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for m in {modules!r}: __import__(m)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore's rule: the last pattern that matches decides; ``!`` re-includes."""
    out = False
    for p in patterns:
        neg = p.startswith("!")
        pat = p[1:] if neg else p
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(x, pat) or fnmatch.fnmatch(x, pat.replace("**/", "")) for x in prefixes
        ):
            out = not neg
    return out


def test_the_build_context_leaves_out_venv_run_git_and_secrets() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [x.strip() for x in lines if x.strip() and not x.startswith("#")]
    for path in (
        ".venv/bin/python",
        ".run/stack.env",
        ".git/HEAD",
        ".env",
        "tests/conftest.py",
        "sinks/__pycache__/x.pyc",
    ):
        assert ignored(path, patterns), path
    for src in re.findall(r"^COPY (\S+) ", (ROOT / "Dockerfile").read_text(), re.M):
        for f in [ROOT / src] if (ROOT / src).is_file() else (ROOT / src).rglob("*.py"):
            assert not ignored(str(f.relative_to(ROOT)), patterns), f


def test_clickhouse_credentials_agree_between_server_services_and_grafana() -> None:
    doc = interpolate(COMPOSE, FILLED)["services"]
    server = doc["clickhouse"]["environment"]
    assert "CLICKHOUSE_SKIP_USER_SETUP" not in server  # no password-less default user
    for name in (*SERVICES, "dashboard"):
        env = doc[name]["environment"]
        assert env["PIPELINE_CLICKHOUSE__USERNAME"] == server["CLICKHOUSE_USER"]
        assert env["PIPELINE_CLICKHOUSE__PASSWORD"] == server["CLICKHOUSE_PASSWORD"]
    grafana = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/clickhouse.yaml").read_text()
    )
    ch = next(d for d in grafana["datasources"] if d["uid"] == "pipeline-clickhouse")
    assert ch["jsonData"]["username"] == server["CLICKHOUSE_USER"]
    password = ch["secureJsonData"]["password"].lstrip("$")  # Grafana expands $VAR
    assert doc["grafana"]["environment"][password] == server["CLICKHOUSE_PASSWORD"]


def test_the_dashboard_runs_from_the_same_image_with_only_the_secrets_it_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its own service (decision 0070): same image, its own command and port, on the host's
    loopback only; the database, ClickHouse and token secrets, and no provider secret."""
    services = interpolate(COMPOSE, FILLED)["services"]
    dash, ingest = services["dashboard"], services["ingest"]
    assert (dash["image"], dash["build"]) == (ingest["image"], ingest["build"])
    assert dash["command"] == ["pipeline-dashboard"]
    assert pyproject()["project"]["scripts"]["pipeline-dashboard"] == "dashboard.main:main"
    port = CONFIG["dashboard"]["port"]
    assert CONFIG["dashboard"]["host"] == "0.0.0.0" and port != CONFIG["ingest"]["port"]
    assert dash["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert f"localhost:{port}/health" in dash["healthcheck"]["test"][1]
    assert not [k for k in dash["environment"] if k.startswith("PIPELINE_PROVIDERS__")]
    s = service_settings("dashboard", FILLED, monkeypatch)
    assert not s.providers.coinbase.secrets and not s.providers.jwt.keys
    assert s.dashboard.token.get_secret_value() == "filled-dashboard_token"
    assert [t.get_secret_value() for t in s.api.tokens] == ["filled-api_tokens"]
    assert s.clickhouse.password.get_secret_value() == "filled-clickhouse_password"
    assert ":filled-postgres_password@postgres:" in s.postgres.dsn.get_secret_value()
    assert (s.dashboard.host, s.dashboard.port) == ("0.0.0.0", port)
    with pytest.raises(Refused, match="DASHBOARD_TOKEN"):
        interpolate(COMPOSE, {**FILLED, "DASHBOARD_TOKEN": ""})
