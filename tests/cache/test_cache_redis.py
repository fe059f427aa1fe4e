"""With REDIS_URL the cache lives in Redis: two gateway processes (`corral serve`, each with
its own fakes and ledger) share entries, under the configured key prefix and with Redis's
own TTL, and the serving process's ledger (written by its child writer process) records the
hit; a Redis that is away turns lookups into bypasses (`unavailable`), never errors."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from sqlalchemy import select

from gateway.config import load_settings
from gateway.metering.sql import SqlStore
from gateway.metering.tables import request_table
from tests.cache.policy import write_policy
from tests.support import free_port, running_gateway, wait_ready

CHAT = "/v1/chat/completions"
#: A database index of its own, so the gateways' shared breaker state stays out of others' way.
REDIS_URL = "redis://127.0.0.1:6379/14"


def _body(marker: str, team: str) -> dict[str, Any]:
    return {
        "model": "llama-4-scout",
        "messages": [{"role": "user", "content": f"about {marker}"}],
        "max_tokens": 16,
        "temperature": 0,
        "corral": {"tags": {"team": team, "cache": "yes"}},
    }


def _serve(directory: Path, name: str, env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    """A gateway in a directory of its own (its own ledger and usage journal)."""
    port = free_port()
    home = directory / name
    home.mkdir()
    env = {**env, "DATABASE_URL": f"sqlite:///{home / 'ledger.db'}"}
    command = [sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--no-auth"]
    process = subprocess.Popen([*command, "--log-level", "warning"], cwd=home, env=env)
    return f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def prefix() -> Iterator[str]:
    value = f"corral:test-cache:{secrets.token_hex(6)}:"
    yield value
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=value + "*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def two_gateways(tmp_path_factory: pytest.TempPathFactory, prefix: str) -> Iterator[tuple[str, str, Path]]:
    directory = tmp_path_factory.mktemp("cache-redis")
    config = directory / "corral.yaml"
    config.write_text(f"cache_redis_prefix: '{prefix}'\n")
    env = {
        **os.environ,
        "REDIS_URL": REDIS_URL,
        "CORRAL_CONFIG": str(config),
        "CORRAL_POLICY": str(write_policy(directory)),
    }
    (url_a, a), (url_b, b) = _serve(directory, "a", env), _serve(directory, "b", env)
    try:
        wait_ready(url_a, a, seconds=90)
        wait_ready(url_b, b, seconds=90)
        yield url_a, url_b, directory
    finally:
        for process in (a, b):
            process.terminate()
        for process in (a, b):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_one_gateway_serves_what_another_kept(two_gateways: tuple[str, str, Path], prefix: str) -> None:
    url_a, url_b, directory = two_gateways
    marker, team = f"marker-{secrets.token_hex(6)}", f"team-{secrets.token_hex(6)}"
    first = httpx.post(url_a + CHAT, json=_body(marker, team), timeout=20)
    assert first.status_code == 200 and first.headers["x-corral-cache"] == "miss"
    second = httpx.post(url_b + CHAT, json=_body(marker, team), timeout=20)
    assert second.status_code == 200 and second.headers["x-corral-cache"] == "hit"
    assert second.headers["x-corral-cache-original-request-id"] == first.headers["x-corral-request-id"]
    assert second.json() == first.json()
    other_team = httpx.post(url_b + CHAT, json=_body(marker, team + "-b"), timeout=20)
    assert other_team.headers["x-corral-cache"] == "miss"

    hit = _ledger_row(directory / "b" / "ledger.db", second.headers["x-corral-request-id"])
    assert hit["status"] == "cache_hit" and hit["cache_of"] == first.headers["x-corral-request-id"]
    assert Decimal(hit["saved_usd"]) == Decimal(first.headers["x-corral-cost-usd"]) > 0

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        assert len(keys) == 2
        assert all(0 < client.pttl(key) <= 600_000 for key in keys)
    finally:
        client.close()


def _ledger_row(path: Path, request_id: str) -> dict[str, Any]:
    """A request row from a running gateway's SQLite ledger (its writer is a child process)."""
    store = SqlStore(f"sqlite:///{path}")
    table = request_table()
    try:
        for _ in range(500):
            with store.engine.connect() as connection:
                row = connection.execute(select(table).where(table.c.request_id == request_id)).mappings().first()
            if row is not None:
                return dict(row)
            time.sleep(0.02)
    finally:
        store.close()
    pytest.fail(f"no ledger row for {request_id}")


def test_a_redis_that_is_away_is_a_bypass_not_an_error(tmp_path: Path) -> None:
    settings = load_settings(env={}).model_copy(
        update={"policy_path": str(write_policy(tmp_path)), "redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    with running_gateway(settings) as (url, _rt):
        for _ in range(2):
            answer = httpx.post(url + CHAT, json=_body("away", "team-away"), timeout=20)
            assert answer.status_code == 200
            assert answer.headers["x-corral-cache"] == "bypass"
            assert answer.headers["x-corral-cache-bypass"] == "unavailable"
