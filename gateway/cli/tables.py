"""What an offline command (`corral policy explain`, `corral simulate`) routes over: the shipped
catalogue and price book, or, with `--config`, a gateway's own."""

from __future__ import annotations

from pathlib import Path

import typer

from gateway.catalogue.deployments import Catalogue, load_catalogue
from gateway.catalogue.prices import PriceBook, load_price_book
from gateway.config import ConfigError, load_settings
from gateway.providers.registry import specs
from gateway.runtime import routing_tables


def offline_tables(config: Path | None, command: str) -> tuple[Catalogue, PriceBook, frozenset[str]]:
    """Without `config`: the shipped catalogue and price book, every provider Corral knows
    (development-only ones aside) assumed configured. With it: what the gateway with that file
    and this environment routes over (`gateway.runtime.routing_tables`). A config that does not
    load ends `command` with exit 2."""
    if config is None:
        return load_catalogue(), load_price_book(), frozenset(n for n, spec in specs().items() if not spec.dev_only)
    try:
        return routing_tables(load_settings(config))
    except (ConfigError, ValueError, OSError) as exc:
        typer.echo(f"{command}: {config}: {exc}", err=True)
        raise typer.Exit(2) from exc
