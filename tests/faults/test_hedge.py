"""Hedged requests through the running gateway against paced fakes: DeepInfra (the cheaper,
so the first candidate) and Together (the next). The hedge delay is a fixed 300 ms here,
so what starts the hedge is the policy, not a learned figure."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from corral.types.corral import CorralInfo
from sqlalchemy import select

from gateway.fakes.script import Behaviour
from gateway.fakes.server import FakeServer
from gateway.metering.reports import SpendQuery, spend
from gateway.metering.sql import SqlStore
from gateway.metering.tables import attempt_table
from tests.faults.conftest import Rig, open_rig
from tests.faults.harness import SCOUT, FakePark, fault_settings
from tests.faults.traffic import chat_body, until

SCOUT_ID = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
DELAY_MS = 300

POLICY = """
version: 1
name: hedging
defaults:
  objective: {{prefer: cost}}
  pool: {{prefer_pool: true, max_queue_depth: 8, max_kv_cache_usage: 0.95, cost_model: sunk}}
  retry: {{attempts: 3, deadline_ms: {deadline}, tries_per_deployment: 1}}
  hedge: {{after: {after}, max_hedges: 1, max_extra_cost_pct: {cap}, only: both}}
"""

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def _rig(
    park: FakePark, tmp_path: Path, cap: float = 100, backends: dict[str, Any] | None = None, deadline: int = 5000
) -> Rig:
    fakes = backends or {"deepinfra": park.add("deepinfra"), "together": park.add("together")}
    settings = fault_settings(tmp_path, fakes, first_byte_s=10.0)
    Path(settings.policy_path or "").write_text(POLICY.format(after=DELAY_MS, cap=cap, deadline=deadline))
    flat = {k: v for k, v in fakes.items() if isinstance(v, FakeServer)}
    return open_rig(settings, flat)


def _attempt_rows(database_url: str, request_id: str) -> list[dict[str, Any]]:
    store = SqlStore(database_url)
    t = attempt_table()
    try:
        with store.engine.connect() as conn:
            query = select(t).where(t.c.request_id == request_id).order_by(t.c.seq)
            return [dict(r) for r in conn.execute(query).mappings()]
    finally:
        store.close()


def _metric(url: str, event: str, provider: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("corral_hedges_total{") and f'event="{event}"' in line and f'provider="{provider}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_slow_first_attempt_is_hedged_the_faster_wins_and_the_loser_is_closed(park: FakePark, tmp_path: Path) -> None:
    """DeepInfra takes 3 s to answer; after 300 ms the gateway starts Together, which answers
    at once and wins. DeepInfra sees its connection closed; the ledger has one request row
    with both attempts: DeepInfra's cancelled, billed its prompt flagged as an estimate, and
    marked as hedge cost in the spend report; headers, metrics and explain say so."""
    rig = _rig(park, tmp_path)
    slow, fast = rig.fakes["deepinfra"], rig.fakes["together"]
    slow.script.default = Behaviour(latency_ms=3000)
    explained = httpx.post(f"{rig.url}/v1/route/explain", json=chat_body(stream=True)).json()
    assert explained["hedge"]["delay_ms"] == DELAY_MS, explained["hedge"]
    for stream in (False, True):
        started = time.perf_counter()
        reply = rig.traffic.send(chat_body(stream=stream))
        elapsed = time.perf_counter() - started
        assert reply.status == 200 and reply.provider == "together", reply.body
        assert reply.headers["x-corral-hedged"] == "true"
        assert reply.headers["x-corral-hedge-winner"] == "hedge"
        assert CorralInfo.from_headers(reply.headers).hedged
        assert reply.attempts == 2
        assert DELAY_MS / 1000 <= elapsed < 2.5, elapsed
    until(lambda: len(slow.disconnects) == 2, "DeepInfra saw both connections closed")
    assert len(fast.requests) == 2
    assert _metric(rig.url, "started", "together") == 2
    assert _metric(rig.url, "won", "together") == 2
    assert _metric(rig.url, "cancelled", "deepinfra") == 2
    today = datetime.now(UTC).date()

    def api_hedge_cost() -> str:
        total = httpx.get(f"{rig.url}/v1/spend", params={"from": today.isoformat()}).json()["total"]
        return str(total["hedge_cost_usd"])

    until(lambda: api_hedge_cost() != "0.00", "the spend API shows hedge cost")
    page = httpx.get(f"{rig.url}/reports/spend").text
    assert 'id="hedge-cost"' in page and "Hedge cost (USD)" in page
    rig.finish()
    loser_cost = 0.0
    for reply in rig.traffic.replies:
        rows = _attempt_rows(rig.settings.database_url, reply.request_id)
        assert [(r["provider"], r["hedge"], r["final"]) for r in rows] == [
            ("deepinfra", "lost", False),
            ("together", "won", True),
        ]
        lost = rows[0]
        assert lost["outcome"] == "cancelled" and lost["error_kind"] == "hedge_lost"
        assert lost["usage_estimated"] and lost["prompt_tokens"] > 0 and lost["completion_tokens"] == 0
        assert lost["cost_usd"] > 0
        loser_cost += float(lost["cost_usd"])
    store = SqlStore(rig.settings.database_url)
    try:
        report = spend(store.engine, SpendQuery(today, today))
    finally:
        store.close()
    assert float(report.total.hedge_cost_usd) == loser_cost
    assert report.total.hedge_cost_usd < report.total.cost_usd


def test_first_attempt_within_the_delay_is_not_hedged(park: FakePark, tmp_path: Path) -> None:
    """The hedge starts only after the delay: a first answer at 50 ms leaves Together untouched."""
    rig = _rig(park, tmp_path)
    rig.fakes["deepinfra"].script.default = Behaviour(latency_ms=50)
    for stream in (False, True):
        reply = rig.traffic.send(chat_body(stream=stream))
        assert reply.provider == "deepinfra" and "x-corral-hedged" not in reply.headers
    assert not rig.fakes["together"].requests
    rig.finish()


def test_first_attempt_wins_when_the_hedge_is_slower(park: FakePark, tmp_path: Path) -> None:
    """DeepInfra answers at 700 ms, the hedge (started at 300 ms) would take 3 s: DeepInfra
    wins, Together's connection is closed and Together's attempt is the hedge cost."""
    rig = _rig(park, tmp_path)
    rig.fakes["deepinfra"].script.default = Behaviour(latency_ms=700)
    rig.fakes["together"].script.default = Behaviour(latency_ms=3000)
    reply = rig.traffic.send(chat_body(stream=True))
    assert reply.provider == "deepinfra"
    assert reply.headers["x-corral-hedge-winner"] == "first"
    until(lambda: len(rig.fakes["together"].disconnects) == 1, "Together saw its connection closed")
    rig.finish()
    rows = _attempt_rows(rig.settings.database_url, reply.request_id)
    assert [(r["provider"], r["hedge"]) for r in rows] == [("together", "lost"), ("deepinfra", "won")]


def test_requests_with_tools_are_not_hedged_by_default(park: FakePark, tmp_path: Path) -> None:
    """A tool call may have side effects the caller acts on: without `allow_tools` a slow
    request carrying tools waits for its first attempt, and Together never sees it."""
    rig = _rig(park, tmp_path)
    rig.fakes["deepinfra"].script.default = Behaviour(latency_ms=800)
    reply = rig.traffic.send(chat_body(tools=TOOLS))
    assert reply.status == 200 and reply.provider == "deepinfra"
    assert "x-corral-hedged" not in reply.headers
    assert not rig.fakes["together"].requests
    explained = httpx.post(f"{rig.url}/v1/route/explain", json=chat_body(tools=TOOLS)).json()
    assert explained["hedge"]["delay_ms"] is None and "tools" in explained["hedge"]["reason"]
    rig.finish()


def test_the_extra_cost_cap_stops_hedging(park: FakePark, tmp_path: Path) -> None:
    """With `max_extra_cost_pct: 1` the first slow request is hedged; its loser's cost is far
    above 1% of the rule's spend, so the next slow requests are not (explain says why)."""
    rig = _rig(park, tmp_path, cap=1)
    rig.fakes["deepinfra"].script.default = Behaviour(latency_ms=700)
    first = rig.traffic.send(chat_body())
    assert first.headers.get("x-corral-hedged") == "true"
    for _ in range(2):
        later = rig.traffic.send(chat_body())
        assert later.provider == "deepinfra" and "x-corral-hedged" not in later.headers
    explained = httpx.post(f"{rig.url}/v1/route/explain", json=chat_body()).json()
    assert explained["hedge"]["delay_ms"] is None and "paused" in explained["hedge"]["reason"]
    assert len(rig.fakes["together"].requests) == 1
    rig.finish()


