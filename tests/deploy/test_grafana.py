"""deploy/grafana: the dashboard compose provisions, and every metric its queries name is in a
real `/metrics` scrape of the running gateway (a renamed metric breaks this test, not the
dashboard an SRE opens during an incident)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from gateway.config import load_settings
from tests.deploy.conftest import ROOT, load_yaml
from tests.support import running_gateway

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "corral.json"
METRIC = re.compile(r"\b(corral_[a-z0-9_]+)")
#: What each exposed family type adds to its name in the samples a query reads.
SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [p for p in panels if p["type"] != "row"]


def _queried() -> set[str]:
    return {name for p in _panels() for t in p["targets"] for name in METRIC.findall(t["expr"])}


def _exposed(text: str) -> set[str]:
    """Every series name the scrape offers, from its TYPE lines (families with no samples yet,
    e.g. no tool call has failed, are still declared)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names |= {name + suffix for suffix in SUFFIXES.get(kind, ("",))}
    return names


def test_every_metric_the_dashboard_queries_is_in_a_real_scrape() -> None:
    with running_gateway(load_settings(env={})) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        chat = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        assert client.post("/v1/chat/completions", json=chat).status_code == 200
        exposed = _exposed(client.get("/metrics").text)
    queried = _queried()
    assert len(queried) >= 15
    assert queried <= exposed, f"the dashboard queries metrics the gateway does not expose: {queried - exposed}"


def test_the_dashboard_covers_what_an_sre_needs() -> None:
    queried = _queried()
    needed = {
        "corral_requests_total",  # requests and errors by reason
        "corral_added_latency_seconds_bucket",
        "corral_time_to_first_token_seconds_bucket",
        "corral_cost_usd_total",  # spend rate
        "corral_breaker_state",
        "corral_ratelimit_cooldown_seconds",
        "corral_pool_replica_running",
        "corral_pool_replica_waiting",
        "corral_ledger_queue_depth",
        "corral_ledger_journal_bytes",
        "corral_tool_validation_total",
    }
    assert needed <= queried, needed - queried
    panels = _panels()
    assert len({p["id"] for p in panels}) == len(panels)
    assert all(t["datasource"]["uid"] == "prometheus" for p in panels for t in p["targets"])


def test_compose_provisions_the_datasource_and_the_dashboard(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    mounts = {str(v).split(":")[0]: str(v).split(":")[1] for v in grafana["volumes"] if str(v).startswith("./")}
    provisioning = Path(mounts["./deploy/grafana/provisioning"])
    dashboards = mounts["./deploy/grafana/dashboards"]
    assert provisioning == Path("/etc/grafana/provisioning")
    (source,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yaml")["datasources"]
    assert source["uid"] == "prometheus" and source["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "corral.yaml")["providers"]
    assert provider["options"]["path"] == dashboards
    assert "prometheus" in grafana["depends_on"]
