"""The response cache through a running gateway (in-process LRU, SQLite ledger, the fakes):
hit, miss and bypass with their reasons, team isolation, TTL expiry, streams replayed from a
whole answer and whole answers from a stream, Cache-Control, tools, the ledger's hit rows,
"saved by cache" in the spend report, Idempotency-Key, and the /metrics counters."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import corral
import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from gateway.config import load_settings
from gateway.metering.render import money
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.metering.tables import attempt_table, request_table
from gateway.runtime import Runtime
from tests.cache.policy import write_policy
from tests.support import running_gateway

CHAT = "/v1/chat/completions"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass
class Gateway:
    url: str
    runtime: Runtime
    store: SqlStore

    def post(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return httpx.post(self.url + CHAT, json=body, headers=headers, timeout=20)

    def stream(self, body: dict[str, Any], **headers: str) -> tuple[httpx.Headers, list[dict[str, Any]], bytes]:
        with httpx.stream("POST", self.url + CHAT, json={**body, "stream": True}, headers=headers, timeout=20) as r:
            assert r.status_code == 200
            raw = r.read()
        events = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        return r.headers, [orjson.loads(e) for e in events[:-1]], raw

    def upstream_calls(self, marker: str) -> int:
        return sum(1 for f in self.runtime.fakes for r in f.requests if marker.encode() in r.body)

    def row(self, request_id: str) -> dict[str, Any]:
        """The ledger's request row (waiting, bounded, for the writer)."""
        table = request_table()
        for _ in range(500):
            with self.store.engine.connect() as connection:
                found = connection.execute(select(table).where(table.c.request_id == request_id)).mappings().first()
            if found is not None:
                return dict(found)
            time.sleep(0.02)
        pytest.fail(f"no ledger row for {request_id}")

    def attempts(self, request_id: str) -> list[dict[str, Any]]:
        table = attempt_table()
        with self.store.engine.connect() as connection:
            rows = connection.execute(select(table).where(table.c.request_id == request_id)).mappings().all()
        return [dict(r) for r in rows]

    def counter(self, name: str, **labels: str) -> float:
        text = httpx.get(self.url + "/metrics", timeout=10).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("cache")
    settings = load_settings(env={}).model_copy(update={"policy_path": str(write_policy(directory))})
    store = SqlStore(f"sqlite:///{directory / 'ledger.db'}")
    with running_gateway(settings, QueueSink(store, directory / "usage.journal")) as (base, rt):
        yield Gateway(base, rt, store)
    store.close()


def _body(marker: str, team: str, cache: str | None = "yes", **extra: Any) -> dict[str, Any]:
    tags = {"team": team} | ({"cache": cache} if cache else {})
    return {
        "model": "llama-4-scout",
        "messages": [{"role": "user", "content": f"tell me about {marker}"}],
        "max_tokens": 16,
        "temperature": 0,
        "corral": {"tags": tags},
        **extra,
    }


def _case() -> tuple[str, str]:
    token = secrets.token_hex(6)
    return f"marker-{token}", f"team-{token}"


def test_a_repeat_is_a_hit_with_its_own_ledger_row(gateway: Gateway) -> None:
    marker, team = _case()
    first = gateway.post(_body(marker, team))
    second = gateway.post(_body(marker, team))
    assert first.status_code == second.status_code == 200
    assert first.headers["x-corral-cache"] == "miss"
    assert second.headers["x-corral-cache"] == "hit"
    assert second.json() == first.json()
    assert gateway.upstream_calls(marker) == 1
    original = first.headers["x-corral-request-id"]
    assert second.headers["x-corral-cache-original-request-id"] == original
    assert second.headers["x-corral-request-id"] != original
    assert second.headers["x-corral-cost-usd"] == "0.0000000000"
    assert second.headers["x-corral-provider"] == first.headers["x-corral-provider"]
    paid = Decimal(first.headers["x-corral-cost-usd"])
    assert paid > 0 and Decimal(second.headers["x-corral-cache-saved-usd"]) == paid

    hit = gateway.row(second.headers["x-corral-request-id"])
    assert hit["status"] == "cache_hit" and hit["cost_usd"] == 0 and hit["saved_usd"] == paid
    assert hit["cache_of"] == original and hit["team"] == team and hit["provider"] == first.headers["x-corral-provider"]
    assert hit["prompt_tokens"] == hit["completion_tokens"] == 0
    (attempt,) = gateway.attempts(second.headers["x-corral-request-id"])
    assert attempt["outcome"] == "cache_hit" and attempt["cost_usd"] == 0 and attempt["saved_usd"] == paid
    miss = gateway.row(original)
    assert miss["status"] == "ok" and miss["cost_usd"] == paid and miss["saved_usd"] == 0 and miss["cache_of"] is None


