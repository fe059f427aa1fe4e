"""Chat-completions answers -> legacy `text_completion` objects and stream chunks (pure)."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TextShell"]


@dataclass(slots=True)
class TextShell:
    """One completion's id, time and model, shared by its answer or every chunk of its stream."""

    model: str
    created: int
    echo_prompt: str | None = None
    id: str = field(default_factory=lambda: f"cmpl-{secrets.token_hex(16)}")

    def _object(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }

    def answer(self, chat: Mapping[str, Any]) -> dict[str, Any]:
        """A whole `chat.completion` as a `text_completion`."""
        choice = (chat.get("choices") or [{}])[0]
        text = (choice.get("message") or {}).get("content") or ""
        if self.echo_prompt is not None:
            text = self.echo_prompt + text
        out = self._object([_choice(text, choice.get("finish_reason"))])
        if chat.get("usage") is not None:
            out["usage"] = chat["usage"]
        if chat.get("system_fingerprint") is not None:
            out["system_fingerprint"] = chat["system_fingerprint"]
        return out

    def echoed(self) -> dict[str, Any] | None:
        """A stream's first chunk when `echo` is set: the prompt."""
        if self.echo_prompt is None:
            return None
        return self._object([_choice(self.echo_prompt, None)])

    def chunk(self, chat: Mapping[str, Any]) -> dict[str, Any] | None:
        """A `chat.completion.chunk` as a text chunk; None for chunks with no text and no end
        (the role-only first chunk, usage-only chunks)."""
        choices = chat.get("choices") or ()
        if not choices:
            return None
        choice = choices[0]
        text = (choice.get("delta") or {}).get("content") or ""
        finish = choice.get("finish_reason")
        if not text and finish is None:
            return None
        return self._object([_choice(text, finish)])

    def usage(self, usage: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        """The final `stream_options.include_usage` chunk: no choices, totals in `usage`."""
        return {**self._object([]), "usage": usage, **extra}


def _choice(text: str, finish_reason: Any) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
