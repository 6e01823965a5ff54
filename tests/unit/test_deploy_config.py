"""deploy/ and docker-compose.yml agree with each other and with config/compose.toml: Grafana's
data sources, its dashboards' references, Prometheus' scrape targets."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_grafana_datasources_point_at_the_compose_services() -> None:
    doc = load_yaml(GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml")
    by_type = {d["type"]: d for d in doc["datasources"]}
    ch = by_type["grafana-clickhouse-datasource"]
    assert ch["jsonData"]["host"] == "clickhouse" and ch["jsonData"]["protocol"] == "http"
    assert ch["jsonData"]["port"] == 8123
    assert by_type["prometheus"]["url"] == "http://prometheus:9090"


def test_every_dashboard_panel_uses_a_provisioned_datasource() -> None:
    doc = load_yaml(GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml")
    uids = {d["uid"] for d in doc["datasources"]}
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert len(files) >= 2
    for f in files:
        dash = json.loads(f.read_text())
        assert dash["uid"] and dash["panels"]
        for panel in dash["panels"]:
            assert panel["datasource"]["uid"] in uids, (f.name, panel["title"])
            for t in panel["targets"]:
                assert t["datasource"]["uid"] in uids, (f.name, panel["title"])
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "pipeline.yaml")
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_compose_runs_grafana_with_the_plugin_and_prometheus_with_its_config() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    grafana = compose["services"]["grafana"]
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert mounts["./deploy/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    for host_path in mounts:
        if host_path.startswith("./"):
            assert (ROOT / host_path).exists(), host_path
    prom = compose["services"]["prometheus"]
    assert any(v.startswith("./deploy/prometheus.yml:") for v in prom["volumes"])


def test_prometheus_scrapes_the_ports_the_compose_config_sets() -> None:
    cfg = tomllib.loads((ROOT / "config" / "compose.toml").read_text())
    want = {
        "ingest": f"ingest:{cfg['ingest']['metrics_port']}",  # never its public port
        "streams": f"streams:{cfg['streams']['metrics_port']}",
        "sinks": f"sinks:{cfg['sinks']['metrics_port']}",
        "notify": f"notify:{cfg['notify']['metrics_port']}",
    }
    hosts = {cfg[s]["metrics_host"] for s in ("ingest", "streams", "sinks", "notify")}
    assert hosts == {"0.0.0.0"} and cfg["ingest"]["metrics_port"] != cfg["ingest"]["port"]
    prom = load_yaml(ROOT / "deploy" / "prometheus.yml")
    got = {j["job_name"]: j["static_configs"][0]["targets"][0] for j in prom["scrape_configs"]}
    assert got == want


def test_counter_panels_show_zero_rather_than_no_data() -> None:
    """A counter with no samples yet (no dead letter, no retry) reads 0 on a clean stack."""
    for f in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(f.read_text())["panels"]:
            exprs = [t.get("expr", "") for t in panel["targets"]]
            if any(re.search(r"rate\(pipeline_\w+_total\[", e) for e in exprs):
                assert all(e.endswith(" or vector(0)") for e in exprs), (f.name, panel["title"])
                assert panel["fieldConfig"]["defaults"]["noValue"] == "0", panel["title"]
            sql = " ".join(t.get("rawSql", "") for t in panel["targets"])
            if re.search(r"\b(count|uniqExact|sum)\w*\(", sql) and "latency" not in sql:
                assert panel["fieldConfig"]["defaults"].get("noValue") == "0", panel["title"]
