"""Fakes of the OpenAI-compatible backends: Groq, Together AI, DeepInfra, Fireworks AI,
SGLang and Ollama (vLLM has its own module, with its pool surface).

Each serves its provider's real path under `base_url`, checks a Bearer key, knows only
its provider's model IDs from the catalogue, and answers in that provider's shapes:
bodies, usage, stream framing, error envelopes, rate-limit headers (wire facts from
shared/reference/providers.md §2-§4). The engine they share is `oai_base`; each dialect
lives in its own module and is re-exported here.
"""

from __future__ import annotations

from gateway.fakes.deepinfra import DeepInfraFake
from gateway.fakes.fireworks import FireworksFake
from gateway.fakes.groq import GroqFake
from gateway.fakes.ollama import OllamaFake
from gateway.fakes.sglang import SglangFake
from gateway.fakes.together import TogetherFake

__all__ = ["DeepInfraFake", "FireworksFake", "GroqFake", "OllamaFake", "SglangFake", "TogetherFake"]
