"""Idempotency with Redis as the fast path (gateway/metering/idempotency_redis.py), through
two running gateways that share a PostgreSQL ledger and the machine's Redis (database 10,
keys under `corral:idem:`; each test uses fresh Idempotency-Keys and deletes its own
entries): a key runs once whichever replica gets it, a replay on the other replica comes
from Redis, and a lost Redis entry or a dead Redis never lets the key run twice."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from sqlalchemy import func, select

from gateway.config import load_settings
from gateway.metering.idempotency import Answer, Claim, MemoryStore
from gateway.metering.idempotency_redis import PREFIX, RedisFastPath, redis_key
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.metering.tables import request_table
from gateway.runtime import Runtime
from tests.metering.pg import pg_url
from tests.support import free_port, running_gateway

REDIS_URL = "redis://127.0.0.1:6379/10"
CHAT = "/v1/chat/completions"


@dataclass
class Replica:
    url: str
    runtime: Runtime

    def post(self, body: dict[str, Any], key: str | None) -> httpx.Response:
        headers = {"idempotency-key": key} if key is not None else {}
        return httpx.post(self.url + CHAT, json=body, headers=headers, timeout=20)

    @property
    def fast_path(self) -> RedisFastPath:
        store = self.runtime.idempotency.store
        assert isinstance(store, RedisFastPath)
        return store


@dataclass
class Pair:
    a: Replica
    b: Replica
    ledger: SqlStore
    ledger_url: str
    directory: Path

    def upstream_calls(self, marker: str, *more: Replica) -> int:
        """Chat requests any replica's fakes received whose body carries `marker`."""
        fakes = [f for r in (self.a, self.b, *more) for f in r.runtime.fakes]
        return sum(1 for f in fakes for r in f.requests if marker.encode() in r.body)

    def rows(self, team: str) -> int:
        table = request_table()
        with self.ledger.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(table).where(table.c.team == team)).scalar_one()
            )

    def settled_rows(self, team: str) -> int:
        """Rows for `team` once both replicas' queues have written what they recorded."""
        for replica in (self.a, self.b):
            sentinel = f"sentinel-{secrets.token_hex(4)}"
            assert replica.post(_body("sentinel", sentinel), None).status_code == 200
            for _ in range(500):
                if self.rows(sentinel) == 1:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the ledger never caught up")
        return self.rows(team)


def _body(text: str, team: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "llama-4-scout",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 16,
        "corral": {"tags": {"team": team}},
        **extra,
    }


def _replica(stack: ExitStack, ledger_url: str, directory: Path, name: str, redis_url: str) -> Replica:
    settings = load_settings(env={"REDIS_URL": redis_url, "DATABASE_URL": ledger_url})
    sink = QueueSink(SqlStore(ledger_url), directory / f"{name}.journal")
    url, runtime = stack.enter_context(running_gateway(settings, sink))
    return Replica(url, runtime)


@pytest.fixture(scope="module")
def redis_db() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    yield client
    client.close()


@pytest.fixture(scope="module")
def pair(pg_database: str, tmp_path_factory: pytest.TempPathFactory, redis_db: redis.Redis) -> Iterator[Pair]:
    directory = tmp_path_factory.mktemp("idempotency-redis")
    schema = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_url(pg_database, driver=False), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = pg_url(pg_database, schema)
    ledger = SqlStore(url)
    with ExitStack() as stack:
        a = _replica(stack, url, directory, "a", REDIS_URL)
        b = _replica(stack, url, directory, "b", REDIS_URL)
        yield Pair(a, b, ledger, url, directory)
    ledger.close()


@pytest.fixture
def case(redis_db: redis.Redis) -> Iterator[tuple[str, str, str]]:
    """A fresh Idempotency-Key, team and marker; this test's Redis entries removed after."""
    before = set(redis_db.scan_iter(PREFIX + "*"))
    token = secrets.token_hex(6)
    yield f"key-{token}", f"team-{token}", f"marker-{token}"
    for name in set(redis_db.scan_iter(PREFIX + "*")) - before:
        redis_db.delete(name)


def _entries(redis_db: redis.Redis) -> set[bytes]:
    return set(redis_db.scan_iter(PREFIX + "*"))


