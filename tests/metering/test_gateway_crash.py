"""Completeness end to end: `corral serve` (simulated providers, ledger on PostgreSQL)
under client load is SIGKILLed and restarted, or loses its database mid-load (a loopback
proxy is cut and restored). Afterwards every request a client saw succeed has exactly
one ledger row, and no row is duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from gateway.metering.sql import SqlStore
from gateway.metering.tables import attempt_table, request_table
from tests.metering.pg import PORT, pg_url
from tests.metering.proxy import CuttableProxy
from tests.support import free_port, wait_ready

BODY = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}


class Load:
    """Client threads posting chat requests; remembers the request ids that succeeded."""

    def __init__(self, url: str, threads: int = 4) -> None:
        self.url = url
        self.succeeded: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(threads)]

    def _client(self) -> None:
        with httpx.Client(timeout=10) as client:
            for _ in range(2000):
                if self._stop.is_set():
                    return
                try:
                    response = client.post(self.url + "/v1/chat/completions", json=BODY)
                except httpx.HTTPError:
                    time.sleep(0.02)
                    continue
                if response.status_code == 200:
                    with self._lock:
                        self.succeeded.add(response.headers["x-corral-request-id"])

    def count(self) -> int:
        with self._lock:
            return len(self.succeeded)

    def wait_for(self, successes: int, limit_s: float = 60) -> None:
        deadline = time.monotonic() + limit_s
        while self.count() < successes:
            if time.monotonic() > deadline:
                pytest.fail(f"only {self.count()} of {successes} requests succeeded")
            time.sleep(0.02)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def halt(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def __exit__(self, *_: object) -> None:
        self.halt()


@contextmanager
def gateway(workdir: Path, database_url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": database_url, "CORRAL_CONFIG": "", "CORRAL_AUTH": "off"}
    command = [sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=workdir, env=env)
    wait_ready(f"http://127.0.0.1:{port}", process)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(20)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Graceful stop; uvicorn re-raises SIGTERM once it has shut down, hence -15."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) in {0, -signal.SIGTERM}


def _ledger(url: str) -> tuple[set[str], int, int]:
    store = SqlStore(url)
    with store.engine.connect() as conn:
        ids = set(conn.execute(select(request_table().c.request_id)).scalars())
        requests = conn.execute(select(func.count()).select_from(request_table())).scalar_one()
        finals = conn.execute(
            select(func.count()).select_from(attempt_table()).where(attempt_table().c.final)
        ).scalar_one()
    store.close()
    return ids, int(requests), int(finals)


def _assert_complete(url: str, succeeded: set[str]) -> None:
    ids, requests, finals = _ledger(url)
    assert succeeded <= ids, f"{len(succeeded - ids)} successful requests have no ledger row"
    assert requests == len(ids) == finals


def test_sigkill_mid_load_then_restart(pg_schema_url: str, tmp_path: Path) -> None:
    port = free_port()
    with Load(f"http://127.0.0.1:{port}") as load:
        with gateway(tmp_path, pg_schema_url, port) as first:
            load.wait_for(100)
            first.send_signal(signal.SIGKILL)
            first.wait(20)
        seen_before_kill = load.count()
        with gateway(tmp_path, pg_schema_url, port) as second:
            load.wait_for(seen_before_kill + 100)
            load.halt()
            stop(second)
    _assert_complete(pg_schema_url, load.succeeded)


def test_postgres_lost_mid_load_then_back(pg_database: str, pg_schema_url: str, tmp_path: Path) -> None:
    proxy = CuttableProxy(PORT)
    proxy.start()
    schema = pg_schema_url.rsplit("%3D", 1)[1]
    port = free_port()
    try:
        url = pg_url(pg_database, schema, port=proxy.port)
        with gateway(tmp_path, url, port) as process, Load(f"http://127.0.0.1:{port}") as load:
            load.wait_for(100)
            proxy.cut()
            load.wait_for(load.count() + 200)
            proxy.start()
            load.wait_for(load.count() + 100)
            load.halt()
            stop(process)
    finally:
        proxy.cut()
    _assert_complete(pg_schema_url, load.succeeded)
