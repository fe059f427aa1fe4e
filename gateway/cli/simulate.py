"""`corral simulate`: judge policies on a trace before rolling them out."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.cli.tables import offline_tables
from gateway.routing.policy.load import PolicyError, load_policy
from gateway.simulate.runner import PolicyResult, named_providers, simulate
from gateway.simulate.scenario import load_scenario, load_trace

#: Shipped inside the package, so `corral simulate` finds it from any working directory.
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "simulate" / "scenarios" / "outage.yaml"


def _row(r: PolicyResult) -> list[str]:
    served = sum(r.served.values()) or 1
    versus = (r.spend / r.oracle_spend - 1) * 100 if r.oracle_spend else 0
    shares = ", ".join(f"{p} {n / served:.0%}" for p, n in r.served.most_common())
    return [
        r.policy,
        f"{r.spend:.4f}",
        f"{versus:+.1f}%",
        f"{r.percentile(r.ttfts_ms, 50):.0f} / {r.percentile(r.ttfts_ms, 95):.0f}",
        f"{r.percentile(r.ttfts_ms, 99):.0f} / {r.percentile(r.ttfts_ms, 99.9):.0f}",
        f"{r.percentile(r.latencies_ms, 50):.0f} / {r.percentile(r.latencies_ms, 95):.0f}",
        f"{r.slo_met / served:.2%}",
        f"{r.lost} ({r.lost_in_incidents} in incidents)",
        str(r.extra_attempts),
        f"{r.hedged} ({r.hedge_spend:.4f} USD)",
        shares,
    ]


def simulate_command(
    policy: Annotated[list[Path], typer.Option("--policy", help="Policy file; repeat to compare several.")],
    trace: Annotated[Path, typer.Option("--trace", help="Request trace (JSON lines).")],
    scenario: Annotated[Path, typer.Option("--scenario", help="Backend profiles and incidents.")] = DEFAULT_SCENARIO,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="The gateway's config file: its catalogue rows and overrides, price book and pool price."
        ),
    ] = None,
) -> None:
    """Replay a trace through the real router against simulated backends, per policy. The
    scenario decides which backends exist; `--config` gives the deployments' catalogue and
    prices as the gateway with that file (and this environment) would use them."""
    try:
        policies = [load_policy(p) for p in policy]
    except PolicyError as exc:
        typer.echo(f"corral simulate: {exc}", err=True)
        raise typer.Exit(2) from exc
    the_scenario = load_scenario(scenario)
    requests = load_trace(trace)
    catalogue, prices, _ = offline_tables(config, "corral simulate")
    for pol, path in zip(policies, policy, strict=True):
        missing = sorted(named_providers(pol) - set(the_scenario.profiles))
        if missing:
            typer.echo(
                f"corral simulate: warning: {path} names provider(s) the scenario lacks: {', '.join(missing)} "
                "(they serve nothing in this simulation)",
                err=True,
            )
    slo = f"{the_scenario.slo_ttft_ms:g} ms" if the_scenario.slo_ttft_ms is not None else "none"
    table = Table(
        title=f"{len(requests)} requests, scenario {the_scenario.name} dated {the_scenario.today}; SLO: the "
        f"policy's own max_ttft_ms (else the scenario's, {slo}) and max_latency_ms; baseline: per request, "
        "the cheapest deployment whose simulated answer met that SLO (hindsight)"
    )
    for column in (
        "policy",
        "spend USD",
        "vs cheapest meeting SLO",
        "TTFT p50/p95 ms",
        "TTFT p99/p99.9 ms",
        "latency p50/p95 ms",
        "SLO met",
        "lost",
        "extra attempts",
        "hedged (hedge cost)",
        "served by",
    ):
        table.add_column(column)
    for pol, path in zip(policies, policy, strict=True):
        result = asyncio.run(simulate(pol, the_scenario, requests, catalogue, prices))
        result.policy = path.stem
        table.add_row(*_row(result))
    Console(width=200).print(table)
