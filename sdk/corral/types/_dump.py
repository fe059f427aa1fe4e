"""`to_dict()` / `model_dump()` / `to_json()` for the SDK's response types, as openai-python's
models have: plain JSON-ready data (amounts as decimal strings, pydantic arguments dumped)."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

__all__ = ["Dumpable", "plain"]

#: Fields kept out of dumps: `raw` is the body as received (`.raw` has it).
_SKIPPED = frozenset({"raw"})


def plain(value: Any) -> Any:
    """`value` as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name not in _SKIPPED
        }
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model (parsed tool arguments)
        return dump(mode="json")
    return value


class Dumpable:
    """Mixin for the response dataclasses."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """This object as a dict of JSON-ready values."""
        out: dict[str, Any] = plain(self)
        return out

    def model_dump(self) -> dict[str, Any]:
        """The same as `to_dict()`, under openai-python's (pydantic's) name."""
        return self.to_dict()

    def to_json(self, *, indent: int | None = 2) -> str:
        """`to_dict()` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)
