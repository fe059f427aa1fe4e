"""Tests of the fake providers; shared helpers for talking to them."""

from __future__ import annotations

from typing import Any

import orjson

#: One model ID per provider, as the catalogue spells it.
SCOUT = {
    "groq": "meta-llama/llama-4-scout-17b-16e-instruct",
    "together": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "deepinfra": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "vllm": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "fireworks": "accounts/fireworks/models/llama4-scout-instruct-basic",
    "sglang": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
}
#: Where each fake's chat endpoint lives under its root URL.
CHAT_PATHS = {
    "groq": "/openai/v1/chat/completions",
    "together": "/v1/chat/completions",
    "deepinfra": "/v1/openai/chat/completions",
    "vllm": "/v1/chat/completions",
    "fireworks": "/inference/v1/chat/completions",
    "sglang": "/v1/chat/completions",
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
SEARCH_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "search_web",
        "description": "Search the web for pages",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def chat(provider: str, content: str = "Hello there", **extra: Any) -> dict[str, Any]:
    """A minimal valid chat body for `provider`."""
    return {"model": SCOUT[provider], "messages": [{"role": "user", "content": content}], **extra}


def sse_payloads(text: str) -> list[Any]:
    """The `data:` payloads of an SSE body, JSON-decoded; `[DONE]` stays a string."""
    out: list[Any] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        out.append(data if data == "[DONE]" else orjson.loads(data))
    return out


def stream_text(chunks: list[Any]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or "" for c in chunks if isinstance(c, dict) and c.get("choices")
    )
