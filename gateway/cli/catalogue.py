"""`corral catalogue check`: the catalogue against what each configured provider lists now."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gateway.catalogue.drift import Drift
from gateway.config import ConfigError, load_settings
from gateway.live.drift import read_listings
from gateway.runtime import Runtime

catalogue_app = typer.Typer(help="The catalogue of deployments and its lifecycle.", no_args_is_help=True)


@catalogue_app.command("check")
def check_command(
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file (providers, catalogue).")] = None,
) -> None:
    """Ask each configured provider which models it serves now (its model listing; Bedrock's
    ListFoundationModels), and report catalogue rows that are gone, Llama 4 model IDs the
    catalogue lacks, and lifecycle dates due within 30 days. Exits 1 when anything drifted."""
    try:
        runtime = Runtime.from_settings(load_settings(config))
    except (ConfigError, ValueError) as exc:
        typer.echo(f"corral catalogue check: {exc}", err=True)
        raise typer.Exit(2) from exc
    drift, checked = asyncio.run(read_listings(runtime))
    if not checked:
        typer.echo("corral catalogue check: no provider is configured (set their credentials first)", err=True)
        raise typer.Exit(2)
    _print(drift, checked)
    raise typer.Exit(0 if drift.clean else 1)


def _print(drift: Drift, checked: list[str]) -> None:
    console = Console()
    table = Table("finding", "provider", "model", "detail", title=f"catalogue check ({', '.join(checked)})")
    for dep in drift.gone:
        table.add_row("gone", dep.provider, dep.model, f"{dep.model_id} is no longer listed")
    for provider, ids in drift.new.items():
        for model_id in ids:
            table.add_row("new", provider, "-", f"{model_id} is listed but not in the catalogue")
    for dep in drift.due:
        assert dep.retired is not None
        table.add_row("due", dep.provider, dep.model, f"retired on {dep.retired.date.isoformat()}")
    for provider in drift.unknown:
        table.add_row("unknown", provider, "-", "its model listing could not be read")
    console.print(table if table.row_count else "no drift: every catalogue row is listed by its provider")
