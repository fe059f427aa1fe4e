"""Llama 4's pythonic tool-call text, parsed with ast (literal keyword arguments only)."""

from __future__ import annotations

import pytest

from gateway.toolcalls.pythonic import parse_pythonic


def test_single_and_parallel_calls() -> None:
    parsed = parse_pythonic('[get_weather(city="Paris", unit=\'c\'), get_time(tz="CET")]')
    assert parsed.reason is None and not parsed.repaired
    assert parsed.calls == (("get_weather", {"city": "Paris", "unit": "c"}), ("get_time", {"tz": "CET"}))


def test_literals_python_and_json_spellings() -> None:
    parsed = parse_pythonic("[f(a=True, b=None, c=false, d=null, e=-1.5, f=[1, (2, 3)], g={'k': {'n': +2}})]")
    assert parsed.calls == (
        ("f", {"a": True, "b": None, "c": False, "d": None, "e": -1.5, "f": [1, [2, 3]], "g": {"k": {"n": 2}}}),
    )


def test_bare_call_without_brackets() -> None:
    assert parse_pythonic('get_time(tz="UTC")').calls == (("get_time", {"tz": "UTC"}),)


def test_call_cut_after_a_complete_value_is_closed() -> None:
    parsed = parse_pythonic('[get_weather(city="Paris", unit="c"')
    assert parsed.repaired and parsed.calls == (("get_weather", {"city": "Paris", "unit": "c"}),)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[get_weather("Paris")]', "positional"),
        ("[get_weather(city=city_name)]", "literals"),
        ('[get_weather(city="Pa" + "ris")]', "literals"),
        ('[get_weather(**{"city": "Paris"})]', "**"),
        ('[get_weather(city="Par', "cannot be closed"),
        ("[1, 2, 3]", "must be a call"),
        ("[os.system(cmd='ls')]", "must be a call"),
        ("[]", "empty"),
    ],
)
def test_unreadable_call_text(text: str, why: str) -> None:
    parsed = parse_pythonic(text)
    assert parsed.calls == ()
    assert parsed.reason is not None and why in parsed.reason
