"""The vLLM pool: discovery, health, metrics, least-loaded choice, against two VllmFake replicas."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.fakes.script import Behaviour
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.vllm.adapter import VllmProvider
from gateway.providers.vllm.metrics import LoadSample
from gateway.providers.vllm.pool import AFFINITY_SLACK, Replica, ReplicaState, VllmPool

from .conftest import chat_request, closed_port, deployment, eventually, running_provider, start_fake

MODEL = deployment("vllm").model_id


@pytest.fixture
async def replicas() -> AsyncIterator[list[Any]]:
    fakes = [await start_fake("vllm"), await start_fake("vllm")]
    try:
        yield fakes
    finally:
        for fake in fakes:
            await fake.stop()


def by_url(provider: VllmProvider) -> dict[str, ReplicaState]:
    return {state.url: state for state in provider.pool_state()}


async def test_discovery_health_and_metrics(replicas: list[Any]) -> None:
    urls = [f.url for f in replicas]
    async with running_provider("vllm", urls[0], urls=urls) as provider:
        assert isinstance(provider, VllmProvider)
        states = by_url(provider)
        assert list(states) == urls
        for state in states.values():
            assert state.healthy and MODEL in state.models and state.last_ok_at is not None
            assert state.max_model_len is not None and state.max_model_len > 0
            assert state.running == 0 and state.waiting == 0 and state.kv_cache_usage == 0.0


async def test_least_loaded_replica_is_chosen_and_metrics_follow(
    replicas: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Load alone decides here: with the default slack a conversation may stay on its home
    # replica (rendezvous-hashed with the replicas' random ports), which made the split
    # below depend on the ports drawn (all four on one replica in about 1 run in 8).
    monkeypatch.setattr("gateway.providers.vllm.pool.AFFINITY_SLACK", 0)
    urls = [f.url for f in replicas]
    async with running_provider("vllm", urls[0], urls=urls) as provider:
        assert isinstance(provider, VllmProvider)
        slow = Behaviour(tokens_per_s=20, completion_tokens=40)
        for fake in replicas:
            fake.script.default = slow
        streams = [
            await provider.stream(chat_request(stream=True, messages=_conversation(i)), deployment("vllm"))
            for i in range(4)
        ]
        counts = [_chats(f) for f in replicas]
        assert counts == [2, 2], "in-flight counting spreads requests between scrapes"
        await eventually(lambda: all(s.running == 2 for s in provider.pool_state()))
        for fake in replicas:
            fake.script.default = Behaviour()
        for stream in streams:
            await stream.aclose()
        await eventually(lambda: all(s.inflight == 0 for s in provider.pool_state()))


def _conversation(i: int) -> list[dict[str, str]]:
    """Distinct conversations (no shared prefix, so no affinity between them)."""
    return [{"role": "user", "content": f"conversation {i}: say hi"}]


def _chats(fake: Any) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/chat/completions"))


async def test_busy_replica_is_avoided(replicas: list[Any]) -> None:
    urls = [f.url for f in replicas]
    async with running_provider("vllm", urls[0], urls=urls) as provider:
        assert isinstance(provider, VllmProvider)
        busy = next(r for r in provider.pool.replicas if r.url == urls[0])
        busy.inflight += AFFINITY_SLACK + 1  # requests of ours still running there
        for i in range(3):
            await provider.complete(chat_request(messages=_conversation(i)), deployment("vllm"))
        assert _chats(replicas[0]) == 0, "whatever their affinity, new requests avoid the busy replica"
        assert _chats(replicas[1]) == 3
        busy.inflight -= AFFINITY_SLACK + 1


async def test_unhealthy_replica_drops_out_and_returns(replicas: list[Any]) -> None:
    urls = [f.url for f in replicas]
    async with running_provider("vllm", urls[0], urls=urls) as provider:
        assert isinstance(provider, VllmProvider)
        replicas[0].healthy = False
        await eventually(lambda: not by_url(provider)[urls[0]].healthy)
        before = _chats(replicas[0])
        for _ in range(4):
            await provider.complete(chat_request(), deployment("vllm"))
        assert _chats(replicas[0]) == before
        replicas[0].healthy = True
        await eventually(lambda: by_url(provider)[urls[0]].healthy)


async def test_no_healthy_replica_is_connection(replicas: list[Any]) -> None:
    urls = [f.url for f in replicas]
    async with running_provider("vllm", urls[0], urls=urls) as provider:
        for fake in replicas:
            fake.healthy = False
        assert isinstance(provider, VllmProvider)
        await eventually(lambda: not any(s.healthy for s in provider.pool_state()))
        with pytest.raises(UpstreamError) as caught:
            await provider.complete(chat_request(), deployment("vllm"))
        assert caught.value.kind is ErrorKind.CONNECTION


async def test_unknown_model_is_model_gone(replicas: list[Any]) -> None:
    async with running_provider("vllm", replicas[0].url) as provider:
        with pytest.raises(UpstreamError) as caught:
            await provider.complete(chat_request(), deployment("vllm", "llama-4-maverick"))
        assert caught.value.kind is ErrorKind.MODEL_GONE


async def test_refused_connection_marks_replica_unhealthy_and_the_next_serves(replicas: list[Any]) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    async with running_provider("vllm", dead, urls=[dead, replicas[0].url], interval_s=60) as provider:
        assert isinstance(provider, VllmProvider)
        assert not by_url(provider)[dead].healthy
        # Pretend the last health check still believed in it, and the live replica is busier.
        dead_replica, live_replica = provider.pool.replicas
        dead_replica.healthy, dead_replica.models = True, {MODEL: 1000}
        live_replica.sample = LoadSample(running=5)
        result = await provider.complete(chat_request(), deployment("vllm"))
        assert result.body["choices"], "the live replica served what the dead one refused"
        assert not by_url(provider)[dead].healthy
        assert provider.pool_state()[1].inflight == 0 and provider.pool_state()[0].inflight == 0


async def test_every_replica_refusing_is_a_connection_error(replicas: list[Any]) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    async with running_provider("vllm", dead, urls=[dead], interval_s=60) as provider:
        assert isinstance(provider, VllmProvider)
        (dead_replica,) = provider.pool.replicas
        dead_replica.healthy, dead_replica.models = True, {MODEL: 1000}
        with pytest.raises(UpstreamError) as caught:
            await provider.stream(chat_request(stream=True), deployment("vllm"))
        assert caught.value.kind is ErrorKind.CONNECTION
        assert not dead_replica.healthy and dead_replica.inflight == 0


async def test_stream_asks_for_usage_and_releases_its_slot(replicas: list[Any]) -> None:
    async with running_provider("vllm", replicas[0].url) as provider:
        assert isinstance(provider, VllmProvider)
        stream = await provider.stream(chat_request(stream=True), deployment("vllm"))
        assert provider.pool_state()[0].inflight == 1
        chunks = [c async for c in stream]
        assert chunks and stream.usage is not None
        assert provider.pool_state()[0].inflight == 0
        sent = [r for r in replicas[0].requests if r.path.endswith("/chat/completions")][-1].json
        assert sent["stream_options"] == {"include_usage": True}


def test_load_accounts_for_requests_since_the_scrape() -> None:
    replica = Replica("http://r")
    replica.inflight = 3
    assert replica.load() == 3
    replica.sample, replica.inflight_at_scrape = LoadSample(running=5, waiting=2), 3
    assert replica.load() == 7
    replica.inflight = 1  # two of ours finished since the scrape
    assert replica.load() == 5
    replica.inflight = 4
    assert replica.load() == 8


def test_ties_rotate() -> None:
    pool = VllmPool(["http://a", "http://b"], health_interval_s=1, metrics_interval_s=1)
    for replica in pool.replicas:
        replica.healthy, replica.models = True, {"m": None}
    first = pool.acquire("m")
    pool.release(first)
    second = pool.acquire("m")
    assert {first.url, second.url} == {"http://a", "http://b"}


def _pool(*urls: str) -> VllmPool:
    pool = VllmPool(list(urls), health_interval_s=1, metrics_interval_s=1)
    for replica in pool.replicas:
        replica.healthy, replica.models = True, {"m": None}
    return pool


def test_a_conversation_sticks_to_its_replica() -> None:
    pool = _pool("http://a", "http://b", "http://c")
    homes = set()
    for _ in range(6):
        replica = pool.acquire("m", affinity="You are a support bot.\x1eMy order is late")
        homes.add(replica.url)
        pool.release(replica)
    assert len(homes) == 1, "the same prefix always lands on the same replica"
    spread = {pool.acquire("m", affinity=f"conversation {i}").url for i in range(30)}
    assert spread == {"http://a", "http://b", "http://c"}, "different prefixes spread over the pool"


def test_affinity_gives_way_to_load() -> None:
    pool = _pool("http://a", "http://b")
    home = pool.acquire("m", affinity="shared system prompt")
    for _ in range(AFFINITY_SLACK + 1):
        home.inflight += 1
    other = pool.acquire("m", affinity="shared system prompt")
    assert other.url != home.url, "an overloaded home replica is skipped"


def test_a_home_replica_that_leaves_moves_only_its_conversations() -> None:
    pool = _pool("http://a", "http://b", "http://c")
    keys = [f"conversation {i}" for i in range(40)]
    before = {}
    for key in keys:
        replica = pool.acquire("m", affinity=key)
        before[key] = replica.url
        pool.release(replica)
    pool.replicas[0].healthy = False
    moved = 0
    for key in keys:
        replica = pool.acquire("m", affinity=key)
        moved += replica.url != before[key]
        pool.release(replica)
    assert moved == sum(1 for url in before.values() if url == "http://a")


async def test_close_cancels_background_tasks(replicas: list[Any]) -> None:
    async with running_provider("vllm", replicas[0].url) as provider:
        assert isinstance(provider, VllmProvider)
        tasks = list(provider.pool._tasks)
        assert tasks and not any(t.done() for t in tasks)
    await asyncio.sleep(0)
    assert all(t.done() for t in tasks)


async def test_prompt_cache_key_keeps_a_conversation_family_on_one_replica(replicas: list[Any]) -> None:
    """OpenAI's `prompt_cache_key` is the pool's affinity key: conversations with different
    openings but one key land on one replica (whose prefix cache then serves them)."""
    urls = [f.url for f in replicas]
    async with running_provider("vllm", urls[0], urls=urls) as provider:
        assert isinstance(provider, VllmProvider)
        for i in range(6):
            request = chat_request(messages=_conversation(i))
            request.cache_key = "tenant-42"
            await provider.complete(request, deployment("vllm"))
        assert sorted(_chats(f) for f in replicas) == [0, 6]
        sent = [r.json for f in replicas for r in f.requests if r.path.endswith("/chat/completions")]
        assert all("prompt_cache_key" not in body for body in sent)
