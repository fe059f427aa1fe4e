"""Lenient readers for JSON values: the gateway may add fields, and providers vary."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any


def opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def opt_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def opt_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def opt_decimal(value: Any) -> Decimal | None:
    """A money amount: decimal strings are exact; numbers go through `str` to avoid binary noise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            return Decimal(str(value).strip())
        except InvalidOperation:
            return None
    return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def dict_list(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def extras(data: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Members of `data` the SDK does not model, kept so nothing is lost."""
    return {key: value for key, value in data.items() if key not in known}
