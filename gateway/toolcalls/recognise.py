"""Tool calls a backend returned as plain content instead of `tool_calls`.

Llama 4 writes calls as text when a backend runs it without a tool parser: pythonic
lists (`[f(a=1)]`, maybe inside `<|python_start|>…<|python_end|>`), JSON objects
(`{"name": …, "parameters"|"arguments": {…}}`, several separated by `;`, maybe in a
code fence or prose), or `<function=f>{…}</function>` tags. Text is taken as calls only
when every function it names is declared; a text that plainly tries to call a declared
function but cannot be read is reported (so it can be re-asked) rather than passed on.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.toolcalls.model import Source, to_json
from gateway.toolcalls.pythonic import CALL_START, parse_pythonic
from gateway.toolcalls.repair import repair_json
from gateway.toolcalls.scan import find_spans

__all__ = ["TextCalls", "may_start_calls", "recognise", "strip_markers"]

_MARKERS = re.compile(r"<\|(?:python_start|python_end|eom|eot|eot_id|eom_id)\|>")
_FENCE = re.compile(r"^```[\w-]*[^\S\n]*\n?(.*?)(?:\n?\s*```.*)?$", re.DOTALL)
_TAG = re.compile(r"<function=([\w.-]+)>(.*?)(?:</function>|(?=<function=)|\Z)", re.DOTALL)
_JSON_CALL_START = re.compile(r"""^\{\s*["']?(?:name|function|type)["']?\s*:""")
_LIST_HEAD = re.compile(r"\[\s*(?:\Z|\{|[A-Za-z_]\w*\s*(?:\Z|\())")
_OBJECT_HEAD = re.compile(r"""\{\s*["']?(\w*)(.*)""", re.DOTALL)
_CALL_KEYS = ("name", "function", "type")
_PYTHON_START = "<|python_start|>"
_TAG_START = "<function="


@dataclass(frozen=True, slots=True)
class TextCalls:
    """Calls read from content as (name, raw arguments text), or why they could not be."""

    source: Source
    calls: tuple[tuple[str, str], ...] = ()
    repaired: bool = False
    error: str | None = None


def strip_markers(text: str) -> str:
    return _MARKERS.sub("", text).strip()


def recognise(content: str, declared: Collection[str]) -> TextCalls | None:
    """The calls in `content`, or None when it is ordinary text."""
    text = strip_markers(content)
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if "<function=" in text:
        return _tags(text, declared)
    start = CALL_START.match(text)
    if start and start.group(1) in declared:
        return _pythonic(text, declared)
    return _json(text, declared)


def may_start_calls(text: str) -> bool:
    """Whether streamed content that begins with `text` may still turn out to be tool
    calls (so it must be held back rather than passed on live)."""
    rest = text.lstrip()
    if rest.startswith(_PYTHON_START):
        rest = rest[len(_PYTHON_START) :].lstrip()
    if not rest or _PYTHON_START.startswith(rest) or _TAG_START.startswith(rest) or rest.startswith(_TAG_START):
        return True
    if rest.startswith("```"):
        newline = rest.find("\n")
        return newline < 0 or may_start_calls(rest[newline + 1 :])
    if rest[0] == "[":
        return _LIST_HEAD.match(rest) is not None
    head = _OBJECT_HEAD.match(rest)
    if head is None:
        return False
    key, after = head.groups()
    return key in _CALL_KEYS if after else any(name.startswith(key) for name in _CALL_KEYS)


def _checked(
    source: Source, calls: list[tuple[str, str | None]], declared: Collection[str], repaired: bool
) -> TextCalls:
    unknown = [name for name, _ in calls if name not in declared]
    if unknown:
        return TextCalls(source, error=f"the text calls undeclared function(s): {', '.join(unknown)}")
    readable = [(name, arguments) for name, arguments in calls if arguments is not None]
    if len(readable) < len(calls):
        return TextCalls(source, error="the call's arguments cannot be written as JSON")
    return TextCalls(source, tuple(readable), repaired)


def _tags(text: str, declared: Collection[str]) -> TextCalls | None:
    calls: list[tuple[str, str | None]] = [(name, body.strip()) for name, body in _TAG.findall(text)]
    if not any(name in declared for name, _ in calls):
        return None
    return _checked("tag", calls, declared, repaired=False)


def _pythonic(text: str, declared: Collection[str]) -> TextCalls | None:
    """A `[...]` list is Llama's call format, so failing to read it is an error; a bare
    `name(...)` that is not one clean call is more likely code in an answer: text."""
    parsed = parse_pythonic(text)
    if parsed.reason is not None and not text.startswith("["):
        return None
    if parsed.reason is not None:
        return TextCalls("pythonic", error=f"pythonic call text cannot be read: {parsed.reason}")
    calls = [(name, to_json(arguments)) for name, arguments in parsed.calls]
    return _checked("pythonic", calls, declared, parsed.repaired)


def _json(text: str, declared: Collection[str]) -> TextCalls | None:
    calls: list[tuple[str, str | None]] = []
    repaired = False
    for span in find_spans(text):
        fragment = text[span.start : span.end]
        value, fixed, problem = _load(fragment)
        if problem is not None and _JSON_CALL_START.match(fragment) and _names_declared(fragment, declared):
            return TextCalls("json", error=f"a JSON tool call cannot be read: {problem}")
        found = _calls_in(value)
        repaired = repaired or (fixed and bool(found))
        calls.extend(found)
    if not any(name in declared for name, _ in calls):
        return None
    return _checked("json", calls, declared, repaired)


def _load(fragment: str) -> tuple[Any, bool, str | None]:
    try:
        return orjson.loads(fragment), False, None
    except orjson.JSONDecodeError:
        pass
    fixed = repair_json(fragment, openers="{[")
    return fixed.value, True, fixed.reason


def _names_declared(fragment: str, declared: Collection[str]) -> bool:
    return any(f'"{name}"' in fragment or f"'{name}'" in fragment for name in declared)


def _calls_in(value: Any) -> list[tuple[str, str | None]]:
    """Call objects at the top of `value`: one object, or a list of them."""
    items = value if isinstance(value, list) else [value]
    return [call for item in items if isinstance(item, Mapping) for call in _call_in(item)]


def _call_in(value: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    function = value.get("function")
    if isinstance(function, Mapping):
        value = function
    name = value.get("name")
    if not isinstance(name, str):
        return []
    for key in ("parameters", "arguments"):
        if key in value:
            arguments = value[key]
            return [(name, arguments if isinstance(arguments, str) else to_json(arguments))]
    return []
