"""Shared helpers for the OpenAI-dialect adapter tests (Groq, Together, DeepInfra, vLLM,
Fireworks, SGLang, Ollama)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import SecretStr

from gateway.catalogue.deployments import Deployment, load_catalogue
from gateway.config import ProviderConfig, Timeouts, VllmPoolConfig
from gateway.fakes.registry import make_fake
from gateway.providers.openai.adapter import OpenAICompatProvider
from gateway.providers.registry import provider_class
from gateway.schema.chat import ChatCompletionRequest, ChatRequest, estimate_prompt_tokens, features_of

CATALOGUE = load_catalogue()


def deployment(provider: str, model: str = "llama-4-scout") -> Deployment:
    return next(d for d in CATALOGUE.deployments(model) if d.provider == provider)


def chat_request(**body: Any) -> ChatRequest:
    """A validated request as the API layer would hand it to an adapter."""
    body.setdefault("model", "llama-4-scout")
    body.setdefault("messages", [{"role": "user", "content": "Say hi"}])
    parsed = ChatCompletionRequest.model_validate(body)
    options = parsed.stream_options
    return ChatRequest(
        body=body,
        model=parsed.model,
        stream=parsed.stream,
        include_usage=bool(options and options.include_usage),
        features=features_of(body),
        prompt_tokens_estimate=estimate_prompt_tokens(body),
        max_output_tokens=parsed.max_completion_tokens or parsed.max_tokens,
    )


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}


# --------------------------------------------------------------------------- adapters against fakes

OPENAI_DIALECT = ("groq", "together", "deepinfra", "vllm", "fireworks", "sglang", "ollama")
TEST_KEYS = {
    "groq": "test-groq-key",
    "together": "test-together-key",
    "deepinfra": "test-deepinfra-key",
    "fireworks": "test-fireworks-key",
}


@dataclass
class Backend:
    """One adapter wired to its fake."""

    name: str
    fake: Any
    provider: OpenAICompatProvider
    deployment: Deployment

    @property
    def chats(self) -> list[Any]:
        """The chat requests the fake received (health and metrics probes left out)."""
        return [r for r in self.fake.requests if r.path.endswith("/chat/completions")]


def provider_config(
    name: str,
    base: str,
    *,
    api_key: str | None = None,
    timeouts: Timeouts | None = None,
    urls: list[str] | None = None,
    interval_s: float = 0.05,
) -> ProviderConfig:
    """Config for `name` pointing at `base` (a fake's base_url, or for vLLM a replica root)."""
    key = api_key if api_key is not None else TEST_KEYS.get(name)
    pool = None
    if name == "vllm":
        pool = VllmPoolConfig(urls=urls or [base], health_interval_s=interval_s, metrics_interval_s=interval_s)
    return ProviderConfig(
        name=name,
        base_url="" if name == "vllm" else base,
        api_key=SecretStr(key) if key else None,
        timeouts=timeouts or Timeouts(connect_s=2.0, first_byte_s=10.0, total_s=30.0),
        pool_size=16,
        vllm=pool,
    )


async def start_fake(name: str, **kwargs: Any) -> Any:
    if name == "vllm":
        kwargs.setdefault("model_id", deployment("vllm").model_id)
    fake = make_fake(name, **kwargs)
    await fake.start()
    return fake


def fake_base(name: str, fake: Any) -> str:
    return str(fake.url if name == "vllm" else fake.base_url)


@asynccontextmanager
async def running_provider(name: str, base: str, **kwargs: Any) -> AsyncIterator[OpenAICompatProvider]:
    provider = provider_class(name)(provider_config(name, base, **kwargs))
    assert isinstance(provider, OpenAICompatProvider)
    await provider.start()
    try:
        yield provider
    finally:
        await provider.close()


@pytest.fixture(params=OPENAI_DIALECT)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    name: str = request.param
    fake = await start_fake(name)
    try:
        async with running_provider(name, fake_base(name, fake)) as provider:
            yield Backend(name, fake, provider, deployment(name))
    finally:
        await fake.stop()


async def eventually(check: Callable[[], bool], *, within_s: float = 5.0) -> None:
    """Wait until `check()` holds (background probes run on short intervals in tests)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
