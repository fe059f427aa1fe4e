"""Tokens-per-minute limits are settled against the usage the provider reported: the
estimate taken at admission is refunded when the answer used less, and the difference
is charged when it used more, in one process and across gateways sharing Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from gateway.config import Settings, load_settings
from gateway.keys.buckets import LocalBuckets
from gateway.keys.model import KeyRecord
from gateway.keys.store import KeyStore
from gateway.runtime import Runtime
from tests.support import running_gateway

REDIS_URL = "redis://127.0.0.1:6379/15"


def _chat(completion_tokens: int, max_tokens: int | None, stream: bool = False) -> dict[str, object]:
    """A request whose answer (from the fake) has exactly `completion_tokens` tokens."""
    directive = orjson.dumps({"completion_tokens": completion_tokens}).decode()
    body: dict[str, object] = {
        "model": "llama-4-scout",
        "messages": [{"role": "user", "content": f"Hi [[fake: {directive}]]"}],
        "stream": stream,
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


def _post(client: httpx.Client, url: str, key: str, body: dict[str, object]) -> httpx.Response:
    return client.post(url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})


def _settled(runtime: Runtime, timeout_s: float = 10.0) -> None:
    """Wait (bounded) until the gateway has sent its queued corrections to Redis."""
    deadline = time.monotonic() + timeout_s
    while runtime.keys.limiter.pending:
        assert time.monotonic() < deadline, "corrections were not sent to Redis in time"
        time.sleep(0.01)


def _key(db: Path, tpm: int) -> tuple[str, KeyRecord]:
    return KeyStore.from_url(f"sqlite:///{db}").create(team="t", scopes="chat", tpm=tpm)


def _settings(db: Path, **env: str) -> Settings:
    return load_settings(env={"DATABASE_URL": f"sqlite:///{db}", **env})


def test_local_settlement_refunds_up_to_a_full_bucket_and_charges_into_capped_debt() -> None:
    now = [0.0]
    buckets = LocalBuckets(clock=lambda: now[0])
    assert buckets.take("k", 0, 1000, 400) == (0, 0)
    buckets.settle("k", 1000, 10 - 400)  # used 10 of the 400 taken
    assert buckets.level("k", 1000) == 990
    buckets.settle("k", 1000, -5000)  # a refund never overfills the bucket
    assert buckets.level("k", 1000) == 1000
    assert buckets.take("k", 0, 1000, 400) == (0, 0)
    buckets.settle("k", 1000, 700)  # used 1100 of the 400 taken
    assert buckets.level("k", 1000) == -100
    which, wait_ms = buckets.take("k", 0, 1000, 100)
    assert which == 2 and wait_ms == 12000  # 200 tokens to refill at 1000 per minute
    buckets.settle("k", 1000, 50_000)  # debt is capped at one whole limit
    assert buckets.level("k", 1000) == -1000
    now[0] = 90.0
    assert buckets.level("k", 1000) == 500


def test_usage_below_the_estimate_leaves_room_for_more_requests(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    key, record = _key(db, tpm=1000)
    with running_gateway(_settings(db), auth=True) as (url, runtime), httpx.Client(timeout=20) as client:
        # Each request is estimated at over 400 tokens: without settlement the third is refused.
        for i in range(6):
            response = _post(client, url, key, _chat(5, max_tokens=400, stream=i % 2 == 1))
            assert response.status_code == 200, (i, response.text)
        assert record.key_id is not None
        assert runtime.keys.limiter.local.level(record.key_id, 1000) >= 1000 - 6 * 30


def test_a_request_no_backend_billed_gets_its_estimate_back(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    key, _ = _key(db, tpm=1000)
    refused_upstream = {**_chat(5, max_tokens=400)}
    refused_upstream["messages"] = [{"role": "user", "content": 'Hi [[fake: {"error": "bad_request"}]]'}]
    with running_gateway(_settings(db), auth=True) as (url, _), httpx.Client(timeout=20) as client:
        for i in range(4):
            response = _post(client, url, key, refused_upstream)
            assert response.status_code == 400, (i, response.text)
        assert _post(client, url, key, _chat(5, max_tokens=400)).status_code == 200


def test_usage_above_the_estimate_charges_the_difference(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    key, _ = _key(db, tpm=2000)
    with running_gateway(_settings(db), auth=True) as (url, _), httpx.Client(timeout=20) as client:
        # Estimated at ~1,040 (prompt + the 1,024 assumed without max_tokens); uses ~1,910.
        assert _post(client, url, key, _chat(1900, max_tokens=None)).status_code == 200
        # Estimated at ~910: fits the ~960 the estimate alone would have left, not the ~90 left.
        refused = _post(client, url, key, _chat(5, max_tokens=900))
        assert refused.status_code == 429, refused.text
        assert "tpm" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 20


@pytest.fixture
def shared_redis() -> Iterator[tuple[redis.Redis, list[str]]]:
    """A Redis client and a list of key ids whose buckets are removed afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    key_ids: list[str] = []
    yield client, key_ids
    for key_id in key_ids:
        client.delete(f"corral:rl:{{{key_id}}}:r", f"corral:rl:{{{key_id}}}:t")
    client.close()


def test_corrections_are_shared_by_gateways_on_one_redis(
    tmp_path: Path, shared_redis: tuple[redis.Redis, list[str]]
) -> None:
    db = tmp_path / "keys.db"
    key, record = _key(db, tpm=2000)
    assert record.key_id is not None
    client_redis, key_ids = shared_redis
    key_ids.append(record.key_id)
    settings = _settings(db, REDIS_URL=REDIS_URL)
    with (
        running_gateway(settings, auth=True) as (url_a, runtime_a),
        running_gateway(settings, auth=True) as (url_b, runtime_b),
        httpx.Client(timeout=20) as client,
    ):
        gateways = [(url_a, runtime_a), (url_b, runtime_b)]
        # Six requests estimated at over 400 tokens each (the fifth would not fit without
        # settling), alternating between the gateways.
        for i in range(6):
            url, runtime = gateways[i % 2]
            response = _post(client, url, key, _chat(5, max_tokens=400))
            assert response.status_code == 200, (i, url, response.text)
            _settled(runtime)
        level = float(client_redis.hget(f"corral:rl:{{{record.key_id}}}:t", "l") or 0)
        assert level >= 2000 - 6 * 30
        # An answer ~870 tokens over its estimate on A empties the bucket for B as well,
        # where the estimate alone would have left room for the next request.
        assert _post(client, url_a, key, _chat(1900, max_tokens=None)).status_code == 200
        _settled(runtime_a)
        refused = _post(client, url_b, key, _chat(5, max_tokens=400))
        assert refused.status_code == 429, refused.text
        assert int(refused.headers["retry-after"]) >= 10
