"""Provider name -> adapter class. Adding a backend is one file plus one line here."""

from __future__ import annotations

from importlib import import_module

from gateway.providers.base import Provider

PROVIDER_CLASSES: dict[str, str] = {
    "groq": "gateway.providers.groq:GroqProvider",
    "together": "gateway.providers.together:TogetherProvider",
    "deepinfra": "gateway.providers.deepinfra:DeepInfraProvider",
    "bedrock": "gateway.providers.bedrock.adapter:BedrockProvider",
    "vllm": "gateway.providers.vllm.adapter:VllmProvider",
    "fireworks": "gateway.providers.fireworks:FireworksProvider",
    "sglang": "gateway.providers.sglang:SglangProvider",
    "ollama": "gateway.providers.ollama:OllamaProvider",
    "litellm": "gateway.providers.litellm.adapter:LitellmProvider",
}


def provider_class(name: str) -> type[Provider]:
    module, _, attr = PROVIDER_CLASSES[name].partition(":")
    cls: type[Provider] = getattr(import_module(module), attr)
    assert issubclass(cls, Provider)
    return cls