def test_the_spend_report_shows_saved_by_cache_and_never_counts_hits_as_spend(gateway: Gateway) -> None:
    marker, team = _case()
    first = gateway.post(_body(marker, team))
    for _ in range(2):
        assert gateway.post(_body(marker, team)).headers["x-corral-cache"] == "hit"
    hit = gateway.post(_body(marker, team))
    gateway.row(hit.headers["x-corral-request-id"])
    paid = Decimal(first.headers["x-corral-cost-usd"])
    today = datetime.now(UTC).date().isoformat()
    query = {"start": today, "end": today, "group_by": "team,model,provider", "team": team}
    report = httpx.get(gateway.url + "/v1/spend", params=query, timeout=10)
    assert report.status_code == 200, report.text
    (row,) = report.json()["rows"]
    assert row["provider"] == first.headers["x-corral-provider"] and row["model"] == "llama-4-scout"
    assert row["requests"] == 1 and row["attempts"] == 1 and row["cache_hits"] == 3
    assert Decimal(row["cost_usd"]) == paid
    assert Decimal(row["saved_by_cache_usd"]) == 3 * paid
    csv = httpx.get(gateway.url + "/v1/spend", params={**query, "format": "csv"}, timeout=10).text
    header, line = csv.splitlines()[:2]
    values = dict(zip(header.split(","), line.split(","), strict=True))
    assert values["cache_hits"] == "3" and Decimal(values["saved_by_cache_usd"]) == 3 * paid
    page = httpx.get(gateway.url + "/reports/spend", params={"from": today, "to": today, "team": team}, timeout=10)
    assert page.status_code == 200
    card = page.text.split('id="saved-by-cache"', 1)[1].split("</div>", 1)[0]
    assert "Saved by cache (USD)" in card and f'title="{money(3 * paid)} USD exactly"' in card


def test_teams_never_share_an_entry_unless_the_rule_says_so(gateway: Gateway) -> None:
    marker, team = _case()
    other = team + "-other"
    assert gateway.post(_body(marker, team)).headers["x-corral-cache"] == "miss"
    assert gateway.post(_body(marker, other)).headers["x-corral-cache"] == "miss"
    assert gateway.upstream_calls(marker) == 2
    shared = marker + "-shared"
    assert gateway.post(_body(shared, team, cache="shared")).headers["x-corral-cache"] == "miss"
    assert gateway.post(_body(shared, other, cache="shared")).headers["x-corral-cache"] == "hit"
    assert gateway.upstream_calls(shared) == 1


def test_an_entry_expires_after_its_ttl(gateway: Gateway) -> None:
    marker, team = _case()
    body = _body(marker, team, cache=None, corral={"tags": {"team": team}, "cache": {"ttl_s": 1}})
    assert gateway.post(body).headers["x-corral-cache"] == "miss"
    assert gateway.post(body).headers["x-corral-cache"] == "hit"
    time.sleep(1.2)
    assert gateway.post(body).headers["x-corral-cache"] == "miss"
    assert gateway.upstream_calls(marker) == 2


def test_without_a_rule_or_a_request_asking_the_cache_is_not_in_play(gateway: Gateway) -> None:
    marker, team = _case()
    for _ in range(2):
        answer = gateway.post(_body(marker, team, cache=None))
        assert "x-corral-cache" not in answer.headers
    assert gateway.upstream_calls(marker) == 2


def test_a_whole_answer_is_replayed_as_a_stream(gateway: Gateway) -> None:
    marker, team = _case()
    whole = gateway.post(_body(marker, team, stream_options=None))
    headers, chunks, _raw = gateway.stream(_body(marker, team, stream_options={"include_usage": True}))
    assert headers["x-corral-cache"] == "hit" and headers["content-type"].startswith("text/event-stream")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole.json()["choices"][0]["message"]["content"]
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["usage"] == whole.json()["usage"]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert gateway.upstream_calls(marker) == 1


