"""A hypothesis search for slow client patterns (issue 18): nested and overlapping
quantifiers over a tiny alphabet, matched against long near-misses. Each pattern is
either refused at compile time (InvalidSchema, a 400) or validated within a bound that a
backtracking engine misses by orders of magnitude at these lengths."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.toolcalls import InvalidSchema, SchemaCache

#: One validation (is_valid and errors) of one value; backtracking takes minutes here.
BOUND_S = 0.25
ATOMS = st.sampled_from(["a", "aa", ".", "a?", "\\w", "[ab]", "(?=a)", "\\1"])
QUANTIFIERS = st.sampled_from(["+", "*", "{1,9}", "+?", ""])


@st.composite
def nested(draw: st.DrawFn, depth: int = 3) -> str:
    if depth == 0:
        return draw(ATOMS)
    parts = draw(st.lists(nested(depth - 1), min_size=1, max_size=3))
    return "(" + draw(st.sampled_from(["", "|"])).join(parts) + ")" + draw(QUANTIFIERS)


PATTERNS = nested().map(lambda body: f"^{body}$")
VALUES = st.tuples(st.integers(20, 2000), st.sampled_from(["!", "b", "", "a!"])).map(lambda t: "a" * t[0] + t[1])


@settings(max_examples=150, deadline=None)
@given(PATTERNS, VALUES)
def test_no_pattern_is_slow(source: str, value: str) -> None:
    cache = SchemaCache(8)
    schema = {"type": "object", "properties": {"v": {"type": "string", "pattern": source}}}
    try:
        compiled = cache.get(schema)
    except InvalidSchema as exc:
        assert "linear time" in str(exc) or "regex" in str(exc), exc
        return
    started = time.perf_counter()
    compiled.is_valid({"v": value})
    compiled.errors({"v": value})
    compiled.is_valid({value: 1})
    assert time.perf_counter() - started < BOUND_S, (source, len(value))
