"""A small structural scanner for JSON-ish and Python-call text.

It answers two questions the repair step must get right before any library touches
the text: where do bracketed values sit inside prose (`find_spans`), and would a
syntax-only repair of a fragment have to invent or guess a value (`hazard`). A
fragment cut off inside a string, right after a key or `:`, or on a number or word
that may be incomplete is refused: closing it would turn `"Par` into `"Paris"`'s
wrong twin `"Par"`, or `"unit":` into `"unit": ""`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

__all__ = ["Span", "closers", "find_spans", "hazard", "leaves"]

Mode = Literal["json", "python"]
#: Deepest nesting a repair will touch: deeper text is refused before json-repair, whose
#: time on a long run of open brackets grows to tens of seconds (10^5 braces: ~30 s).
MAX_DEPTH = 64
_OPEN = {"{": "}", "[": "]", "(": ")"}
_CLOSE = {"}": "{", "]": "[", ")": "("}
_LITERALS = frozenset({"true", "false", "null", "True", "False", "None"})
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_WORD = re.compile(r"[A-Za-z_$][\w$]*")
_SPACE = frozenset(" \t\r\n")
_QUOTING = re.compile(r'\\(.)|"', re.DOTALL)
_WORD_VALUES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    #: False when the text ended before the brackets closed.
    closed: bool


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["str", "num", "word", "punct", "other"]
    text: str
    closed: bool = True


def _string_end(text: str, start: int) -> int:
    """Index just past the string opened at `start`, or -1 if it never closes."""
    quote = text[start]
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == quote:
            return i + 1
        i += 1
    return -1


def find_spans(text: str, openers: str = "{[") -> list[Span]:
    """Top-level bracketed regions of `text` (strings respected inside them only, so
    apostrophes in surrounding prose do not matter)."""
    spans: list[Span] = []
    i = 0
    while i < len(text):
        if text[i] not in openers:
            i += 1
            continue
        end = _span_end(text, i)
        spans.append(Span(i, len(text) if end < 0 else end, end >= 0))
        if end < 0:
            break
        i = end
    return spans


def _span_end(text: str, start: int) -> int:
    stack = [text[start]]
    i = start + 1
    while i < len(text):
        char = text[i]
        if char in "\"'":
            i = _string_end(text, i)
            if i < 0:
                return -1
            continue
        if char in _OPEN:
            stack.append(char)
        elif char in _CLOSE and _CLOSE[char] in stack:
            while stack.pop() != _CLOSE[char]:
                pass
            if not stack:
                return i + 1
        i += 1
    return -1


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in _SPACE:
            i += 1
        elif char in "\"'":
            end = _string_end(text, i)
            tokens.append(_Token("str", text[i:end] if end > 0 else text[i:], end > 0))
            i = end if end > 0 else len(text)
        elif char in "{}[]():,=":
            tokens.append(_Token("punct", char))
            i += 1
        else:
            i = _scalar(text, i, tokens)
    return tokens


def _scalar(text: str, i: int, tokens: list[_Token]) -> int:
    number = _NUMBER.match(text, i)
    if number:
        tokens.append(_Token("num", number.group()))
        return number.end()
    word = _WORD.match(text, i)
    if word:
        tokens.append(_Token("word", word.group()))
        return word.end()
    tokens.append(_Token("other", text[i]))
    return i + 1


@dataclass(slots=True)
class _Frame:
    opener: str
    #: "key" (object/call), "sep" (after a key), "value", "after" (after a value).
    expect: str


@dataclass(slots=True)
class _Walk:
    mode: Mode
    stack: list[_Frame] = field(default_factory=list)
    last: _Token | None = None
    problem: str | None = None

    def expect(self) -> str:
        return self.stack[-1].expect if self.stack else "value"

    def set_expect(self, expect: str) -> None:
        if self.stack:
            self.stack[-1].expect = expect


def _punct(walk: _Walk, char: str, follows_word: bool) -> None:
    if walk.mode == "json" and char in "()=":
        walk.problem = f"unexpected {char!r}"
    elif char in "{[" or (char == "(" and follows_word):
        walk.set_expect("after")
        walk.stack.append(_Frame(char, "value" if char == "[" else "key"))
        if len(walk.stack) > MAX_DEPTH:
            walk.problem = f"nested deeper than {MAX_DEPTH} levels"
    elif char in _CLOSE and any(frame.opener == _CLOSE[char] for frame in walk.stack):
        if walk.expect() == "value" and walk.last is not None and walk.last.text in ":=":
            walk.problem = "a key has no value"
        while walk.stack and walk.stack.pop().opener != _CLOSE[char]:
            pass
    elif char == ",":
        if walk.last is not None and walk.last.text in ":=":
            walk.problem = "a key has no value"
        if walk.stack:
            walk.set_expect("value" if walk.stack[-1].opener == "[" else "key")
    elif char in ":=":
        walk.set_expect("value")
    else:
        walk.problem = f"unexpected {char!r}"


def _scalar_token(walk: _Walk, token: _Token, next_text: str | None) -> None:
    keyed = walk.expect() in ("key", "sep")
    if token.kind == "other":
        walk.problem = f"unexpected {token.text!r}"
    elif keyed:
        walk.set_expect("sep")
    elif token.kind == "word" and next_text == "(" and walk.mode == "python":
        return
    elif token.kind == "word" and token.text not in _LITERALS:
        walk.problem = f"unquoted value {token.text!r}"
    else:
        walk.set_expect("after")


def _walk(text: str, mode: Mode) -> _Walk:
    walk = _Walk(mode)
    tokens = _tokens(text)
    for position, token in enumerate(tokens):
        next_text = tokens[position + 1].text if position + 1 < len(tokens) else None
        if token.kind == "punct":
            follows_word = walk.last is not None and walk.last.kind == "word"
            _punct(walk, token.text, follows_word)
        else:
            _scalar_token(walk, token, next_text)
        walk.last = token
        if walk.problem is not None:
            break
    return walk


def _cut_problem(walk: _Walk) -> str | None:
    last = walk.last
    if last is None:
        return None
    if last.kind == "str" and not last.closed:
        return "the text ends inside a string"
    if not walk.stack:
        return None
    if last.text in (":", "="):
        return "the text ends before a value"
    if walk.expect() == "sep":
        return "the text ends after a key"
    if last.kind == "num" or (last.kind == "word" and last.text not in _LITERALS):
        return "the text ends on a number or word that may be cut short"
    return None


def hazard(fragment: str, mode: Mode = "json") -> str | None:
    """Why closing or cleaning `fragment` would have to guess a value, or None if a
    syntax-only repair is safe."""
    walk = _walk(fragment, mode)
    return walk.problem or _cut_problem(walk)


def closers(fragment: str, mode: Mode = "python") -> str | None:
    """The brackets that complete a fragment cut off at a safe point ("" if none are
    missing), or None when completing it would mean guessing a value."""
    walk = _walk(fragment, mode)
    if walk.problem or _cut_problem(walk):
        return None
    return "".join(_OPEN[frame.opener] for frame in reversed(walk.stack))


def leaves(fragment: str) -> list[Any] | None:
    """The keys and scalar values written in a JSON-ish `fragment`, decoded, in order
    (None if one cannot be decoded). A syntax-only repair must produce exactly these."""
    out: list[Any] = []
    for token in _tokens(fragment):
        if token.kind == "str":
            text = _decode_string(token.text) if token.closed else None
            if text is None:
                return None
            out.append(text)
        elif token.kind == "num":
            number = _decode_number(token.text)
            if number is None:
                return None
            out.append(number)
        elif token.kind == "word":
            out.append(_WORD_VALUES.get(token.text, token.text))
    return out


def _decode_string(literal: str) -> str | None:
    """A single- or double-quoted literal with JSON escapes (and `\\'`) decoded."""

    def requote(match: re.Match[str]) -> str:
        escaped = match.group(1)
        if escaped is None:
            return '\\"'
        return "'" if escaped == "'" else "\\" + escaped

    try:
        decoded = json.loads('"' + _QUOTING.sub(requote, literal[1:-1]) + '"', strict=False)
    except ValueError:
        return None
    return decoded if isinstance(decoded, str) else None


def _decode_number(text: str) -> int | float | None:
    try:
        number = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            return float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            return None
    return number if isinstance(number, int | float) else None