def test_a_cancelled_pool_attempt_releases_its_replica_slot(park: FakePark, tmp_path: Path) -> None:
    """The pool (first: its cost is sunk) is slow; DeepInfra wins the hedge. The replica saw
    its connection closed, its batch slot is free on the fake, and the gateway's in-flight
    count for the replica is back to zero."""
    replica = park.add("vllm", model_id=SCOUT_ID)
    backup = park.add("deepinfra")
    rig = _rig(park, tmp_path, backends={"vllm": [replica], "deepinfra": backup})
    pool: Any = rig.runtime.providers["vllm"]
    until(lambda: any(r.healthy for r in pool.pool_state()), "the replica healthy")
    replica.script.default = Behaviour(latency_ms=3000)
    reply = rig.traffic.send(chat_body(model=SCOUT, stream=True))
    assert reply.provider == "deepinfra" and reply.headers["x-corral-hedge-winner"] == "hedge"
    until(lambda: len(replica.disconnects) == 1, "the replica saw its connection closed")
    fake: Any = replica
    until(lambda: fake.running == 0, "the replica's batch slot freed")
    assert [r.inflight for r in pool.pool.replicas] == [0]
    rig.finish()


def test_a_hedged_request_never_outlives_its_deadline(park: FakePark, tmp_path: Path) -> None:
    """Both backends slower than the 1 s deadline: the hedge starts at 300 ms, the deadline
    ends both attempts, the client gets a 504 naming both at about 1 s, both backends see
    their connections closed, and the ledger row holds both attempts."""
    rig = _rig(park, tmp_path, deadline=1000)
    for fake in rig.fakes.values():
        fake.script.default = Behaviour(latency_ms=4000)
    started = time.perf_counter()
    reply = rig.traffic.send(chat_body())
    assert reply.status == 504 and reply.attempts == 2, reply.body
    assert time.perf_counter() - started < 2.0
    for fake in rig.fakes.values():
        until(lambda fake=fake: len(fake.disconnects) == 1, f"{fake.provider} saw its connection closed")
    rig.finish()
    assert sorted(r["provider"] for r in _attempt_rows(rig.settings.database_url, reply.request_id)) == [
        "deepinfra",
        "together",
    ]


