"""One cached answer as stored (JSON bytes, the same in Redis and in memory): the whole
answer's body as first sent, which deployment made it, what it cost and the request id
that paid for it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson


class BadEntry(ValueError):
    """Bytes under a cache key that are not an entry (another version, or damaged)."""


@dataclass(frozen=True, slots=True)
class Entry:
    #: The chat.completion object (model = the logical model the client named).
    answer: dict[str, Any]
    provider: str
    model_id: str
    #: What the original answer cost in all (re-asks included): what each hit saves.
    cost_usd: Decimal
    request_id: str
    #: The tool-call validation verdict the original answer got (None: no tools checked).
    tool_validation: str | None = None

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "answer": self.answer,
                "provider": self.provider,
                "model_id": self.model_id,
                "cost_usd": str(self.cost_usd),
                "request_id": self.request_id,
                "tool_validation": self.tool_validation,
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> Entry:
        try:
            raw = orjson.loads(data)
            cost, verdict = Decimal(raw["cost_usd"]), raw.get("tool_validation")
            return cls(raw["answer"], raw["provider"], raw["model_id"], cost, raw["request_id"], verdict)
        except (orjson.JSONDecodeError, KeyError, TypeError, ArithmeticError) as exc:
            raise BadEntry(str(exc)) from exc
