"""`GET /v1/models`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from corral.types._dump import Dumpable
from corral.types._parse import dict_list, extras, opt_int, opt_str
from corral.types.corral import CorralInfo

_MODEL_KEYS = frozenset({"id", "object", "owned_by", "created"})


@dataclass(slots=True)
class Model(Dumpable):
    id: str
    owned_by: str | None = None
    created: int | None = None
    object: str = "model"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        return cls(
            id=opt_str(data.get("id")) or "",
            owned_by=opt_str(data.get("owned_by")),
            created=opt_int(data.get("created")),
            object=opt_str(data.get("object")) or "model",
            extra=extras(data, _MODEL_KEYS),
        )


@dataclass(slots=True)
class ModelList(Dumpable):
    data: list[Model]
    corral: CorralInfo = field(default_factory=CorralInfo)

    @classmethod
    def from_dict(cls, body: dict[str, Any], *, corral: CorralInfo | None = None) -> ModelList:
        return cls(
            data=[Model.from_dict(item) for item in dict_list(body.get("data"))],
            corral=corral or CorralInfo(),
        )

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
