"""The `corral` command: `corral serve`, and the operator tools that grow around it."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.cli.catalogue import catalogue_app
from gateway.cli.keys import keys_app
from gateway.cli.policy import policy_app
from gateway.cli.report import prices_command, reconcile_command, reconcile_epilog, report_app
from gateway.cli.simulate import simulate_command
from gateway.config import ConfigError, Settings, load_settings
from gateway.serve.process import UVICORN_OPTIONS, tune_gc

app = typer.Typer(
    help="Corral: one OpenAI-compatible endpoint for Llama 4, routed across backends.", no_args_is_help=True
)


@app.callback()
def _root() -> None:
    """Corral gateway tools."""


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML config file (providers, pool, catalogue).")
    ] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Routing policy file.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    log_format: Annotated[str, typer.Option(help="json (one object per line) or text.")] = "json",
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Turn authentication off (every caller is admin; logged loudly).")
    ] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes sharing the port, each with its own runtime.")
    ] = 1,
) -> None:
    """Start the gateway."""
    import uvicorn

    from gateway.catalogue.deployments import CatalogueError
    from gateway.catalogue.prices import PriceBookError
    from gateway.routing.policy.load import PolicyError
    from gateway.runtime import Runtime, ledger_sink
    from gateway.serve.app import create_app
    from gateway.telemetry.logs import configure_logging

    configure_logging(log_level, log_format)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"corral: {exc}", err=True)
        raise typer.Exit(2) from exc
    updates: dict[str, object] = {}
    if host:
        updates["host"] = host
    if port:
        updates["port"] = port
    if policy:
        updates["policy_path"] = str(policy)
    if no_auth:
        updates["auth"] = False
    settings = settings.model_copy(update=updates)
    try:
        runtime = Runtime.from_settings(settings)
    except (PolicyError, PriceBookError, CatalogueError) as exc:
        typer.echo(f"corral: cannot start: {exc}", err=True)
        raise typer.Exit(2) from exc
    logging.getLogger("corral").info("ledger: %s", _redact(settings.database_url))
    if workers > 1:
        _serve_workers(
            settings,
            workers,
            config=config,
            policy=policy,
            no_auth=no_auth,
            log_level=log_level,
            log_format=log_format,
        )
        return
    runtime.sink = ledger_sink(settings)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; a drained, clean
    # shutdown is a success, so that re-raised SIGTERM ends the process with status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    tune_gc()
    uvicorn.run(
        create_app(runtime),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,  # keep our handler (JSON lines)
        # On SIGTERM: stop accepting, let in-flight requests and streams finish (up to this
        # deadline), then the lifespan drains the ledger queue before the process exits.
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        **UVICORN_OPTIONS,
    )


def _serve_workers(
    settings: Settings,
    workers: int,
    *,
    config: Path | None,
    policy: Path | None,
    no_auth: bool,
    log_level: str,
    log_format: str,
) -> None:
    """uvicorn's supervisor: it spawns the workers (each builds its runtime, see gateway.serve.workers),
    replaces one that dies, and on SIGTERM stops them all, each draining gracefully."""
    import uvicorn

    from gateway.serve.workers import HEALTHCHECK_TIMEOUT_S, export_choices, prepare_keys
    from gateway.telemetry import multiproc

    export_choices(
        workers=workers, config=config, policy=policy, no_auth=no_auth, log_level=log_level, log_format=log_format
    )
    prepare_keys(settings)
    log = logging.getLogger("corral")
    log.info("metrics: %d workers counted together in %s", workers, multiproc.prepare())
    uvicorn.run(
        "gateway.serve.workers:create_worker_app",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
        timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT_S,
        **UVICORN_OPTIONS,
    )


app.command("simulate")(simulate_command)
app.add_typer(policy_app, name="policy")
app.add_typer(report_app, name="report")
app.add_typer(keys_app, name="keys")
app.add_typer(catalogue_app, name="catalogue")
app.command("prices")(prices_command)
app.command("reconcile", epilog=reconcile_epilog())(reconcile_command)


def _redact(url: str) -> str:
    """A database URL without its password."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{host}"
    return url


def main() -> None:
    app()


if __name__ == "__main__":
    main()
