"""Idempotency-Key through a running gateway whose ledger is SQLite or PostgreSQL: a key
runs its request at most once (one upstream call, one ledger row, one charge), repeats get
the first answer replayed, a repeat during the first gets 409, another body 422; the SDK's
retry of a read timeout is served by the one run."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import corral
import httpx
import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from gateway.config import load_settings
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.metering.tables import request_table
from gateway.runtime import Runtime
from tests.metering.pg import pg_url
from tests.support import running_gateway

CHAT = "/v1/chat/completions"


@dataclass
class Gateway:
    url: str
    runtime: Runtime
    store: SqlStore

    def post(self, body: dict[str, Any], key: str | None, timeout: float = 20) -> httpx.Response:
        headers = {"idempotency-key": key} if key is not None else {}
        return httpx.post(self.url + CHAT, json=body, headers=headers, timeout=timeout)

    def upstream_calls(self, marker: str) -> int:
        """Chat requests any fake received whose body carries `marker`."""
        return sum(1 for f in self.runtime.fakes for r in f.requests if marker.encode() in r.body)

    def rows(self, team: str) -> int:
        table = request_table()
        with self.store.engine.connect() as connection:
            query = select(func.count()).select_from(table).where(table.c.team == team)
            return int(connection.execute(query).scalar_one())

    def settled_rows(self, team: str) -> int:
        """Rows for `team` once everything recorded before now is in the ledger: a sentinel
        request's row arrives after any row recorded before it (one queue, in order)."""
        sentinel = f"sentinel-{secrets.token_hex(4)}"
        assert self.post(_body("sentinel", sentinel), None).status_code == 200
        for _ in range(500):
            if self.rows(sentinel) == 1:
                return self.rows(team)
            time.sleep(0.02)
        pytest.fail("the ledger never caught up")


