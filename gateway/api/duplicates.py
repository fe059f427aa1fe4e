"""Duplicate keys in a JSON body: refused, because they are how smuggled parameters hide
(`{"model": "a", …, "model": "b"}` is read as "b" here and maybe as "a" by a proxy or
log in front). orjson keeps the last value silently, so:

- `no_duplicate_keys` is the fast check on every body: it compares the colons in the
  raw bytes with those in the parsed body serialised again. Outside strings a colon
  only separates a key from its value, and orjson never escapes a colon, so when the raw
  bytes write no colon as `\\u003a` every key and string of the parsed body is in the raw
  bytes with the same colons; a duplicate adds at least its own separator. Equal counts
  prove there is none (two C-speed counts and one orjson dump: about 2 µs per KiB measured
  here, 28 µs for a 12 KiB body beside 10 µs for orjson.loads).
- `refuse_duplicate_keys`, when the counts differ (or `\\u003` appears), parses again
  with the standard library and a pair hook and raises a 400 naming the key.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from gateway.errors import bad_request

__all__ = ["no_duplicate_keys", "refuse_duplicate_keys"]


def no_duplicate_keys(raw: bytes, body: Any) -> bool:
    """True when `raw` (which parsed to `body`) certainly has no duplicate key."""
    return b"\\u003" not in raw and raw.count(b":") == orjson.dumps(body).count(b":")


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise bad_request(
                f"duplicate key {key[:80]!r} in the request body; each key may appear once per object",
                param=key[:80],
            )
        seen[key] = value
    return seen


def refuse_duplicate_keys(raw: bytes) -> None:
    """Raise a 400 naming the first duplicated key, if there is one."""
    json.loads(raw, object_pairs_hook=_pairs)
