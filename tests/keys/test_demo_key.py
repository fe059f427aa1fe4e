"""The demo key is made at most once per database, even when gateways start together on
an empty database: one wins and holds the key, the others report the same key id
without a key they never had. On SQLite and PostgreSQL, with separate connections."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from gateway.config import load_settings
from gateway.keys.access import Access
from gateway.keys.demo import DemoKey, ensure_demo, existing_demo
from gateway.keys.store import KeyStore
from gateway.metering.migrate import alembic_config
from gateway.metering.sql import make_engine
from tests.metering.conftest import ledger_url, pg_database, pg_schema_url

__all__ = ["ledger_url", "pg_database", "pg_schema_url"]  # fixtures shared with tests/metering
RACERS = 4
ROUNDS = 3


def _race(url: str) -> list[DemoKey | None]:
    """RACERS threads, each with its own engine (own connections), released together."""
    stores = [KeyStore.from_url(url) for _ in range(RACERS)]
    stores[0].ensure_schema()
    gate = threading.Barrier(RACERS, timeout=20)

    def create(store: KeyStore) -> DemoKey | None:
        gate.wait()
        return ensure_demo(store)

    try:
        with ThreadPoolExecutor(RACERS) as pool:
            return list(pool.map(create, stores, timeout=60))
    finally:
        for store in stores:
            store.close()


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_creations_make_exactly_one_demo_key(ledger_url: str, round_: int) -> None:
    results = _race(ledger_url)
    assert all(r is not None for r in results)
    made = [r for r in results if r is not None]
    winners = [r for r in made if r.key is not None]
    assert len(winners) == 1
    assert {r.record.key_id for r in made} == {winners[0].record.key_id}
    records = KeyStore.from_url(ledger_url).list()
    assert [r.key_id for r in records] == [winners[0].record.key_id]
    assert records[0].name == "demo" and records[0].scopes == {"admin", "chat", "spend:read"}


def test_no_demo_key_when_keys_exist_and_only_once_ever(ledger_url: str) -> None:
    store = KeyStore.from_url(ledger_url)
    _, own = store.create(team="t", scopes="chat")
    assert ensure_demo(store) is None and existing_demo(store) is None
    assert own.key_id is not None and store.revoke(own.key_id) is not None
    first = ensure_demo(store)
    assert first is not None and first.key is not None and first.record.key_id is not None
    store.revoke(first.record.key_id)
    again = ensure_demo(store)  # revoking the demo key does not make another one
    assert again is not None and again.key is None and again.record.key_id == first.record.key_id
    assert again.record.revoked_at is not None
    assert len(store.list()) == 2


def test_gateways_starting_together_report_the_same_demo_key(
    pg_schema_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(env={"DATABASE_URL": pg_schema_url})
    KeyStore.from_url(pg_schema_url).ensure_schema()
    accesses = [Access(settings), Access(settings)]

    async def start_both() -> None:
        await asyncio.wait_for(asyncio.gather(*(a.start() for a in accesses)), 30)
        for access in accesses:
            await access.close()

    with caplog.at_level(logging.WARNING, logger="corral.keys"):
        asyncio.run(start_both())
    assert accesses[0].demo_key_id is not None
    assert accesses[0].demo_key_id == accesses[1].demo_key_id
    keys = [a.demo_key for a in accesses if a.demo_key is not None]
    assert len(keys) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged.count(keys[0]) == 1 and logged.count("ck_") == 1
    # The other one either lost the race for the demo-key row or, starting a moment later,
    # found the key already there: both say which key it is, neither prints a key.
    assert "created by another gateway process" in logged or "is active (printed when it was created)" in logged
    assert len(KeyStore.from_url(pg_schema_url).list()) == 1


def test_a_demo_key_made_before_the_migration_stays_the_demo_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002_api_keys")
    old = KeyStore(engine, ensure_schema=lambda: None)
    _, demo = old.create(team=None, scopes="admin,chat,spend:read", name="demo")
    store = KeyStore.from_url(url)
    again = ensure_demo(store)
    assert again is not None and again.key is None and again.record.key_id == demo.key_id
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 1
