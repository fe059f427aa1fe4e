"""Where the test PostgreSQL is, and URLs into throwaway databases and schemas on it."""

from __future__ import annotations

import os
from urllib.parse import quote

import psycopg

HOST = os.environ.get("CORRAL_TEST_PGHOST", "127.0.0.1")
PORT = int(os.environ.get("CORRAL_TEST_PGPORT", "5432"))
USER = os.environ.get("CORRAL_TEST_PGUSER", "postgres")
PG_ADMIN = f"{USER}@{HOST}:{PORT}/test"


def admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    """Autocommit connection to the `test` database."""
    return psycopg.connect(host=HOST, port=PORT, user=USER, dbname="test", autocommit=True, connect_timeout=5)


def pg_url(database: str, schema: str | None = None, *, driver: bool = True, port: int = PORT) -> str:
    scheme = "postgresql+psycopg" if driver else "postgresql"
    url = f"{scheme}://{USER}@{HOST}:{port}/{database}"
    if schema:
        url += "?options=" + quote(f"-csearch_path={schema}")
    return url
