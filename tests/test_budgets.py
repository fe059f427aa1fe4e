"""Budgets per team and key: seeded from the ledger, counted from usage, shared through Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import redis

from gateway.config import load_settings
from gateway.errors import GatewayError
from gateway.metering.budgets import Budgets, usd
from gateway.metering.events import AttemptRecord, UsageEvent
from gateway.metering.sql import SqlStore
from gateway.routing.policy.model import DEFAULT_POLICY, Budget, Policy
from tests.support import running_gateway

REDIS_URL = "redis://127.0.0.1:6379/15"
TODAY = date(2026, 11, 23)
POLICY = Policy(
    "budgets",
    DEFAULT_POLICY.defaults,
    budgets=(
        Budget(Decimal("1.00"), "month", team="research", warn_at=0.5),
        Budget(Decimal("0.10"), "day", key="key_abc"),
    ),
)


def event(cost: str, team: str | None = None, key: str | None = None, reask: str = "0") -> UsageEvent:
    attempts = (
        AttemptRecord("deepinfra", "m", "tool_calls_invalid", 200, 1.0, cost_usd=Decimal(reask), reask=True),
        AttemptRecord("deepinfra", "m", None, 200, 1.0),
    )
    return UsageEvent(
        request_id=f"r-{cost}-{team}-{key}-{reask}",
        at=datetime(2026, 11, 23, 12, tzinfo=UTC),
        model="llama-4-scout",
        provider="deepinfra",
        model_id="m",
        status="ok",
        prompt_tokens=10,
        completion_tokens=10,
        cached_tokens=0,
        usage_estimated=False,
        cost_usd=Decimal(cost),
        latency_ms=1.0,
        ttft_ms=None,
        stream=False,
        attempts=attempts if reask != "0" else (),
        api_key_id=key,
        tags={"team": team} if team else {},
    )


def budgets() -> Budgets:
    return Budgets(lambda: POLICY, today=lambda: TODAY)


def test_warns_then_refuses_and_counts_reasks() -> None:
    b = budgets()
    assert b.check("research", None).warnings == ()
    b.record(event("0.40", team="research", reask="0.15"))
    warning = b.check("research", None).warnings
    assert warning and "55% used" in warning[0]
    b.record(event("0.45", team="research"))
    with pytest.raises(GatewayError) as refused:
        b.check("research", None)
    assert refused.value.status == 402 and refused.value.code == "budget_exceeded"
    assert b.check("other-team", None).warnings == ()


def test_key_budgets_are_daily() -> None:
    b = budgets()
    b.record(event("0.10", key="key_abc"))
    with pytest.raises(GatewayError):
        b.check(None, "key_abc")
    tomorrow = Budgets(lambda: POLICY, today=lambda: date(2026, 11, 24))
    tomorrow.spent = b.spent
    assert tomorrow.check(None, "key_abc").warnings == ()


def test_seeded_from_the_ledger(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    store.write([event("0.30", team="research"), event("0.25", team="research", reask="0.05"), event("9", team="x")])
    b = budgets()
    b.seed_from_ledger(store.engine)
    assert b.spent[("team", "research", date(2026, 11, 1))] == Decimal("0.60")


@pytest.fixture
def clean_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter("corral:budget:*"):
        client.delete(name)
    client.close()


def test_replicas_share_spend_through_redis(clean_redis: None) -> None:
    async def scenario() -> tuple[Decimal, Decimal]:
        a, b = budgets(), budgets()
        await a.share(REDIS_URL)
        await b.share(REDIS_URL)
        a.record(event("0.70", team="research"))
        b.record(event("0.20", team="research"))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if (
                a.spent.get(("team", "research", date(2026, 11, 1)))
                == b.spent.get(("team", "research", date(2026, 11, 1)))
                == Decimal("0.90")
            ):
                break
        result = a.spent[("team", "research", date(2026, 11, 1))], b.spent[("team", "research", date(2026, 11, 1))]
        await a.close()
        await b.close()
        return result

    assert asyncio.run(scenario()) == (Decimal("0.90"), Decimal("0.90"))


def test_gateway_refuses_a_spent_team_budget(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nname: tight\ndefaults: {objective: {prefer: cost}}\n"
        'budgets:\n  - {team: research, limit_usd: "0.0000001", period: month, warn_at: 0.5}\n'
    )
    settings = load_settings(env={"CORRAL_POLICY": str(policy)})
    body = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}]}
    with running_gateway(settings) as (url, _), httpx.Client(base_url=url, timeout=30) as client:
        research = {**body, "corral": {"tags": {"team": "research"}}}
        assert client.post("/v1/chat/completions", json=research).status_code == 200
        refused = client.post("/v1/chat/completions", json=research)
        assert refused.status_code == 402
        assert refused.json()["error"]["code"] == "budget_exceeded"
        assert client.post("/v1/chat/completions", json=body).status_code == 200, "other traffic is unaffected"


def test_budget_use_is_exported_as_a_metric(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "version: 1\nname: b\ndefaults: {objective: {prefer: cost}}\n"
        'budgets:\n  - {team: search, limit_usd: "5", period: day}\n'
    )
    with running_gateway(load_settings(env={"CORRAL_POLICY": str(policy)})) as (url, _):
        text = httpx.get(url + "/metrics").text
    assert 'corral_budget_used_ratio{kind="team",period="day",subject="search"} 0.0' in text


def test_a_budget_of_fractions_of_a_cent_reads_right() -> None:
    tiny = Policy("tiny", DEFAULT_POLICY.defaults, budgets=(Budget(Decimal("0.00002"), "day", key="key_t"),))
    b = Budgets(lambda: tiny, today=lambda: TODAY)
    b.record(event("0.0000213", key="key_t"))
    with pytest.raises(GatewayError) as refused:
        b.check(None, "key_t")
    assert "budget of 0.00002 USD per day is spent (0.000021 USD)" in refused.value.message


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0", "0"),
        ("12.5", "12.50"),
        ("0.01", "0.01"),
        ("0.0049", "0.0049"),
        ("0.00002", "0.00002"),
        ("0.0000213", "0.000021"),
    ],
)
def test_usd_formatting(amount: str, shown: str) -> None:
    assert usd(Decimal(amount)) == shown
