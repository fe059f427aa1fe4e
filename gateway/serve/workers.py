"""`corral serve --workers N`: N uvicorn worker processes share one listening socket.

uvicorn spawns each worker as a fresh interpreter that imports `create_worker_app` and
calls it, so every worker builds its own runtime (adapters, ledger writer, key cache,
shared-state link) and nothing is inherited by fork. Settings reach the workers the way
they reach a single process: through the environment (`serve` exports its command-line
choices as the matching variables first). Per worker:

- the ledger: one writer each, rows idempotent by request id (ids carry a per-process prefix);
- the usage journal: a slot of its own (`claim_journal`), never one file for two processes;
- the demo key: created once by the parent before the workers start (workers only find it);
- metrics: each worker writes its counters to its own files in the directory the
  supervisor prepared (`gateway.telemetry.multiproc`), and any worker's `/metrics` sums
  every worker's; live routing state is the answering worker's own view.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from gateway.api.asgi import FastPath
from gateway.config import Settings, load_settings
from gateway.keys.access import Access
from gateway.keys.store import KeyStore
from gateway.metering.journal import claim_journal
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.runtime import Runtime, ledger_store
from gateway.serve.app import create_app
from gateway.serve.process import tune_gc
from gateway.telemetry.logs import configure_logging

log = logging.getLogger("corral")

WORKERS_ENV = "CORRAL_WORKERS"
LOG_LEVEL_ENV = "CORRAL_LOG_LEVEL"
LOG_FORMAT_ENV = "CORRAL_LOG_FORMAT"
#: How long the supervisor waits for a worker to answer its liveness ping before killing it
#: and starting another. uvicorn's default (5 s) is shorter than a fresh worker takes to
#: import the gateway on a busy machine, which made it kill every worker in a loop.
HEALTHCHECK_TIMEOUT_S = 30


def export_choices(
    *,
    workers: int,
    config: Path | None,
    policy: Path | None,
    no_auth: bool,
    log_level: str,
    log_format: str,
) -> None:
    """Put `serve`'s command-line choices where the spawned workers read them."""
    os.environ[WORKERS_ENV] = str(workers)
    os.environ[LOG_LEVEL_ENV] = log_level
    os.environ[LOG_FORMAT_ENV] = log_format
    if config is not None:
        os.environ["CORRAL_CONFIG"] = str(config.resolve())
    if policy is not None:
        os.environ["CORRAL_POLICY"] = str(policy.resolve())
    if no_auth:
        os.environ["CORRAL_AUTH"] = "off"


def create_worker_app() -> FastPath:
    """uvicorn's app factory, called once in each worker process."""
    configure_logging(os.environ.get(LOG_LEVEL_ENV, "info"), os.environ.get(LOG_FORMAT_ENV, "json"))
    settings = load_settings()
    runtime = Runtime.from_settings(settings)
    journal = claim_journal(
        Path(settings.journal_path),
        int(os.environ.get(WORKERS_ENV, "1")),
        settings.journal_durability,
        settings.journal_fsync_ms,
    )
    runtime.sink = QueueSink(ledger_store(settings), journal)
    log.info("worker %d: usage journal %s", os.getpid(), journal.path)
    app = create_app(runtime)
    tune_gc()
    return app


def prepare_keys(settings: Settings) -> None:
    """Create the demo key, when one is due, before the workers start: N workers starting
    together would each find no key and create one of their own."""
    if settings.auth and not settings.api_keys:
        asyncio.run(_prepare_keys(settings))


async def _prepare_keys(settings: Settings) -> None:
    ledger = SqlStore(settings.database_url)
    access = Access(settings)
    access.use_store(lambda: KeyStore(ledger.engine, ledger.ensure_schema), owned=False)
    try:
        await access.start()
    finally:
        await access.close()
        ledger.close()