def test_a_key_runs_once_across_replicas_and_the_other_replays_from_redis(
    pair: Pair, redis_db: redis.Redis, case: tuple[str, str, str]
) -> None:
    """One upstream call and one ledger row for a key sent to both replicas; the kept answer
    is in Redis (an entry under corral:idem: expiring with the claim) and the other replica
    replays it from there."""
    key, team, marker = case
    before = _entries(redis_db)
    first = pair.a.post(_body(marker, team), key)
    assert first.status_code == 200
    added = _entries(redis_db) - before
    assert len(added) == 1
    (entry,) = added
    ttl = redis_db.ttl(entry)
    assert 86_000 < ttl <= 86_400  # the claim's retention (24 h by default)
    hits = pair.b.fast_path.hits
    second = pair.b.post(_body(marker, team), key)
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["x-corral-idempotent-replayed"] == "true"
    assert second.headers["x-corral-request-id"] == first.headers["x-corral-request-id"]
    assert pair.b.fast_path.hits == hits + 1
    assert pair.upstream_calls(marker) == 1
    assert pair.settled_rows(team) == 1


def test_the_same_key_on_both_replicas_at_once_runs_once(pair: Pair, case: tuple[str, str, str]) -> None:
    """Sent to both replicas at the same moment, the key is claimed once (the database
    decides): one run, the other 409 or a replay; afterwards both replay the one answer."""
    key, team, marker = case
    body = _body(f'{marker} [[fake: {{"latency_ms": 600}}]]', team)
    results: dict[str, httpx.Response] = {}
    go = threading.Barrier(2)

    def send(name: str, replica: Replica) -> None:
        go.wait(5)
        results[name] = replica.post(body, key)

    threads = [threading.Thread(target=send, args=(n, r)) for n, r in (("a", pair.a), ("b", pair.b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    statuses = sorted(r.status_code for r in results.values())
    assert statuses in ([200, 409], [200, 200]), [r.text for r in results.values()]
    ran = next(r for r in results.values() if r.status_code == 200)
    for replica in (pair.a, pair.b):
        again = replica.post(body, key)
        assert again.status_code == 200
        assert again.headers["x-corral-request-id"] == ran.headers["x-corral-request-id"]
    assert pair.upstream_calls(marker) == 1
    assert pair.settled_rows(team) == 1


def test_a_lost_redis_entry_or_a_dead_redis_never_runs_a_key_twice(
    pair: Pair, redis_db: redis.Redis, case: tuple[str, str, str]
) -> None:
    """Eviction: the entry deleted, a repeat is replayed from the database (and the entry
    written back). Outage: a third replica whose Redis is unreachable replays from the
    database too. One upstream call throughout."""
    key, team, marker = case
    before = _entries(redis_db)
    first = pair.a.post(_body(marker, team), key)
    assert first.status_code == 200
    (entry,) = _entries(redis_db) - before
    redis_db.delete(entry)
    hits = pair.b.fast_path.hits
    evicted = pair.b.post(_body(marker, team), key)
    assert evicted.status_code == 200 and evicted.content == first.content
    assert evicted.headers["x-corral-idempotent-replayed"] == "true"
    assert pair.b.fast_path.hits == hits  # not from Redis: from the database
    assert redis_db.exists(entry)  # written back
    with ExitStack() as stack:
        dead = f"redis://127.0.0.1:{free_port()}/10"
        c = _replica(stack, pair.ledger_url, pair.directory, "c", dead)
        outage = c.post(_body(marker, team), key)
        assert outage.status_code == 200 and outage.content == first.content
        assert outage.headers["x-corral-request-id"] == first.headers["x-corral-request-id"]
        assert c.fast_path.errors >= 1
        assert pair.upstream_calls(marker, c) == 1
    assert pair.settled_rows(team) == 1


def _claim(key: str, request_id: str, at: datetime) -> Claim:
    return Claim("scope", key, "sha", request_id, at, at + timedelta(hours=24), stream=False)


def test_only_an_answer_the_database_kept_is_cached(redis_db: redis.Redis, case: tuple[str, str, str]) -> None:
    """A request whose claim was taken over after its lease keeps nothing, so Redis never
    holds an answer the database does not; an unreadable entry is passed over."""
    key, _team, _marker = case
    cache = RedisFastPath(MemoryStore(), REDIS_URL)
    now = datetime.now(UTC)
    first = _claim(key, "req-1", now - timedelta(hours=1))
    assert cache.claim(first, stale_before=now - timedelta(hours=2)) is None
    takeover = _claim(key, "req-2", now)
    assert cache.claim(takeover, stale_before=now) is None  # the first claim is past its lease
    answer = Answer(200, {"x-corral-request-id": "req-1"}, b"{}", stream=False)
    assert cache.keep(first, answer) is False
    assert not redis_db.exists(redis_key("scope", key))
    assert cache.keep(takeover, Answer(200, {"x-corral-request-id": "req-2"}, b"{}", stream=False))
    assert redis_db.exists(redis_key("scope", key))
    redis_db.set(redis_key("scope", key), b"not an entry")
    held = cache.claim(_claim(key, "req-3", now), stale_before=now - timedelta(hours=1))
    assert held is not None and held.request_id == "req-2"  # from the store, not the garbage
    cache.close()