def _body(text: str, team: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "llama-4-scout",
        "messages": [{"role": "user", "content": text}],
        "max_tokens": 16,
        "corral": {"tags": {"team": team}},
        **extra,
    }


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("idempotency")
    if request.param == "sqlite":
        url = f"sqlite:///{directory / 'ledger.db'}"
    else:
        database: str = request.getfixturevalue("pg_database")
        schema = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(pg_url(database, driver=False), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = pg_url(database, schema)
    store = SqlStore(url)
    with running_gateway(load_settings(env={}), QueueSink(store, Path(directory / "usage.journal"))) as (base, rt):
        yield Gateway(base, rt, store)
    store.close()


def _case() -> tuple[str, str, str]:
    token = secrets.token_hex(6)
    return f"key-{token}", f"team-{token}", f"marker-{token}"


def test_the_same_key_twice_runs_once_and_replays_the_answer(gateway: Gateway) -> None:
    key, team, marker = _case()
    first = gateway.post(_body(marker, team), key)
    second = gateway.post(_body(marker, team), key)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    for header in ("x-corral-request-id", "x-corral-cost-usd", "x-corral-provider", "x-corral-attempts"):
        assert second.headers[header] == first.headers[header]
    assert second.headers["x-corral-idempotent-replayed"] == "true"
    assert "x-corral-idempotent-replayed" not in first.headers
    assert gateway.upstream_calls(marker) == 1
    assert gateway.settled_rows(team) == 1


def test_without_a_key_each_request_runs(gateway: Gateway) -> None:
    _key, team, marker = _case()
    first = gateway.post(_body(marker, team), None)
    second = gateway.post(_body(marker, team), None)
    assert first.headers["x-corral-request-id"] != second.headers["x-corral-request-id"]
    assert gateway.upstream_calls(marker) == 2
    assert gateway.settled_rows(team) == 2


def test_the_same_key_with_another_body_is_422(gateway: Gateway) -> None:
    key, team, marker = _case()
    assert gateway.post(_body(marker, team), key).status_code == 200
    other = gateway.post(_body(marker + " and more", team), key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert gateway.upstream_calls(marker) == 1


def test_a_repeat_while_the_first_runs_is_409_with_retry_after(gateway: Gateway) -> None:
    key, team, marker = _case()
    body = _body(f'{marker} [[fake: {{"latency_ms": 1500}}]]', team)
    results: list[httpx.Response] = []
    first = threading.Thread(target=lambda: results.append(gateway.post(body, key)))
    first.start()
    for _ in range(200):
        if gateway.upstream_calls(marker):
            break
        time.sleep(0.01)
    during = gateway.post(body, key)
    first.join(20)
    assert during.status_code == 409
    assert during.json()["error"]["code"] == "idempotency_key_in_use"
    assert float(during.headers["retry-after"]) > 0
    after = gateway.post(body, key)
    assert results[0].status_code == after.status_code == 200
    assert after.headers["x-corral-request-id"] == results[0].headers["x-corral-request-id"]
    assert gateway.upstream_calls(marker) == 1


def test_a_completed_stream_is_replayed_as_a_stream(gateway: Gateway) -> None:
    key, team, marker = _case()
    body = _body(marker, team, stream=True, stream_options={"include_usage": True})
    answers = []
    for _ in range(2):
        with httpx.stream("POST", gateway.url + CHAT, json=body, headers={"idempotency-key": key}, timeout=20) as r:
            answers.append((r.status_code, r.headers, b"".join(r.iter_bytes())))
    (status1, headers1, data1), (status2, headers2, data2) = answers
    assert status1 == status2 == 200
    assert headers2["content-type"].startswith("text/event-stream")
    assert headers2["x-corral-request-id"] == headers1["x-corral-request-id"]
    assert data1.endswith(b"data: [DONE]\n\n") and data2 == data1
    assert gateway.upstream_calls(marker) == 1
    assert gateway.settled_rows(team) == 1


def test_a_failed_request_gives_its_key_back(gateway: Gateway) -> None:
    key, team, marker = _case()
    bad = _body(marker, team, max_tokens=-1)
    assert gateway.post(bad, key).status_code == 400
    # A 400 comes before any claim; a request that failed upstream releases its claim too.
    failing = _body(f'{marker} [[fake: {{"error": "server_error"}}]]', team)
    failed = gateway.post(failing, key)
    assert failed.status_code >= 500
    again = gateway.post(failing, key)
    assert again.status_code >= 500
    assert again.headers["x-corral-request-id"] != failed.headers["x-corral-request-id"]


def test_the_sdk_retries_a_read_timeout_and_the_gateway_runs_it_once(gateway: Gateway) -> None:
    """The client gives up mid-answer (read timeout), the SDK retries with the same key: the
    retry waits out the first run (409, retry-after) and gets its answer."""
    _key, team, marker = _case()
    timeout = httpx.Timeout(0.5, connect=5)
    with corral.Corral(base_url=gateway.url, api_key="unused", timeout=timeout, max_retries=6) as client:
        completion = client.chat.completions.create(
            model="llama-4-scout",
            messages=[{"role": "user", "content": f'{marker} [[fake: {{"latency_ms": 1200}}]]'}],
            max_tokens=16,
            extra_body={"corral": {"tags": {"team": team}}},
        )
    assert completion.corral.retries >= 2
    assert gateway.upstream_calls(marker) == 1
    assert gateway.settled_rows(team) == 1


def test_keys_are_per_api_key(tmp_path: Path) -> None:
    """Two callers that happen to pick the same Idempotency-Key each get their own answer."""
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    settings = load_settings(env={}).model_copy(update={"api_keys": [SecretStr("sk-one"), SecretStr("sk-two")]})
    body = _body("same words", "t")
    with running_gateway(settings, QueueSink(store, tmp_path / "usage.journal"), auth=True) as (url, _rt):
        answers = [
            httpx.post(url + CHAT, json=body, headers={"authorization": f"Bearer {key}", "idempotency-key": "k1"})
            for key in ("sk-one", "sk-two", "sk-one")
        ]
    store.close()
    ids = [a.headers["x-corral-request-id"] for a in answers]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert ids[0] != ids[1] and ids[2] == ids[0]
    assert "x-corral-idempotent-replayed" not in answers[1].headers


def test_a_stream_the_client_left_gives_its_key_back(gateway: Gateway) -> None:
    """Not kept (it did not complete): calling again with the same key runs it anew."""
    key, team, marker = _case()
    body = _body(f'{marker} [[fake: {{"tokens_per_s": 20, "completion_tokens": 40}}]]', team, stream=True)
    headers = {"idempotency-key": key}
    with httpx.stream("POST", gateway.url + CHAT, json=body, headers=headers, timeout=20) as first:
        first_id = first.headers["x-corral-request-id"]
        next(first.iter_bytes())
    again = None
    for _ in range(100):
        with httpx.stream("POST", gateway.url + CHAT, json=body, headers=headers, timeout=20) as response:
            if response.status_code != 409:
                again = (response.status_code, response.headers["x-corral-request-id"], b"".join(response.iter_bytes()))
                break
        time.sleep(0.05)
    assert again is not None, "the key was never given back"
    assert again[0] == 200 and again[1] != first_id and again[2].endswith(b"data: [DONE]\n\n")
    assert gateway.upstream_calls(marker) == 2
