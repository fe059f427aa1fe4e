"""Calls a backend returned as content: pythonic, JSON (with parameters or arguments), tags."""

from __future__ import annotations

import orjson
import pytest

from gateway.toolcalls.recognise import may_start_calls, recognise

DECLARED = ("get_weather", "get_time")


def calls(content: str) -> list[tuple[str, object]]:
    found = recognise(content, DECLARED)
    assert found is not None and found.error is None, found
    return [(name, orjson.loads(arguments)) for name, arguments in found.calls]


def test_pythonic_wrapped_in_python_tags() -> None:
    text = '<|python_start|>[get_weather(city="Paris"), get_time(tz="CET")]<|python_end|><|eom|>'
    assert calls(text) == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
    assert recognise(text, DECLARED).source == "pythonic"  # type: ignore[union-attr]


def test_pythonic_in_a_code_fence() -> None:
    assert calls('```python\n[get_time(tz="UTC")]\n```') == [("get_time", {"tz": "UTC"})]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
        '{"name": "get_weather", "arguments": {"city": "Paris"}}',
        '{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}',
        '{"type": "function", "function": {"name": "get_weather", "parameters": {"city": "Paris"}}}',
        'Sure! I will check.\n```json\n{"name": "get_weather", "parameters": {"city": "Paris"}}\n```',
        '<|python_start|>{"name": "get_weather", "parameters": {"city": "Paris"}}<|python_end|>',
        '[{"name": "get_weather", "parameters": {"city": "Paris"}}]',
    ],
)
def test_json_call_shapes(text: str) -> None:
    assert calls(text) == [("get_weather", {"city": "Paris"})]


def test_several_json_calls_separated_by_semicolons() -> None:
    text = '{"name": "get_weather", "parameters": {"city": "Paris"}}; {"name": "get_time", "parameters": {"tz": "CET"}}'
    assert calls(text) == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]


def test_json_call_needing_repair_is_marked() -> None:
    found = recognise("{'name': 'get_weather', 'parameters': {'city': 'Paris',}}", DECLARED)
    assert found is not None and found.repaired and found.calls == (("get_weather", '{"city":"Paris"}'),)


def test_function_tags() -> None:
    text = '<function=get_weather>{"city": "Paris"}</function><function=get_time>{"tz": "CET"}</function>'
    assert calls(text) == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
    found = recognise("<function=get_time>{'tz': 'CET'}", DECLARED)
    assert found is not None and found.calls == (("get_time", "{'tz': 'CET'}"),)


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Paris is sunny.",
        "[1] Paris is the capital of France.",
        '{"city": "Paris", "temperature": 21}',
        '{"name": "Alice", "arguments": {"x": 1}}',
        "[search(q='x')]",
        "<function=search>{}</function>",
    ],
)
def test_ordinary_text_and_undeclared_names_are_not_calls(text: str) -> None:
    assert recognise(text, DECLARED) is None


def test_a_declared_call_mixed_with_an_undeclared_one_is_an_error() -> None:
    found = recognise('[get_weather(city="Paris"), search(q="x")]', DECLARED)
    assert found is not None and found.error is not None and "search" in found.error


def test_a_cut_json_call_is_an_error_not_text() -> None:
    found = recognise('{"name": "get_weather", "parameters": {"city": "Par', DECLARED)
    assert found is not None and found.error is not None and "inside a string" in found.error


def test_unreadable_pythonic_is_an_error() -> None:
    found = recognise('[get_weather("Paris")]', DECLARED)
    assert found is not None and found.error is not None and "positional" in found.error


@pytest.mark.parametrize(
    ("prefix", "may"),
    [
        ("", True),
        ("  [get_wea", True),
        ("[get_weather(", True),
        ("[1]", False),
        ('{"na', True),
        ('{"city"', False),
        ("<|python_st", True),
        ("<function=ge", True),
        ("```json\n{", True),
        ("```python\nimport os", False),
        ("The answer", False),
    ],
)
def test_stream_hold_back_prefixes(prefix: str, may: bool) -> None:
    assert may_start_calls(prefix) is may


def test_code_that_merely_calls_a_declared_function_is_text() -> None:
    assert recognise('```python\nget_weather(city="Paris")\nprint("done")\n```', DECLARED) is None
    assert recognise('get_weather("Paris")', DECLARED) is None
    assert calls('```python\n[get_weather(city="Paris")]\n```\nLet me know!') == [("get_weather", {"city": "Paris"})]
