"""client.explain(...) and client.spend(...)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sdk_fakes import FakeGateway

import corral

MESSAGES = [{"role": "user", "content": "Hi"}]


def test_explain_sends_the_chat_body_and_reads_the_plan(gateway: FakeGateway) -> None:
    explanation = gateway.client().explain(
        model="llama-4-scout", messages=MESSAGES, prefer="cost", providers={"ignore": ["bedrock"]}
    )
    request = gateway.requests[0]
    assert (request.method, request.url.path) == ("POST", "/v1/route/explain")
    assert gateway.sent_json() == {
        "model": "llama-4-scout",
        "messages": MESSAGES,
        "corral": {"prefer": "cost", "providers": {"ignore": ["bedrock"]}},
    }
    assert isinstance(explanation, corral.RouteExplanation)
    assert explanation.providers == ["vllm", "groq"]
    first, second = explanation.plan
    assert (first.reason, first.expected_cost_usd, first.score) == ("cheapest", Decimal("0.00001"), None)
    assert first.extra == {"rank": 1, "breaker": "closed"}
    assert second.score == 0.7
    assert explanation.dropped[0].provider == "bedrock"
    assert explanation.dropped[0].reason == "ignored by request"
    assert explanation.dropped[0].model_id == "meta.llama4-scout"
    assert explanation.rule == "default" and explanation.rejected is None
    assert explanation.extra == {"objective": {"prefer": "cost", "max_ttft_ms": None}}
    assert explanation.corral.request_id == "req_123"


def test_spend_query_and_rows(gateway: FakeGateway) -> None:
    report = gateway.client().spend(
        start=dt.date(2025, 6, 1), end="2025-06-30", group_by=["provider", "day"], filters={"team": "search"}
    )
    request = gateway.requests[0]
    assert (request.method, request.url.path) == ("GET", "/v1/spend")
    assert dict(request.url.params) == {
        "start": "2025-06-01",
        "end": "2025-06-30",
        "group_by": "provider,day",
        "team": "search",
        "format": "json",
    }
    assert "idempotency-key" not in request.headers
    assert len(report) == 2
    first = report.rows[0]
    assert (first.provider, first.day, first.requests, first.total_tokens) == ("groq", "2025-06-01", 10, 1200)
    assert first.cost_usd == Decimal("0.000310") and first.model is None
    assert report.total_cost_usd == Decimal("0.000410")
    assert sum((row.cost_usd for row in report), Decimal(0)) == report.total_cost_usd


def test_spend_defaults_and_validation(gateway: FakeGateway) -> None:
    client = gateway.client()
    client.spend(start="2025-06-01", group_by="provider, model")
    assert dict(gateway.requests[0].url.params) == {
        "start": "2025-06-01",
        "end": "2025-06-01",
        "group_by": "provider,model",
        "format": "json",
    }
    with pytest.raises(ValueError, match="before"):
        client.spend(start="2025-06-02", end="2025-06-01")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        client.spend(start="June")
    with pytest.raises(ValueError, match="clashes"):
        client.spend(start="2025-06-01", filters={"format": "csv"})


def test_spend_total_falls_back_to_the_sum() -> None:
    report = corral.SpendReport.from_dict({"rows": [{"cost_usd": "0.1"}, {"cost_usd": 0.2}]})
    assert report.total_cost_usd == Decimal("0.3")


async def test_async_explain_and_spend(gateway: FakeGateway) -> None:
    async with gateway.async_client() as client:
        explanation = await client.explain(model="llama-4-scout", messages=MESSAGES)
        report = await client.spend(start="2025-06-01", end="2025-06-01")
        models = await client.models.list()
    assert explanation.providers == ["vllm", "groq"]
    assert report.total_cost_usd == Decimal("0.000410")
    assert len(models) == 2


def test_explain_accepts_tools_since_they_change_the_route(gateway: FakeGateway) -> None:
    def lookup(order_id: str) -> str:
        return order_id

    gateway.client().explain(model="llama-4-scout", messages=MESSAGES, tools=[lookup], tool_choice="required")
    body = gateway.sent_json()
    assert body["tools"][0]["function"]["name"] == "lookup"
    assert body["tool_choice"] == "required"
