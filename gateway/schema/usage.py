"""Token usage as a backend reported it (or as we estimated it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


# Immutable by type (`Final` fields, checked by mypy), not frozen: 4x cheaper to build, once a request.
@dataclass(slots=True, unsafe_hash=True)
class Usage:
    prompt_tokens: Final[int] = 0
    completion_tokens: Final[int] = 0
    cached_tokens: Final[int] = 0
    #: True when the backend did not report usage and we counted it ourselves.
    estimated: Final[bool] = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.estimated or other.estimated,
        )

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.cached_tokens:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return out

    @classmethod
    def from_openai(cls, raw: Any) -> Usage | None:
        """Read an OpenAI-shaped usage object; None when absent or unusable."""
        if not isinstance(raw, dict):
            return None
        prompt = raw.get("prompt_tokens")
        completion = raw.get("completion_tokens")
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        details = raw.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else None
        return cls(prompt, completion, cached if isinstance(cached, int) else 0)