def test_a_hedge_that_fails_leaves_the_first_to_answer(park: FakePark, tmp_path: Path) -> None:
    """The hedge gets a 500 at once: the slow first attempt still answers the request; the
    failed hedge is an ordinary error attempt in the ledger (billed nothing), the answer
    the `won` one."""
    rig = _rig(park, tmp_path)
    rig.fakes["deepinfra"].script.default = Behaviour(latency_ms=1000)
    rig.fakes["together"].script.default = Behaviour(error="server_error")
    reply = rig.traffic.send(chat_body(stream=True))
    assert reply.status == 200 and reply.provider == "deepinfra"
    assert reply.headers["x-corral-hedge-winner"] == "first" and reply.attempts == 2
    assert not rig.fakes["deepinfra"].disconnects
    rig.finish()
    rows = _attempt_rows(rig.settings.database_url, reply.request_id)
    assert [(r["provider"], r["outcome"], r["hedge"]) for r in rows] == [
        ("together", "error", None),
        ("deepinfra", "ok", "won"),
    ]
    assert rows[0]["cost_usd"] == 0


def test_a_scripted_slow_tail_is_hedged_and_only_the_tail(park: FakePark, tmp_path: Path) -> None:
    """DeepInfra answers in 20 ms except every 4th request, which takes 2 s (the fakes'
    scripted tail): exactly those are hedged and won by Together; the rest never reach it."""
    rig = _rig(park, tmp_path)
    rig.fakes["deepinfra"].script.default = Behaviour(latency_ms=20, tail_every=4, tail_latency_ms=2000)
    replies = [rig.traffic.send(chat_body(f"q{i}", stream=True)) for i in range(8)]
    hedged = [i for i, r in enumerate(replies) if r.headers.get("x-corral-hedged") == "true"]
    assert hedged == [3, 7]
    assert [replies[i].provider for i in hedged] == ["together", "together"]
    assert len(rig.fakes["together"].requests) == 2
    until(lambda: len(rig.fakes["deepinfra"].disconnects) == 2, "both slow DeepInfra attempts closed")
    rig.finish()