def test_a_stream_is_kept_as_the_whole_answer_it_spelled_out(gateway: Gateway) -> None:
    marker, team = _case()
    headers, chunks, _raw = gateway.stream(_body(marker, team))
    assert headers["x-corral-cache"] == "miss"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    whole = gateway.post(_body(marker, team))
    assert whole.headers["x-corral-cache"] == "hit"
    assert whole.headers["x-corral-cache-original-request-id"] == headers["x-corral-request-id"]
    assert whole.json()["choices"][0]["message"]["content"] == text
    assert whole.json()["choices"][0]["finish_reason"] == "stop"
    again, replayed, _raw = gateway.stream(_body(marker, team))
    assert again["x-corral-cache"] == "hit"
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in replayed if c["choices"]) == text
    assert gateway.upstream_calls(marker) == 1


def test_a_stream_cut_short_is_never_kept(gateway: Gateway) -> None:
    marker, team = _case()
    body = _body(f'{marker} [[fake: {{"mid_stream_error_after": 2, "completion_tokens": 40}}]]', team)
    body["corral"]["allow_fallbacks"] = False
    with httpx.stream("POST", gateway.url + CHAT, json={**body, "stream": True}, timeout=20) as r:
        r.read()
    assert (
        gateway.post(
            _body(f'{marker} [[fake: {{"mid_stream_error_after": 2, "completion_tokens": 40}}]]', team)
        ).headers["x-corral-cache"]
        == "miss"
    )


def test_non_deterministic_requests_bypass(gateway: Gateway) -> None:
    marker, team = _case()
    body = _body(marker, team)
    del body["temperature"]
    for _ in range(2):
        answer = gateway.post(body)
        assert answer.headers["x-corral-cache"] == "bypass"
        assert answer.headers["x-corral-cache-bypass"] == "not_deterministic"
    assert gateway.post({**body, "temperature": 0.7}).headers["x-corral-cache-bypass"] == "not_deterministic"
    assert gateway.upstream_calls(marker) == 3
    seeded = {**body, "temperature": 0.7, "seed": 7}
    assert gateway.post(seeded).headers["x-corral-cache"] == "miss"
    assert gateway.post(seeded).headers["x-corral-cache"] == "hit"


def test_tools_bypass_unless_the_rule_allows_them(gateway: Gateway) -> None:
    marker, team = _case()
    body = _body(marker, team, tools=[WEATHER], tool_choice="required")
    for _ in range(2):
        answer = gateway.post(body)
        assert answer.status_code == 200
        assert answer.headers["x-corral-cache-bypass"] == "tools"
    assert gateway.upstream_calls(marker) == 2
    allowed = _body(marker, team, cache="tools", tools=[WEATHER], tool_choice="required")
    first = gateway.post(allowed)
    second = gateway.post(allowed)
    assert first.headers["x-corral-cache"] == "miss" and second.headers["x-corral-cache"] == "hit"
    assert second.json()["choices"][0]["message"]["tool_calls"] == first.json()["choices"][0]["message"]["tool_calls"]
    assert second.headers["x-corral-tool-validation"] == first.headers["x-corral-tool-validation"] == "valid"
    assert gateway.upstream_calls(marker) == 3


def test_no_cache_asks_upstream_and_refreshes_the_entry_no_store_neither_reads_nor_writes(gateway: Gateway) -> None:
    marker, team = _case()
    first = gateway.post(_body(marker, team))
    fresh = gateway.post(_body(marker, team), **{"cache-control": "no-cache"})
    assert fresh.headers["x-corral-cache"] == "bypass" and fresh.headers["x-corral-cache-bypass"] == "no_cache"
    assert gateway.upstream_calls(marker) == 2
    hit = gateway.post(_body(marker, team))
    assert hit.headers["x-corral-cache-original-request-id"] == fresh.headers["x-corral-request-id"]
    assert hit.headers["x-corral-cache-original-request-id"] != first.headers["x-corral-request-id"]

    other = marker + "-nostore"
    unkept = gateway.post(_body(other, team), **{"cache-control": "no-store"})
    assert unkept.headers["x-corral-cache-bypass"] == "no_store"
    assert gateway.post(_body(other, team)).headers["x-corral-cache"] == "miss"
    assert gateway.upstream_calls(other) == 2


def test_a_hit_under_a_fresh_idempotency_key_is_kept_for_it(gateway: Gateway) -> None:
    marker, team = _case()
    gateway.post(_body(marker, team))
    key = f"idem-{marker}"
    hit = gateway.post(_body(marker, team), **{"idempotency-key": key})
    again = gateway.post(_body(marker, team), **{"idempotency-key": key})
    assert hit.headers["x-corral-cache"] == "hit"
    assert again.headers["x-corral-idempotent-replayed"] == "true"
    assert again.headers["x-corral-request-id"] == hit.headers["x-corral-request-id"]
    assert again.content == hit.content
    assert gateway.upstream_calls(marker) == 1


