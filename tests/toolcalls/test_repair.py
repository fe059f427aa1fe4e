"""Syntax-only repair: what is fixed, and what is refused because fixing would guess a value."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.toolcalls.repair import repair_json
from gateway.toolcalls.scan import closers, find_spans, hazard


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"city": "Paris"', {"city": "Paris"}),
        ("{'city': 'Paris', 'unit': 'c'}", {"city": "Paris", "unit": "c"}),
        ('{"city": "Paris",}', {"city": "Paris"}),
        ('{city: "Paris", unit: "c"}', {"city": "Paris", "unit": "c"}),
        ('{"ok": True, "note": None, "off": False}', {"ok": True, "note": None, "off": False}),
        ('Here you go:\n```json\n{"city": "Paris"}\n```\nAnything else?', {"city": "Paris"}),
        ('{"tags": ["a", "b",], "n": {"x": [1, 2]', {"tags": ["a", "b"], "n": {"x": [1, 2]}}),
        ("{'q': \"it's\"}", {"q": "it's"}),
        ('```json\n{"city": "Paris"\n```', {"city": "Paris"}),
    ],
)
def test_syntax_is_repaired(text: str, expected: dict[str, Any]) -> None:
    outcome = repair_json(text)
    assert outcome.ok, outcome.reason
    assert outcome.value == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"city": "Par', "inside a string"),
        ('{"city": "Paris", "unit":', "before a value"),
        ('{"city": "Paris", "unit"', "after a key"),
        ('{"days": 1', "cut short"),
        ('{"ok": tru', "unquoted value"),
        ('{"unit": celsius}', "unquoted value"),
        ('{"city": }', "no value"),
        ("no json here", "no JSON"),
    ],
)
def test_repair_that_would_guess_a_value_is_refused(text: str, why: str) -> None:
    outcome = repair_json(text)
    assert not outcome.ok
    assert outcome.reason is not None and why in outcome.reason


def test_valid_json_is_parsed_as_is() -> None:
    assert repair_json('{"a": "x"}').value == {"a": "x"}


def test_spans_ignore_apostrophes_in_prose_and_report_truncation() -> None:
    text = 'Here\'s it: {"a": "it\'s"}; {"b": [1'
    spans = find_spans(text)
    assert [(text[s.start : s.end], s.closed) for s in spans] == [('{"a": "it\'s"}', True), ('{"b": [1', False)]


def test_hazard_accepts_complete_literals_at_the_cut() -> None:
    assert hazard('{"a": true') is None
    assert hazard('{"a": "x"') is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[f(a="x")', "]"),
        ('[f(a="x"), g(b=None', ")]"),
        ("[f(a=[1, 2], b={'k': 'v'}", ")]"),
        ('[f(a="x"', ")]"),
        ('[f(a="x"', ")]"),
        ('[f(a="x', None),
        ("[f(a=", None),
        ("[f(a=1, b", None),
        ("[f(a=12", None),
    ],
)
def test_python_closers(text: str, expected: str | None) -> None:
    assert closers(text) == expected
