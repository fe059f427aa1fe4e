"""A client that keeps every answer it got, and the four checks the fault suite makes
against them: availability, honest fast failure, ledger exactly-once, recovery."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from sqlalchemy import func, select

from gateway.metering.sql import SqlStore
from gateway.metering.tables import attempt_table, request_table
from tests.faults.harness import CLIENT_TIMEOUT_S, MAVERICK

UPSTREAM_FAILURES = frozenset({502, 503, 504})


def chat_body(text: str = "hello", *, model: str = MAVERICK, stream: bool = False, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 16}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return {**body, **extra}


@dataclass(slots=True)
class Reply:
    status: int
    request_id: str
    provider: str | None
    #: Upstream attempts the gateway says it made (0: no backend was reached).
    attempts: int
    #: The JSON body, or for a stream the parsed `data:` events ([DONE] left out).
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    #: A stream's raw text (empty for whole answers).
    text: str = ""

    @property
    def error(self) -> dict[str, Any]:
        found = self.body.get("error") if isinstance(self.body, dict) else None
        return found if isinstance(found, dict) else {}

    @property
    def stream_error(self) -> dict[str, Any] | None:
        """The `{"error": ...}` event a stream ended with, if any."""
        events = self.body if isinstance(self.body, list) else []
        return next((e["error"] for e in events if isinstance(e, dict) and "error" in e), None)


def _stream_events(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        data = block.removeprefix("data: ").strip()
        if data and data != "[DONE]":
            events.append(orjson.loads(data))
    return events


def _attempts(response: httpx.Response, body: Any) -> int:
    if "x-corral-attempts" in response.headers:
        return int(response.headers["x-corral-attempts"])
    tried = body.get("error", {}).get("attempts") if isinstance(body, dict) else None
    return len(tried) if isinstance(tried, list) else 0


@dataclass
class Traffic:
    """Every request of a scenario goes through here, so the ledger can be checked against all of them."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT_S)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Traffic:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def post(self, path: str) -> httpx.Response:
        """A bodiless POST to another endpoint (e.g. /admin/policy/reload)."""
        return self._client.post(path)

    def send(self, body: dict[str, Any]) -> Reply:
        """One request; a client timeout is a failed test (the gateway hung past its deadline)."""
        with self._client.stream("POST", "/v1/chat/completions", json=body) as response:
            raw = response.read()
        text = raw.decode() if body.get("stream") and response.status_code == 200 else ""
        parsed = _stream_events(text) if text else orjson.loads(raw)
        reply = Reply(
            status=response.status_code,
            request_id=response.headers["x-corral-request-id"],
            provider=response.headers.get("x-corral-provider"),
            attempts=_attempts(response, parsed),
            body=parsed,
            headers=dict(response.headers),
            text=text,
        )
        with self._lock:
            self.replies.append(reply)
        return reply

    def burst(
        self, body: dict[str, Any] | Callable[[int], dict[str, Any]], n: int = 40, workers: int = 8
    ) -> list[Reply]:
        """`n` requests, `workers` at a time."""
        make = body if callable(body) else (lambda _: body)
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(lambda i: self.send(make(i)), range(n)))

    def reached_backend(self) -> Counter[str]:
        """Request id -> upstream attempts, for every request that reached a backend."""
        return Counter({r.request_id: r.attempts for r in self.replies if r.attempts})


def assert_all_served(replies: list[Reply], by: str | set[str] | None = None) -> None:
    """Availability: no request failed (and, if given, each was served by `by`)."""
    failed = [(r.status, r.error.get("message")) for r in replies if r.status != 200]
    assert not failed, f"{len(failed)} of {len(replies)} requests failed: {failed[:3]}"
    if by is not None:
        allowed = {by} if isinstance(by, str) else by
        served = Counter(r.provider for r in replies)
        assert set(served) <= allowed, f"served by {dict(served)}, expected only {allowed}"


def assert_honest_failure(reply: Reply, tried: set[str], statuses: frozenset[int] = UPSTREAM_FAILURES) -> None:
    """Honest failure: an OpenAI-shaped error with an upstream status naming every backend
    tried (or, when breakers kept it from trying any, every backend and why it was dropped).
    It came back at all, so it beat the client timeout, far past the policy deadline."""
    assert reply.status in statuses, (reply.status, reply.body)
    error = reply.error
    assert set(error) >= {"message", "type", "code", "param"}, error
    listed = error.get("attempts") or error.get("dropped") or []
    named = {a["provider"] for a in listed if a.get("reason") != "provider not configured"}
    assert named == tried, f"the error names {named}, expected {tried}: {error['message']}"
    if error.get("attempts"):
        assert all(provider in error["message"] for provider in tried), error["message"]


def ledger(database_url: str) -> tuple[Counter[str], Counter[str]]:
    """Request rows and attempt rows per request id."""
    store = SqlStore(database_url)
    requests, attempts = request_table(), attempt_table()
    try:
        with store.engine.connect() as conn:
            rows = Counter(conn.execute(select(requests.c.request_id)).scalars())
            per_request = conn.execute(select(attempts.c.request_id, func.count()).group_by(attempts.c.request_id))
            attempt_rows = Counter({request_id: int(count) for request_id, count in per_request})
    finally:
        store.close()
    return rows, attempt_rows


def assert_ledger_exactly_once(traffic: Traffic, database_url: str) -> None:
    """Ledger exactly-once: every request that reached a backend has one row, with one attempt
    row per upstream attempt the client was told of; no other rows, none twice. Call it after
    the gateway stopped (its usage queue drained)."""
    rows, attempt_rows = ledger(database_url)
    expected = traffic.reached_backend()
    assert not [rid for rid, n in rows.items() if n > 1], "duplicated ledger rows"
    missing = set(expected) - set(rows)
    extra = set(rows) - set(expected)
    assert not missing, f"{len(missing)} requests that reached a backend have no ledger row"
    assert not extra, f"{len(extra)} ledger rows for requests no backend saw"
    assert attempt_rows == expected, "attempt rows differ from the attempts the clients were told of"


def until(check: Callable[[], bool], what: str, limit_s: float = 15.0) -> None:
    """Poll until `check` holds (a bounded wait for recovery, never a timing claim)."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {limit_s:.0f} s: {what}")
        time.sleep(0.05)


def ledger_row(database_url: str, request_id: str) -> dict[str, Any]:
    """One request's ledger row, as a mapping."""
    store = SqlStore(database_url)
    table = request_table()
    try:
        with store.engine.connect() as conn:
            row = conn.execute(select(table).where(table.c.request_id == request_id)).mappings().one()
    finally:
        store.close()
    return dict(row)
