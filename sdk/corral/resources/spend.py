"""The query for `client.spend(...)` (GET /v1/spend) and the path of `client.explain(...)`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

SPEND_PATH = "/v1/spend"
EXPLAIN_PATH = "/v1/route/explain"

DateLike = dt.date | str


def _day(name: str, value: DateLike) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date or 'YYYY-MM-DD', got {value!r}")


def spend_query(
    start: DateLike,
    end: DateLike | None,
    group_by: str | Sequence[str] | None,
    filters: Mapping[str, str] | None,
) -> dict[str, str]:
    """Query parameters for the spend API (always JSON); `end` defaults to `start`."""
    query = {"start": _day("start", start), "end": _day("end", end if end is not None else start)}
    if query["end"] < query["start"]:
        raise ValueError(f"end ({query['end']}) is before start ({query['start']})")
    if group_by:
        keys = [k.strip() for k in group_by.split(",")] if isinstance(group_by, str) else list(group_by)
        query["group_by"] = ",".join(k for k in keys if k)
    for key, value in (filters or {}).items():
        if key in query or key == "format":
            raise ValueError(f"filter {key!r} clashes with a spend parameter")
        query[key] = str(value)
    query["format"] = "json"
    return query
