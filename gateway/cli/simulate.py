"""`corral simulate`: judge policies on a trace before rolling them out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.catalogue.deployments import load_catalogue
from gateway.catalogue.prices import load_price_book
from gateway.routing.policy.load import PolicyError, load_policy
from gateway.simulate.runner import PolicyResult, simulate
from gateway.simulate.scenario import load_scenario, load_trace

DEFAULT_SCENARIO = Path("loadtests/scenarios/outage.yaml")


def _row(r: PolicyResult, slo: float | None) -> list[str]:
    served = sum(r.served.values()) or 1
    versus = (r.spend / r.oracle_spend - 1) * 100 if r.oracle_spend else 0
    shares = ", ".join(f"{p} {n / served:.0%}" for p, n in r.served.most_common())
    return [
        r.policy,
        f"{r.spend:.4f}",
        f"{versus:+.1f}%",
        f"{r.percentile(r.ttfts_ms, 50):.0f} / {r.percentile(r.ttfts_ms, 95):.0f}",
        f"{r.percentile(r.latencies_ms, 50):.0f} / {r.percentile(r.latencies_ms, 95):.0f}",
        f"{r.slo_met / served:.2%}" if slo else "-",
        f"{r.lost} ({r.lost_in_incidents} in incidents)",
        str(r.extra_attempts),
        shares,
    ]


def simulate_command(
    policy: Annotated[list[Path], typer.Option("--policy", help="Policy file; repeat to compare several.")],
    trace: Annotated[Path, typer.Option("--trace", help="Request trace (JSON lines).")],
    scenario: Annotated[Path, typer.Option("--scenario", help="Backend profiles and incidents.")] = DEFAULT_SCENARIO,
) -> None:
    """Replay a trace through the real router against simulated backends, per policy."""
    try:
        policies = [load_policy(p) for p in policy]
    except PolicyError as exc:
        typer.echo(f"corral simulate: {exc}", err=True)
        raise typer.Exit(2) from exc
    the_scenario = load_scenario(scenario)
    requests = load_trace(trace)
    catalogue, prices = load_catalogue(), load_price_book()
    table = Table(
        title=f"{len(requests)} requests, scenario {the_scenario.name} (SLO TTFT {the_scenario.slo_ttft_ms} ms)"
    )
    for column in (
        "policy",
        "spend USD",
        "vs cheapest meeting SLO",
        "TTFT p50/p95 ms",
        "latency p50/p95 ms",
        "SLO met",
        "lost",
        "extra attempts",
        "served by",
    ):
        table.add_column(column)
    for pol, path in zip(policies, policy, strict=True):
        result = asyncio.run(simulate(pol, the_scenario, requests, catalogue, prices))
        result.policy = path.stem
        table.add_row(*_row(result, the_scenario.slo_ttft_ms))
    Console(width=200).print(table)
