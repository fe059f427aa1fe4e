"""GET /v1/spend and /v1/spend/requests on a running gateway with a real ledger: the same
figures as JSON and CSV, the SDK's parameters, key scoping, and the hot path's requests
landing in the ledger."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import corral
import httpx
import pytest
from pydantic import SecretStr

from gateway.config import load_settings
from gateway.metering.drill import requests
from gateway.metering.reports import SpendQuery
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.metering.seed import TOTAL, seed
from tests.support import running_gateway

SPAN = {"from": "2026-11-01", "to": "2026-11-02"}


@dataclass
class LedgerGateway:
    url: str
    store: SqlStore

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.url + path, params=params, timeout=20)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerGateway]:
    directory = tmp_path_factory.mktemp("spend")
    store = SqlStore(f"sqlite:///{directory / 'ledger.db'}")
    store.write(seed())
    sink = QueueSink(store, directory / "usage.journal")
    with running_gateway(load_settings(env={}), sink) as (url, _runtime):
        yield LedgerGateway(url, store)


def test_json_report_with_the_pool(ledger: LedgerGateway) -> None:
    response = ledger.get("/v1/spend", **SPAN, by="provider,day")
    assert response.status_code == 200
    body = response.json()
    assert Decimal(body["total_cost_usd"]) == TOTAL
    assert sum(Decimal(r["cost_usd"]) for r in body["rows"]) == TOTAL
    assert body["pool"]["provider"] == "vllm" and body["pool"]["gpus"] == 8
    assert [(r["provider"], r["day"]) for r in body["rows"]][:2] == [("groq", "2026-11-01"), ("groq", "2026-11-02")]


@pytest.mark.parametrize("how", [{"format": "csv"}, {"accept": "text/csv"}])
def test_csv_has_the_same_figures_as_json(ledger: LedgerGateway, how: dict[str, str]) -> None:
    params = {**SPAN, "by": "team,model"}
    as_json = ledger.get("/v1/spend", **params).json()
    headers = {k: v for k, v in how.items() if k == "accept"}
    query = {**params, **{k: v for k, v in how.items() if k == "format"}}
    response = httpx.get(ledger.url + "/v1/spend", params=query, headers=headers, timeout=20)
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(response.text)))
    # Data rows only: the column sums to the total.
    assert sum(Decimal(line["cost_usd"]) for line in lines) == Decimal(as_json["total_cost_usd"]) == TOTAL
    for line, row in zip(lines, as_json["rows"], strict=True):
        assert line == {k: "" if v is None else str(v) for k, v in row.items()}


def test_the_sdk_reads_the_report(ledger: LedgerGateway) -> None:
    with corral.Corral(base_url=ledger.url, api_key="unused", max_retries=0) as client:
        report = client.spend(start="2026-11-01", end="2026-11-02", group_by=["provider"], filters={"team": "ads"})
    assert report.total_cost_usd == Decimal("0.000387")
    assert {row.provider: row.requests for row in report} == {"groq": 0, "together": 2}


def test_as_provider_what_if(ledger: LedgerGateway) -> None:
    body = ledger.get("/v1/spend", **{"from": "2026-11-01"}, by="provider", as_provider="groq").json()
    assert body["pricing"] == "as-provider: groq" and body["total_cost_usd"] == "0.450445"


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"to": "2026-11-02"}, "missing_required_parameter", "missing 'from'"),
        ({**SPAN, "by": "colour"}, "invalid_value", "choose distinct keys"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "invalid_value", "before"),
        ({**SPAN, "colour": "red"}, "invalid_value", "unknown parameter 'colour'"),
        ({**SPAN, "format": "xml"}, "invalid_value", "json or csv"),
        ({"from": "November"}, "invalid_value", "not a date"),
        ({**SPAN, "as_provider": "acme"}, "invalid_value", "the price book has"),
    ],
)
def test_bad_parameters_get_a_clear_400(ledger: LedgerGateway, params: dict[str, str], code: str, words: str) -> None:
    response = ledger.get("/v1/spend", **params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code and words in error["message"]


def test_drill_down_to_the_requests(ledger: LedgerGateway) -> None:
    body = ledger.get("/v1/spend/requests", **SPAN, provider="groq", team="search").json()
    assert [r["request_id"] for r in body["data"]] == ["r4", "r1"]
    assert body["data"][0]["tool_validation"] == "reasked" and len(body["data"][0]["attempt_rows"]) == 2


def _chat(url: str, **extra: Any) -> httpx.Response:
    body = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16, **extra}
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=20)


def _rows_for(store: SqlStore, request_id: str) -> list[dict[str, Any]]:
    today = datetime.now(UTC).date()
    return [r for r in requests(store.engine, SpendQuery(today, today), limit=10_000) if r["request_id"] == request_id]


def _wait_for_row(store: SqlStore, request_id: str) -> dict[str, Any]:
    for _ in range(500):
        found = _rows_for(store, request_id)
        if found:
            return found[0]
        time.sleep(0.02)
    pytest.fail(f"{request_id} never reached the ledger")


def test_a_served_request_lands_in_the_ledger_once(ledger: LedgerGateway) -> None:
    response = _chat(ledger.url, corral={"tags": {"team": "checkout", "project": "cart"}})
    assert response.status_code == 200
    request_id = response.headers["x-corral-request-id"]
    row = _wait_for_row(ledger.store, request_id)
    assert (row["team"], row["project"], row["status"]) == ("checkout", "cart", "ok")
    assert Decimal(row["cost_usd"]) == Decimal(response.headers["x-corral-cost-usd"])
    assert row["provider"] == response.headers["x-corral-provider"] and row["prompt_tokens"] > 0
    assert len(_rows_for(ledger.store, request_id)) == 1


def test_a_streamed_request_lands_in_the_ledger(ledger: LedgerGateway) -> None:
    with httpx.stream(
        "POST",
        ledger.url + "/v1/chat/completions",
        json={"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "stream": True},
        timeout=20,
    ) as response:
        request_id = response.headers["x-corral-request-id"]
        assert b"[DONE]" in b"".join(response.iter_bytes())
    row = _wait_for_row(ledger.store, request_id)
    assert row["stream"] is True and row["status"] == "ok" and row["completion_tokens"] > 0


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[str]:
    store = SqlStore(f"sqlite:///{tmp_path / 'keyed.db'}")
    store.write(seed())
    settings = load_settings(env={}).model_copy(update={"api_keys": [SecretStr("sk-team-a")]})
    with running_gateway(settings, QueueSink(store, tmp_path / "usage.journal"), auth=True) as (url, _runtime):
        yield url


def test_with_auth_on_a_static_key_is_an_admin_and_sees_all_spend(keyed: str) -> None:
    assert httpx.get(keyed + "/v1/spend", params=SPAN, timeout=20).status_code == 401
    auth = {"authorization": "Bearer sk-team-a"}
    everything = httpx.get(keyed + "/v1/spend", params=SPAN, headers=auth, timeout=20)
    assert everything.status_code == 200 and everything.json()["rows"]
    theirs = httpx.get(keyed + "/v1/spend", params={**SPAN, "key": "key_a"}, headers=auth, timeout=20)
    assert theirs.status_code == 200
