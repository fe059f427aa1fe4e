"""`corral simulate` on the shipped scenario: the figures issue #3 promises, from the
real router and dispatch loop in virtual time (seeded, so the run is reproducible)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from gateway.catalogue.deployments import load_catalogue
from gateway.catalogue.prices import load_price_book
from gateway.cli.main import app
from gateway.routing.policy.load import load_policy
from gateway.simulate.runner import simulate
from gateway.simulate.scenario import load_scenario, load_trace

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "loadtests/scenarios/outage.yaml"
TRACE = ROOT / "loadtests/traces/sample.jsonl"
POLICIES = ROOT / "loadtests/scenarios/policies"


def test_cost_first_with_slo_meets_the_targets_through_an_outage() -> None:
    scenario = load_scenario(SCENARIO)
    trace = load_trace(TRACE)
    outage = scenario.profiles["groq"].incidents[0]
    assert any(outage.start_s <= r.t < outage.end_s for r in trace), "the trace covers the outage"
    result = asyncio.run(
        simulate(load_policy(POLICIES / "cost_first_slo.yaml"), scenario, trace, load_catalogue(), load_price_book())
    )
    assert result.requests == len(trace)
    assert result.lost == 0, "no request lost, outage included"
    assert result.slo_met / result.requests >= 0.99
    assert result.spend <= result.oracle_spend * 105 / 100, "within 5% of the cheapest spend meeting the SLO"
    assert result.extra_attempts > 0, "the outage was felt and routed around"


def test_policies_differ_the_way_they_should() -> None:
    scenario = load_scenario(SCENARIO)
    trace = load_trace(TRACE)[:1500]
    catalogue, prices = load_catalogue(), load_price_book()
    cost = asyncio.run(simulate(load_policy(POLICIES / "cost_first.yaml"), scenario, trace, catalogue, prices))
    fast = asyncio.run(simulate(load_policy(POLICIES / "latency_first.yaml"), scenario, trace, catalogue, prices))
    assert cost.spend < fast.spend
    assert fast.percentile(fast.ttfts_ms, 50) < cost.percentile(cost.ttfts_ms, 50)
    assert "deepinfra" in cost.served and "deepinfra" not in fast.served


def test_cli_prints_one_row_per_policy(tmp_path: Path) -> None:
    short = tmp_path / "short.jsonl"
    short.write_bytes(b"\n".join(TRACE.read_bytes().splitlines()[:200]) + b"\n")
    result = CliRunner().invoke(
        app,
        [
            "simulate",
            "--policy",
            str(POLICIES / "cost_first.yaml"),
            "--policy",
            str(POLICIES / "latency_first.yaml"),
            "--trace",
            str(short),
            "--scenario",
            str(SCENARIO),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cost_first" in result.output and "latency_first" in result.output
    assert "200 requests" in result.output
