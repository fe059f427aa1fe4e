"""vLLM-specific behaviour against VllmFake (docs/providers.md#7-vllm-self-hosted-pool)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dispatch.tools import reask_request
from gateway.fakes.script import Behaviour
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.vllm.adapter import VllmProvider, conversation_key
from gateway.toolcalls import Action, Mode, ToolGuard, prepare

from .conftest import chat_request, deployment, running_provider, start_fake

DEP = deployment("vllm")
K = ErrorKind


async def _with(fake_options: dict[str, Any], **provider_options: Any) -> tuple[Any, Any]:
    fake = await start_fake("vllm", **fake_options)
    return fake, running_provider("vllm", fake.url, **provider_options)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("context_too_long", K.CONTEXT_TOO_LONG),
        ("bad_request", K.BAD_REQUEST),
        ("server_error", K.UPSTREAM_5XX),
        ("rate_limited", K.RATE_LIMITED),
        ("overloaded", K.OVERLOADED),
    ],
)
async def test_flat_error_bodies(error: Any, kind: ErrorKind) -> None:
    fake, running = await _with({"flat_errors": True})
    try:
        async with running as provider:
            fake.script.push(Behaviour(error=error))
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(chat_request(), DEP)
    finally:
        await fake.stop()
    assert caught.value.kind is kind and caught.value.provider == "vllm"


@pytest.mark.parametrize("flat", [False, True])
async def test_in_stream_error_in_both_shapes(flat: bool) -> None:
    fake, running = await _with({"flat_errors": flat})
    try:
        async with running as provider:
            fake.script.push(Behaviour(mid_stream_error_after=2, completion_tokens=10))
            stream = await provider.stream(chat_request(stream=True), DEP)
            with pytest.raises(UpstreamError) as caught:
                async for _ in stream:
                    pass
    finally:
        await fake.stop()
    assert caught.value.kind is K.UPSTREAM_5XX and caught.value.status == 500


async def test_cached_tokens_and_prefix_hit_rate() -> None:
    fake, running = await _with({"enable_prompt_tokens_details": True})
    messages = [{"role": "system", "content": "You are a terse assistant. " * 40}, {"role": "user", "content": "hi"}]
    try:
        async with running as provider:
            assert isinstance(provider, VllmProvider)
            await provider.complete(chat_request(messages=messages), DEP)
            second = await provider.complete(chat_request(messages=messages), DEP)
            await provider.pool.scrape_all()
            state = provider.pool_state()[0]
    finally:
        await fake.stop()
    assert second.usage.cached_tokens > 0
    assert second.body["usage"]["prompt_tokens_details"]["cached_tokens"] == second.usage.cached_tokens
    assert state.prefix_hit_rate is not None and 0 < state.prefix_hit_rate < 1


@pytest.mark.parametrize("legacy", [False, True])
async def test_metric_names_old_and_new(legacy: bool) -> None:
    fake, running = await _with({"legacy_metric_names": legacy})
    try:
        async with running as provider:
            await provider.complete(chat_request(), DEP)
            fake.script.push(Behaviour(tokens_per_s=20, completion_tokens=100))
            stream = await provider.stream(chat_request(stream=True), DEP)
            async for _ in stream:
                break
            await provider.pool.scrape_all()
            state = provider.pool_state()[0]
            await stream.aclose()
    finally:
        await fake.stop()
    assert state.running == 1 and state.kv_cache_usage > 0 and state.prefix_hit_rate is not None


async def test_api_key_from_the_pool_config() -> None:
    fake = await start_fake("vllm", api_key="pool-secret")
    try:
        async with running_provider("vllm", fake.url, api_key="pool-secret") as provider:
            result = await provider.complete(chat_request(), DEP)
            assert result.body["choices"] and fake.requests[-1].headers["Authorization"] == "Bearer pool-secret"
        async with running_provider("vllm", fake.url, api_key="nope") as provider:
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(chat_request(), DEP)
    finally:
        await fake.stop()
    assert caught.value.kind is K.AUTH and "nope" not in caught.value.message


async def test_context_beyond_max_model_len_is_unsupported() -> None:
    fake = await start_fake("vllm", max_model_len=256)
    try:
        async with running_provider("vllm", fake.url) as provider:
            long = chat_request(messages=[{"role": "user", "content": "word " * 2000}])
            reason = provider.unsupported(long, DEP)
            assert reason is not None and "256" in reason
            assert provider.unsupported(chat_request(), DEP) is None
            with pytest.raises(UpstreamError) as caught:
                await provider.complete(long, DEP)
    finally:
        await fake.stop()
    assert caught.value.kind is K.CONTEXT_TOO_LONG


async def test_vllm_extras_are_dropped() -> None:
    fake, running = await _with({})
    try:
        async with running as provider:
            result = await provider.complete(chat_request(), DEP)
    finally:
        await fake.stop()
    body = result.body
    assert set(body) <= {"id", "object", "created", "model", "choices", "usage"}
    assert set(body["choices"][0]) == {"index", "message", "finish_reason", "logprobs"}
    assert body["choices"][0]["message"] == {"role": "assistant", "content": body["choices"][0]["message"]["content"]}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}


async def test_a_reask_reaches_the_replica_with_its_structured_outputs() -> None:
    """Several candidate functions: the re-ask's constraint is vLLM's `structured_outputs`,
    and it is on the wire (the replica received it), not dropped by the parameter table."""
    req = chat_request(tools=[WEATHER, TIME], tool_choice="required")
    guard = ToolGuard(prepare(req.body), Mode.RETRY, reasks=1)
    no_call = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "no"}, "finish_reason": "stop"}]}
    decision = guard.check(no_call)
    assert decision.action is Action.REASK and decision.attempt is not None
    fake, running = await _with({})
    try:
        async with running as provider:
            assert provider.constrains_reasks
            await provider.complete(reask_request(req, guard, decision.attempt, provider), DEP)
    finally:
        await fake.stop()
    sent = fake.requests[-1].json
    assert sent["tool_choice"] == "auto"
    names = {item["properties"]["name"]["const"] for item in sent["structured_outputs"]["json"]["items"]["anyOf"]}
    assert names == {"get_weather", "get_time"}


def test_a_conversation_keeps_its_affinity_key_as_it_grows() -> None:
    """Turn one and every later turn share the key (with or without a system prompt), so
    they land on the replica that holds the conversation's prefix."""
    user = {"role": "user", "content": "Plan a trip to Lyon."}
    later = [user, {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "And Nice?"}]
    assert conversation_key(chat_request(messages=[user])) == conversation_key(chat_request(messages=later))
    system = {"role": "system", "content": "You are a travel agent."}
    with_system = conversation_key(chat_request(messages=[system, user]))
    assert with_system == conversation_key(chat_request(messages=[system, *later]))
    assert with_system != conversation_key(chat_request(messages=[user]))
