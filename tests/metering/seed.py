"""A small ledger with every kind of request, its figures worked out by hand:

| id | day   | served by | team   | what happened                                   | cost (USD)                 |
|----|-------|-----------|--------|-------------------------------------------------|----------------------------|
| r1 | 11-01 | groq      | search | Scout 1,000/200                                  | 0.000178                   |
| r2 | 11-01 | together  | ads    | groq billed a failed try 500/100, then together | 0.000089 + 0.000298        |
| r3 | 11-01 | vllm      | search | Scout 1M/1M on the pool                          | 0.25                       |
| r4 | 11-02 | groq      | search | Maverick; tool calls re-asked (key_a)           | 0.00046 + 0.000468 (reask) |
| r5 | 11-02 | groq      | -      | cancelled stream, estimated 1,000/50            | 0.000127                   |
| r6 | 11-02 | -         | ads    | groq timed out, together 503: nothing billed    | 0                          |
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from gateway.metering.events import UsageEvent
from tests.metering.factory import event, failed

DAY2 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
SCOUT = "llama-4-scout"
MAVERICK = "llama-4-maverick"


def seed() -> list[UsageEvent]:
    groq_try = failed(
        "groq", error_kind="upstream_5xx", prompt_tokens=500, completion_tokens=100, cost_usd=Decimal("0.000089")
    )
    return [
        event("r1"),
        event(
            "r2",
            provider="together",
            model_id="t",
            prompt_tokens=1000,
            completion_tokens=200,
            cost_usd=Decimal("0.000298"),
            tags={"team": "ads"},
            attempts=(groq_try, failed("together", error_kind=None, status=200)),
        ),
        event(
            "r3",
            provider="vllm",
            model_id="v",
            prompt_tokens=1_000_000,
            completion_tokens=1_000_000,
            cost_usd=Decimal("0.25"),
            attempts=(failed("vllm", error_kind=None, status=200),),
        ),
        event(
            "r4",
            at=DAY2,
            model=MAVERICK,
            prompt_tokens=2100,
            completion_tokens=80,
            cost_usd=Decimal("0.000468"),
            api_key_id="key_a",
            tool_validation="reasked",
            attempts=(
                failed(
                    "groq",
                    error_kind="tool_validation",
                    status=200,
                    prompt_tokens=2000,
                    completion_tokens=100,
                    cost_usd=Decimal("0.00046"),
                ),
                failed("groq", error_kind=None, status=200, reask=True),
            ),
        ),
        event(
            "r5",
            at=DAY2,
            status="cancelled",
            stream=True,
            completion_tokens=50,
            usage_estimated=True,
            cost_usd=Decimal("0.000127"),
            tags={},
        ),
        event(
            "r6",
            at=DAY2,
            provider="",
            model_id="",
            status="error",
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=Decimal(0),
            tags={"team": "ads"},
            attempts=(failed("groq"), failed("together", error_kind="upstream_5xx", status=503)),
        ),
    ]


TOTAL = Decimal("0.25162")
