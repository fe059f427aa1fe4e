"""Providers' usage and billing exports, read into daily totals per logical model. The
layouts are `LAYOUTS` (shown by `corral reconcile --help` and in the README)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

from gateway.catalogue.deployments import Catalogue

LAYOUTS = """\
Export layouts (header names matched case-insensitively; extra columns ignored):

bedrock: an AWS Cost and Usage Report, CUR 2.0 (line_item_usage_start_date,
line_item_product_code, line_item_usage_type, line_item_usage_amount,
line_item_unblended_cost) or legacy CUR (lineItem/UsageStartDate, lineItem/ProductCode,
lineItem/UsageType, lineItem/UsageAmount, lineItem/UnblendedCost). Only AmazonBedrock
lines whose usage type names a catalogue model (e.g. USE1-Llama4Scout17B-input-tokens)
count, the others are skipped and counted; the -input-tokens, -output-tokens and
-cache-read-input-token-count suffixes say which tokens the usage amount is, and those
tokens are compared with the ledger's as well as the cost.

every other provider: one line per day and model with date (or day, usage_date;
YYYY-MM-DD or an ISO timestamp), model (or model_id: the provider's model ID or Corral's
logical name), input_tokens (or prompt_tokens), output_tokens (or completion_tokens),
optional cached_tokens and cost_usd (or cost, amount_usd). Export the provider console's
usage by day and model and name the columns so; without token columns only cost is
compared.
"""


class ExportError(ValueError):
    """The export file cannot be read as the provider's layout; the message says why."""


@dataclass(slots=True)
class DailyUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    has_tokens: bool = False


@dataclass(slots=True)
class Export:
    usage: dict[tuple[date, str], DailyUsage] = field(default_factory=dict)
    skipped_lines: int = 0

    def add(self, day: date, model: str) -> DailyUsage:
        return self.usage.setdefault((day, model), DailyUsage())


GENERIC = {
    "date": ("date", "day", "usage_date"),
    "model": ("model", "model_id"),
    "input": ("input_tokens", "prompt_tokens"),
    "output": ("output_tokens", "completion_tokens"),
    "cached": ("cached_tokens", "cached_input_tokens"),
    "cost": ("cost_usd", "cost", "amount_usd"),
}
CUR = {
    "date": ("line_item_usage_start_date", "lineitem/usagestartdate"),
    "product": ("line_item_product_code", "lineitem/productcode"),
    "usage_type": ("line_item_usage_type", "lineitem/usagetype"),
    "amount": ("line_item_usage_amount", "lineitem/usageamount"),
    "cost": ("line_item_unblended_cost", "lineitem/unblendedcost"),
}
#: AWS's product code for Bedrock lines in a Cost and Usage Report.
CUR_PRODUCT = "amazonbedrock"
Layout = Literal["generic", "aws_cur"]


def _column(header: Mapping[str, str], names: Iterable[str], required: bool, where: str) -> str | None:
    for name in names:
        if name in header:
            return header[name]
    if required:
        raise ExportError(f"{where}: no column named {' or '.join(names)}")
    return None


def _day(value: str, where: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise ExportError(f"{where}: {value!r} is not a date") from exc


def _number(value: str | None, where: str) -> Decimal:
    if value is None or not value.strip():
        return Decimal(0)
    try:
        return Decimal(value.strip().lstrip("$").replace(",", ""))
    except InvalidOperation as exc:
        raise ExportError(f"{where}: {value!r} is not a number") from exc


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _generic(rows: list[dict[str, str]], header: dict[str, str], names: dict[str, str], source: str) -> Export:
    cols = {k: _column(header, v, k in {"date", "model", "cost"}, source) for k, v in GENERIC.items()}
    out = Export()
    for line, row in enumerate(rows, 2):
        where = f"{source}:{line}"
        raw_model = (row.get(cols["model"] or "") or "").strip()
        usage = out.add(_day(row[cols["date"] or ""], where), names.get(raw_model, raw_model))
        for key, attr in (("input", "input_tokens"), ("output", "output_tokens"), ("cached", "cached_tokens")):
            if cols[key]:
                setattr(usage, attr, getattr(usage, attr) + int(_number(row.get(cols[key] or ""), where)))
                usage.has_tokens = True
        usage.cost_usd += _number(row.get(cols["cost"] or ""), where)
    return out


def _cur_tokens(usage: DailyUsage, usage_type: str, amount: Decimal) -> None:
    """Add a CUR line's usage amount to the tokens its usage type names (then the day's
    tokens are compared with the ledger's)."""
    kind = usage_type.lower()
    if "cache-read" in kind:
        usage.cached_tokens += int(amount)
    elif kind.endswith("input-tokens") or "-input-tokens-" in kind:
        usage.input_tokens += int(amount)
    elif kind.endswith("output-tokens") or "-output-tokens-" in kind:
        usage.output_tokens += int(amount)
    else:
        return
    usage.has_tokens = True


def _cur(rows: list[dict[str, str]], header: dict[str, str], models: list[str], source: str) -> Export:
    cols = {k: _column(header, v, k != "product", source) for k, v in CUR.items()}
    squashed = [(_squash(m), m) for m in models]
    out = Export()
    for line, row in enumerate(rows, 2):
        where = f"{source}:{line}"
        product = (row.get(cols["product"] or "") or "AmazonBedrock").strip()
        usage_type = row.get(cols["usage_type"] or "") or ""
        model = next((name for key, name in squashed if key in _squash(usage_type)), None)
        if CUR_PRODUCT not in _squash(product) or model is None:
            out.skipped_lines += 1
            continue
        usage = out.add(_day(row[cols["date"] or ""], where), model)
        _cur_tokens(usage, usage_type, _number(row.get(cols["amount"] or ""), where))
        usage.cost_usd += _number(row.get(cols["cost"] or ""), where)
    return out


def read_export(path: Path, provider: str, catalogue: Catalogue, layout: Layout = "generic") -> Export:
    """Daily totals per logical model from `path` in `provider`'s documented layout."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = {name.strip().lower(): name for name in reader.fieldnames or ()}
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExportError(f"{path}: {exc}") from exc
    if not header:
        raise ExportError(f"{path}: empty file (expected a header line)")
    if layout == "aws_cur":
        return _cur(rows, header, sorted(catalogue.models), str(path))
    names = {d.model_id: d.model for m in catalogue.models for d in catalogue.deployments(m) if d.provider == provider}
    return _generic(rows, header, names, str(path))
