"""The vLLM replica fake: its operational endpoints, batch queue, KV and prefix-cache metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.fakes.content import count_prompt_tokens
from gateway.fakes.script import Behaviour
from gateway.fakes.vllm import VllmFake
from tests.fakes import SCOUT, chat, sse_payloads

MODEL = SCOUT["vllm"]


@pytest.fixture
async def vllm() -> AsyncIterator[VllmFake]:
    fake = VllmFake(max_num_seqs=1, max_model_len=4096, kv_cache_tokens=1000)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def client(vllm: VllmFake) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=vllm.base_url, timeout=10) as http:
        yield http


async def metrics(client: httpx.AsyncClient) -> dict[str, float]:
    """Sample name (labels dropped) -> value, checking every sample carries vLLM's labels."""
    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            assert sample.labels["model_name"] == MODEL and sample.labels["engine"] == "0"
            if sample.name.endswith("_bucket"):
                continue
            values[sample.name] = sample.value
    return values


async def wait_for(client: httpx.AsyncClient, name: str, value: float) -> dict[str, float]:
    for _ in range(1000):
        found = await metrics(client)
        if found[name] == value:
            return found
        await asyncio.sleep(0.002)
    raise AssertionError(f"{name} never reached {value}")


async def test_health_follows_the_healthy_flag(vllm: VllmFake, client: httpx.AsyncClient) -> None:
    ok = await client.get("/health")
    assert ok.status_code == 200 and ok.content == b""
    vllm.healthy = False
    dead = await client.get("/health")
    assert dead.status_code == 503 and dead.content == b""
    response = await client.post("/v1/chat/completions", json=chat("vllm"))
    assert response.status_code == 500 and response.json()["error"]["type"] == "InternalServerError"


async def test_models_list_max_model_len(client: httpx.AsyncClient) -> None:
    card = (await client.get("/v1/models")).json()["data"][0]
    assert card["id"] == MODEL and card["max_model_len"] == 4096 and card["owned_by"] == "vllm"


async def test_metrics_count_tokens_and_first_token_latency(client: httpx.AsyncClient) -> None:
    before = await metrics(client)
    assert before["vllm:num_requests_running"] == 0 and before["vllm:kv_cache_usage_perc"] == 0
    body = (await client.post("/v1/chat/completions", json=chat("vllm"))).json()
    after = await metrics(client)
    assert after["vllm:prompt_tokens_total"] == body["usage"]["prompt_tokens"]
    assert after["vllm:generation_tokens_total"] == body["usage"]["completion_tokens"] == 16
    assert after["vllm:time_to_first_token_seconds_count"] == 1
    assert after["vllm:kv_cache_usage_perc"] == 0


async def test_second_request_waits_while_the_batch_is_full(vllm: VllmFake, client: httpx.AsyncClient) -> None:
    hanging = chat("vllm", "x" * 400 + ' [[fake: {"hang": true}]]')
    first = asyncio.create_task(client.post("/v1/chat/completions", json=hanging))
    during = await wait_for(client, "vllm:num_requests_running", 1)
    prompt_tokens = count_prompt_tokens(hanging["messages"])
    assert during["vllm:kv_cache_usage_perc"] == pytest.approx(prompt_tokens / vllm.kv_cache_tokens)
    second = asyncio.create_task(client.post("/v1/chat/completions", json=chat("vllm", "queued")))
    queued = await wait_for(client, "vllm:num_requests_waiting", 1)
    assert queued["vllm:num_requests_running"] == 1
    assert not second.done()
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert (await second).status_code == 200
    idle = await wait_for(client, "vllm:num_requests_running", 0)
    assert idle["vllm:num_requests_waiting"] == 0 and idle["vllm:kv_cache_usage_perc"] == 0


async def test_prefix_cache_hits_on_a_repeated_first_message(client: httpx.AsyncClient) -> None:
    system = {"role": "system", "content": "s" * 400}
    for question in ("first question", "second question"):
        body = {"model": MODEL, "messages": [system, {"role": "user", "content": question}]}
        await client.post("/v1/chat/completions", json=body)
    found = await metrics(client)
    assert found["vllm:prefix_cache_hits_total"] == 100
    assert found["vllm:prefix_cache_queries_total"] == 103 + 103


async def test_legacy_metric_names() -> None:
    fake = VllmFake(legacy_metric_names=True)
    await fake.start()
    try:
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            names = {f.name for f in text_string_to_metric_families((await http.get("/metrics")).text)}
    finally:
        await fake.stop()
    assert {"vllm:gpu_cache_usage_perc", "vllm:gpu_prefix_cache_queries", "vllm:gpu_prefix_cache_hits"} <= names
    assert "vllm:kv_cache_usage_perc" not in names


