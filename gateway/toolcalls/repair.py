"""Syntax-only JSON repair: truncated brackets, single quotes, trailing commas,
unquoted keys, Python literals (True/False/None), and prose or code fences around the
value. The fixing itself is done by json-repair; `scan.hazard` first refuses any text
whose repair would have to guess a value (cut inside a string, after a key, on a
possibly incomplete number), and afterwards every key and scalar of the result is
compared with the ones written in the text (`scan.leaves`): json-repair rewrites some
strings (it drops a trailing `\\n`, keeps `\\f` and Python's `\\x00` as literal text), and
such a "repair" is refused. Callers keep a repaired value only if it then validates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import json_repair
import orjson

from gateway.toolcalls.scan import find_spans, hazard, leaves

__all__ = ["Repair", "repair_json"]

_FENCE = "```"


@dataclass(frozen=True, slots=True)
class Repair:
    """A repaired value, or why the text could not be repaired safely."""

    value: Any = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def _fragment(text: str, openers: str) -> str | None:
    spans = find_spans(text, openers)
    if not spans:
        return None
    span = spans[0]
    fragment = text[span.start : span.end]
    if not span.closed:
        fragment = fragment.rstrip()
        if fragment.endswith(_FENCE):
            fragment = fragment[: -len(_FENCE)].rstrip()
    return fragment


def repair_json(text: str, openers: str = "{") -> Repair:
    """Parse the first JSON value starting with one of `openers` in `text`, fixing
    syntax only. Strict JSON is tried first, so a valid fragment is never rewritten, and
    a repair is kept only if its keys and scalar values are exactly those written."""
    fragment = _fragment(text, openers)
    if fragment is None:
        return Repair(reason="not repaired: no JSON value found")
    try:
        return Repair(orjson.loads(fragment))
    except orjson.JSONDecodeError:
        pass
    problem = hazard(fragment)
    if problem is not None:
        return Repair(reason=f"not repaired: {problem}")
    try:
        value = json_repair.loads(fragment, skip_json_loads=True)
    except (ValueError, RecursionError) as exc:
        return Repair(reason=f"not repaired: {exc}")
    if isinstance(value, tuple):
        value = value[0]
    try:
        faithful = _same(list(_leaves_of(value)), leaves(fragment))
    except RecursionError:
        return Repair(reason="not repaired: nested too deeply")
    return Repair(value) if faithful else Repair(reason="not repaired: the repair would change a value")


def _leaves_of(value: Any) -> Iterator[Any]:
    """Keys and scalars of a parsed value in document order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _leaves_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves_of(item)
    else:
        yield value


def _same(got: list[Any], written: list[Any] | None) -> bool:
    """Equal item by item, types included (True is not 1, 1.0 is not 1)."""
    if written is None or len(got) != len(written):
        return False
    return all(type(a) is type(b) and a == b for a, b in zip(got, written, strict=True))
