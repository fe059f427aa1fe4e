"""Server-sent-event framing for OpenAI-style streams."""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"data: [DONE]\n\n"


def frame(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def usage_chunk(template: dict[str, Any], usage: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's final `stream_options.include_usage` chunk: no choices, totals in `usage`."""
    return {
        "id": template.get("id", ""),
        "object": "chat.completion.chunk",
        "created": template.get("created", 0),
        "model": template.get("model", ""),
        "choices": [],
        "usage": usage,
        **extra,
    }