async def test_answer_shape(client: httpx.AsyncClient) -> None:
    body = (await client.post("/v1/chat/completions", json=chat("vllm"))).json()
    choice = body["choices"][0]
    assert choice["stop_reason"] is None and choice["message"]["tool_calls"] == []
    assert "x-ratelimit-limit-requests" not in body


async def test_usage_chunk_only_with_include_usage(client: httpx.AsyncClient) -> None:
    plain = sse_payloads((await client.post("/v1/chat/completions", json=chat("vllm", stream=True))).text)[:-1]
    assert all("usage" not in c for c in plain)
    assert plain[-1]["choices"][0]["stop_reason"] is None
    options = {"include_usage": True, "continuous_usage_stats": True}
    chunks = sse_payloads(
        (await client.post("/v1/chat/completions", json=chat("vllm", stream=True, stream_options=options))).text
    )[:-1]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 16
    running = [c["usage"]["completion_tokens"] for c in chunks[:-1]]
    assert running == sorted(running) and running[-1] == 16


async def test_context_error_message(client: httpx.AsyncClient) -> None:
    """The current releases' wording (the fake plays 0.12): what is too large, and by how much."""
    response = await client.post("/v1/chat/completions", json=chat("vllm", "z" * 400, max_tokens=4090))
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "'max_tokens' or 'max_completion_tokens' is too large: 4090. This model's maximum context "
            "length is 4096 tokens and your request has 100 input tokens (4090 > 4096 - 100).",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    }
    alone = await client.post("/v1/chat/completions", json=chat("vllm", "z" * 20_000))
    assert alone.status_code == 400
    assert alone.json()["error"]["message"] == (
        "This model's maximum context length is 4096 tokens. However, your request has 5000 input tokens. "
        "Please reduce the length of the input messages."
    )


async def test_context_error_message_of_older_releases() -> None:
    """Older releases (the flat envelope) gave the sum in one sentence."""
    fake = VllmFake(flat_errors=True, max_model_len=4096)
    await fake.start()
    try:
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            response = await http.post("/v1/chat/completions", json=chat("vllm", "z" * 400, max_tokens=4090))
    finally:
        await fake.stop()
    assert response.status_code == 400
    assert response.json()["message"] == (
        "This model's maximum context length is 4096 tokens. However, you requested 4190 tokens "
        "(100 in the messages, 4090 in the completion). Please reduce the length of the messages or completion."
    )


async def test_flat_error_shape_and_not_found() -> None:
    fake = VllmFake(flat_errors=True)
    await fake.start()
    try:
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            response = await http.post("/v1/chat/completions", json={**chat("vllm"), "model": "other"})
    finally:
        await fake.stop()
    assert response.status_code == 404
    body = response.json()
    assert body["object"] == "error" and body["type"] == "NotFoundError" and body["code"] == 404


async def test_api_key_guards_only_the_v1_routes() -> None:
    fake = VllmFake(api_key="secret")
    await fake.start()
    try:
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            refused = await http.post("/v1/chat/completions", json=chat("vllm"))
            health = await http.get("/health")
            allowed = await http.post(
                "/v1/chat/completions", json=chat("vllm"), headers={"Authorization": "Bearer secret"}
            )
    finally:
        await fake.stop()
    assert refused.status_code == 401 and refused.json() == {"error": "Unauthorized"}
    assert health.status_code == 200 and allowed.status_code == 200


async def test_structured_outputs_json(client: httpx.AsyncClient) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    for spec in (schema, orjson.dumps(schema).decode()):
        body = (await client.post("/v1/chat/completions", json=chat("vllm", structured_outputs={"json": spec}))).json()
        jsonschema.validate(orjson.loads(body["choices"][0]["message"]["content"]), schema)
    choice = chat("vllm", structured_outputs={"choice": ["yes", "no"]})
    assert (await client.post("/v1/chat/completions", json=choice)).json()["choices"][0]["message"]["content"] == "yes"


async def test_mid_stream_error_then_done(vllm: VllmFake, client: httpx.AsyncClient) -> None:
    vllm.script.push(Behaviour(mid_stream_error_after=2))
    chunks = sse_payloads((await client.post("/v1/chat/completions", json=chat("vllm", stream=True))).text)
    assert chunks[-2]["error"]["type"] == "InternalServerError" and chunks[-2]["error"]["code"] == 500
    assert chunks[-1] == "[DONE]"


async def test_version_and_load(client: httpx.AsyncClient) -> None:
    assert "version" in (await client.get("/version")).json()
    assert (await client.get("/load")).json() == {"server_load": 0}