def test_metrics_count_hits_misses_and_bypasses(gateway: Gateway) -> None:
    before = {
        "hits": gateway.counter("corral_cache_hits_total", model="llama-4-scout"),
        "misses": gateway.counter("corral_cache_misses_total", model="llama-4-scout"),
        "bypasses": gateway.counter("corral_cache_bypasses_total", reason="not_deterministic"),
        "served": gateway.counter("corral_requests_total", outcome="served", reason="cache_hit"),
    }
    marker, team = _case()
    gateway.post(_body(marker, team))
    gateway.post(_body(marker, team))
    gateway.post(_body(marker, team))
    gateway.post(_body(marker, team, temperature=1))
    assert gateway.counter("corral_cache_hits_total", model="llama-4-scout") == before["hits"] + 2
    assert gateway.counter("corral_cache_misses_total", model="llama-4-scout") == before["misses"] + 1
    assert gateway.counter("corral_cache_bypasses_total", reason="not_deterministic") == before["bypasses"] + 1
    assert gateway.counter("corral_requests_total", outcome="served", reason="cache_hit") == before["served"] + 2
    assert gateway.counter("corral_cache_memory_bytes") > 0


def test_an_answer_whose_tool_calls_failed_validation_is_never_kept(gateway: Gateway) -> None:
    """`report` mode delivers an invalid answer as received (verdict invalid): not cached."""
    marker, team = _case()
    text = f'{marker} [[fake: {{"tool_args": "schema_invalid"}}]]'
    body = _body(text, team, cache="tools", tools=[WEATHER], tool_choice="required")
    body["corral"]["tool_validation"] = "report"
    first = gateway.post(body)
    assert first.status_code == 200 and first.headers["x-corral-tool-validation"] == "invalid"
    assert gateway.post(body).headers["x-corral-cache"] == "miss"
    assert gateway.upstream_calls(marker) == 2


def test_the_responses_api_refuses_corral_cache_rather_than_ignore_it(gateway: Gateway) -> None:
    body = {"model": "llama-4-scout", "input": "hi", "temperature": 0, "corral": {"cache": {"ttl_s": 60}}}
    refused = httpx.post(gateway.url + "/v1/responses", json=body, timeout=20)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "unsupported_parameter"
    assert refused.json()["error"]["param"] == "corral.cache"


def test_the_sdk_asks_for_the_cache_and_reads_hits_whole_and_streamed(gateway: Gateway) -> None:
    marker, team = _case()
    messages = [{"role": "user", "content": f"sdk {marker}"}]
    ask: dict[str, Any] = {"temperature": 0, "max_tokens": 16, "tags": {"team": team}, "cache_ttl_s": 60}
    with corral.Corral(base_url=gateway.url, api_key="unused", max_retries=0) as client:
        first = client.chat.completions.create(model="llama-4-scout", messages=messages, **ask)
        second = client.chat.completions.create(model="llama-4-scout", messages=messages, **ask)
        stream = client.chat.completions.create(model="llama-4-scout", messages=messages, stream=True, **ask)
        streamed = stream.get_final_completion()
    assert first.corral.cache == "miss" and first.corral.cache_original_request_id is None
    assert second.corral.cache == "hit" and second.corral.cache_original_request_id == first.corral.request_id
    assert second.corral.cost_usd == 0 and second.choices[0].message.content == first.choices[0].message.content
    assert stream.corral.cache == "hit" and stream.corral.cost_usd == 0
    assert streamed.choices[0].message.content == first.choices[0].message.content
    assert streamed.usage is not None and streamed.usage.total_tokens == first.usage.total_tokens  # type: ignore[union-attr]
    assert gateway.upstream_calls(f"sdk {marker}") == 1


def test_a_hit_names_the_parameters_without_effect_as_a_miss_does(gateway: Gateway) -> None:
    """`x-corral-ignored-params` on a hit, whole or streamed, as on the miss that made it."""
    marker, team = _case()
    body = _body(marker, team, reasoning_effort="high")
    first = gateway.post(body)
    second = gateway.post(body)
    assert (first.headers["x-corral-cache"], second.headers["x-corral-cache"]) == ("miss", "hit")
    assert first.headers["x-corral-ignored-params"] == "reasoning_effort"
    assert second.headers["x-corral-ignored-params"] == "reasoning_effort"
    headers, _, _ = gateway.stream(body)
    assert headers["x-corral-cache"] == "hit" and headers["x-corral-ignored-params"] == "reasoning_effort"
    assert gateway.upstream_calls(marker) == 1
