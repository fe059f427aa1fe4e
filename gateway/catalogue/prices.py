"""A dated price book and request cost in Decimal (never float)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from gateway.catalogue.pool_prices import Derived, NoThroughput, PoolBasis, derive
from gateway.schema.usage import Usage

DEFAULT_PATH = Path(__file__).resolve().parent / "prices.yaml"
PER = Decimal(1_000_000)


class PriceBookError(ValueError):
    """The price file is not valid; the message says which entry and why."""


@dataclass(frozen=True, slots=True)
class Price:
    provider: str
    model: str
    effective: date
    input: Decimal
    output: Decimal
    cached_input: Decimal
    basis: str = "tokens"
    #: For `basis: gpu_hours`: how the price was derived from the pool (gateway.catalogue.pool_prices).
    derived: Derived | None = None

    def cost(self, usage: Usage) -> Decimal:
        uncached = max(usage.prompt_tokens - usage.cached_tokens, 0)
        return (
            uncached * self.input + usage.cached_tokens * self.cached_input + usage.completion_tokens * self.output
        ) / PER

    def estimate(self, prompt_tokens: int, output_tokens: int) -> Decimal:
        return (prompt_tokens * self.input + output_tokens * self.output) / PER


class PriceBook:
    """Prices by (provider, model), each a list sorted by effective date."""

    def __init__(self, prices: list[Price], currency: str = "USD") -> None:
        self.currency = currency
        self._by_key: dict[tuple[str, str], list[Price]] = {}
        for price in sorted(prices, key=lambda p: p.effective):
            self._by_key.setdefault((price.provider, price.model), []).append(price)

    def at(self, provider: str, model: str, when: date) -> Price | None:
        """The price in force on `when`, or None when the book has none."""
        found = None
        for price in self._by_key.get((provider, model), ()):
            if price.effective > when:
                break
            found = price
        return found

    def with_prices(self, extra: list[Price]) -> PriceBook:
        """This book plus `extra` (prices configured with a deployment rather than in the file)."""
        prices = [p for entries in self._by_key.values() for p in entries]
        return PriceBook(prices + extra, currency=self.currency)

    def in_force(self, when: date) -> list[Price]:
        return [p for (prov, model) in sorted(self._by_key) if (p := self.at(prov, model, when))]


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, float):
        raise PriceBookError(f'{where}: write prices as strings ("0.11"), not floats')
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise PriceBookError(f"{where}: {value!r} is not a number") from exc
    if not result.is_finite() or result < 0:
        raise PriceBookError(f"{where}: {value!r} must be a non-negative number")
    return result


ENTRY_KEYS = frozenset({"provider", "model", "effective", "input", "output", "cached_input", "currency", "basis"})
BASES = frozenset({"tokens", "gpu_hours"})
#: The ledger's unit: a book in another currency would mix units in one column.
LEDGER_CURRENCY = "USD"


def _effective(value: Any, where: str) -> date:
    try:
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    except ValueError as exc:
        raise PriceBookError(f"{where}: effective {value!r} is not a date (YYYY-MM-DD)") from exc


def _entry(entry: Any, where: str, currency: str, pool: PoolBasis) -> Price:
    if not isinstance(entry, dict):
        raise PriceBookError(f"{where}: expected a mapping")
    if str(entry.get("basis", "tokens")) == "gpu_hours":
        return _pool_entry(entry, where, currency, pool)
    missing = {"provider", "model", "effective", "input", "output"} - set(entry)
    if missing:
        raise PriceBookError(f"{where}: missing {sorted(missing)}")
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise PriceBookError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(ENTRY_KEYS)}")
    if str(entry.get("currency", currency)) != LEDGER_CURRENCY:
        raise PriceBookError(f"{where}: currency {entry.get('currency', currency)!r}: the ledger is kept in USD")
    basis = str(entry.get("basis", "tokens"))
    if basis not in BASES:
        raise PriceBookError(f"{where}: basis {basis!r} must be one of {sorted(BASES)}")
    input_price = _decimal(entry["input"], f"{where}.input")
    return Price(
        provider=str(entry["provider"]),
        model=str(entry["model"]),
        effective=_effective(entry["effective"], where),
        input=input_price,
        output=_decimal(entry["output"], f"{where}.output"),
        cached_input=_decimal(entry.get("cached_input", str(input_price)), f"{where}.cached_input"),
        basis=basis,
    )


def _pool_entry(entry: dict[str, Any], where: str, currency: str, pool: PoolBasis) -> Price:
    """A self-hosted pool's row: its prices are derived from the pool, never typed in."""
    missing = {"provider", "model", "effective"} - set(entry)
    if missing:
        raise PriceBookError(f"{where}: missing {sorted(missing)}")
    typed = {"input", "output", "cached_input"} & set(entry)
    if typed:
        raise PriceBookError(
            f"{where}: basis gpu_hours prices are derived from the pool's GPUs, $/GPU-hour and throughput "
            f"(gateway/catalogue/pool_prices.py, providers.vllm.vllm in the config file); remove {sorted(typed)}"
        )
    unknown = set(entry) - ENTRY_KEYS
    if unknown:
        raise PriceBookError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(ENTRY_KEYS)}")
    if str(entry.get("currency", currency)) != LEDGER_CURRENCY:
        raise PriceBookError(f"{where}: currency {entry.get('currency', currency)!r}: the ledger is kept in USD")
    model = str(entry["model"])
    try:
        derived = derive(pool, model)
    except NoThroughput as exc:
        raise PriceBookError(f"{where}: {exc}") from exc
    return Price(
        provider=str(entry["provider"]),
        model=model,
        effective=_effective(entry["effective"], where),
        input=derived.input,
        output=derived.output,
        cached_input=derived.input,
        basis="gpu_hours",
        derived=derived,
    )


def parse_price_book(raw: Any, source: str = "price book", pool: PoolBasis | None = None) -> PriceBook:
    """`pool`: what the self-hosted pool costs and serves (default: the stated pool)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("prices"), list):
        raise PriceBookError(f"{source}: expected a mapping with a 'prices' list")
    unit = raw.get("unit", "per_1m_tokens")
    if unit != "per_1m_tokens":
        raise PriceBookError(f"{source}: unit {unit!r}: prices are per 1M tokens ('per_1m_tokens')")
    currency = str(raw.get("currency", LEDGER_CURRENCY))
    basis = pool if pool is not None else PoolBasis()
    prices: list[Price] = []
    seen: dict[tuple[str, str, date], int] = {}
    for index, entry in enumerate(raw["prices"]):
        where = f"{source}: prices[{index}]"
        price = _entry(entry, where, currency, basis)
        key = (price.provider, price.model, price.effective)
        if key in seen:
            raise PriceBookError(
                f"{where}: {price.provider}/{price.model} from {price.effective} "
                f"is already priced by prices[{seen[key]}]"
            )
        seen[key] = index
        prices.append(price)
    return PriceBook(prices, currency=currency)


def load_price_book(path: Path = DEFAULT_PATH, pool: PoolBasis | None = None) -> PriceBook:
    try:
        with path.open() as handle:
            raw = yaml.safe_load(handle)
    except (OSError, yaml.YAMLError) as exc:
        raise PriceBookError(f"{path}: {exc}") from exc
    return parse_price_book(raw, str(path), pool)
