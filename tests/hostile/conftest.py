"""A gateway with authentication on, a bootstrap admin key and a real SQLite ledger,
on its built-in simulated providers: the target of the hostile-input suites."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.runtime import Runtime
from tests.support import running_gateway

ADMIN_KEY = "sk-hostile-admin-0123456789"


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@dataclass
class AuthGateway:
    url: str
    runtime: Runtime
    store: SqlStore
    db: Path


@pytest.fixture(scope="module")
def auth_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthGateway]:
    directory = tmp_path_factory.mktemp("hostile")
    db = directory / "ledger.db"
    url = f"sqlite:///{db}"
    store = SqlStore(url)
    sink = QueueSink(store, directory / "usage.journal")
    settings = load_settings(env={"DATABASE_URL": url, "CORRAL_API_KEYS": ADMIN_KEY})
    with running_gateway(settings, sink, auth=True) as (base, runtime):
        yield AuthGateway(base, runtime, store, db)
