"""Provider name -> fake server class, and the adapter base URL that reaches a fake."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gateway.fakes.server import FakeServer

FAKE_CLASSES: dict[str, str] = {
    "groq": "gateway.fakes.openai_compat:GroqFake",
    "together": "gateway.fakes.openai_compat:TogetherFake",
    "deepinfra": "gateway.fakes.openai_compat:DeepInfraFake",
    "bedrock": "gateway.fakes.bedrock.server:BedrockFake",
    "vllm": "gateway.fakes.vllm:VllmFake",
    "fireworks": "gateway.fakes.fireworks:FireworksFake",
    "sglang": "gateway.fakes.sglang:SglangFake",
    "ollama": "gateway.fakes.ollama:OllamaFake",
}


def make_fake(provider: str, **kwargs: Any) -> FakeServer:
    module, _, attr = FAKE_CLASSES[provider].partition(":")
    cls = getattr(import_module(module), attr)
    assert issubclass(cls, FakeServer)
    fake: FakeServer = cls(**kwargs)
    return fake
