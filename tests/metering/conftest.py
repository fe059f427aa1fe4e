"""Ledger fixtures: every store test runs on SQLite and on the machine's PostgreSQL, each
test in a fresh SQLite file or a fresh schema of a throwaway `corral_test_<hex>` database."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from gateway.metering.sql import SqlStore
from tests.metering.pg import PG_ADMIN, admin_connection, pg_url


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of our own for this test run, dropped at the end."""
    name = f"corral_test_{secrets.token_hex(6)}"
    try:
        with admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN} is required for the ledger tests: {exc}")
    yield name
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_schema_url(pg_database: str) -> str:
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_url(pg_database, driver=False), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return pg_url(pg_database, schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("pg_schema_url")
    return url


@pytest.fixture
def store(ledger_url: str) -> Iterator[SqlStore]:
    ledger = SqlStore(ledger_url)
    yield ledger
    ledger.close()
