"""Spend rows from `GET /v1/spend`, with money as `Decimal`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from corral.types._dump import Dumpable
from corral.types._parse import dict_list, extras, opt_decimal, opt_int, opt_str
from corral.types.corral import CorralInfo

_ROW_KEYS = frozenset(
    {"provider", "model", "team", "day", "requests", "prompt_tokens", "completion_tokens", "cost_usd"}
)


@dataclass(slots=True)
class SpendRow:
    """One group of the report. Group keys not asked for are None; others the gateway adds
    (e.g. `key`, `tags`) are in `extra`."""

    cost_usd: Decimal
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    provider: str | None = None
    model: str | None = None
    team: str | None = None
    day: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpendRow:
        return cls(
            cost_usd=opt_decimal(data.get("cost_usd")) or Decimal(0),
            requests=opt_int(data.get("requests")) or 0,
            prompt_tokens=opt_int(data.get("prompt_tokens")) or 0,
            completion_tokens=opt_int(data.get("completion_tokens")) or 0,
            provider=opt_str(data.get("provider")),
            model=opt_str(data.get("model")),
            team=opt_str(data.get("team")),
            day=opt_str(data.get("day")),
            extra=extras(data, _ROW_KEYS),
        )

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class SpendReport(Dumpable):
    """Usage:
    report = client.spend(start="2025-06-01", end="2025-06-30", group_by=["provider", "day"])
    for row in report: print(row.provider, row.day, row.cost_usd)
    report.total_cost_usd
    """

    rows: list[SpendRow]
    total_cost_usd: Decimal
    corral: CorralInfo = field(default_factory=CorralInfo)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, corral: CorralInfo | None = None) -> SpendReport:
        rows = [SpendRow.from_dict(item) for item in dict_list(data.get("rows"))]
        total = opt_decimal(data.get("total_cost_usd"))
        return cls(
            rows=rows,
            total_cost_usd=total if total is not None else sum((row.cost_usd for row in rows), Decimal(0)),
            corral=corral or CorralInfo(),
            raw=data,
        )

    def __iter__(self) -> Iterator[SpendRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)
