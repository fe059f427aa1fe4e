"""Money in the ledger: `Decimal` in Python, NUMERIC(20, 10) in PostgreSQL, and an exact
integer count of 1e-10 USD in SQLite (whose NUMERIC would silently become a float)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import BigInteger, Numeric
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

PLACES = 10
QUANTUM = Decimal(1).scaleb(-PLACES)
_SCALE = 10**PLACES


def quantize(amount: Decimal) -> Decimal:
    """An amount rounded (half-even) to the ledger's 10 decimal places."""
    return amount.quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


class Money(TypeDecorator[Decimal]):
    """A USD amount stored exactly on every backend; SUM() over it stays exact."""

    impl = Numeric(20, PLACES)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, PLACES, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = quantize(Decimal(value))
        if dialect.name == "sqlite":
            return int(exact.scaleb(PLACES))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return quantize(Decimal(int(value)) / _SCALE)
        return quantize(Decimal(value))
