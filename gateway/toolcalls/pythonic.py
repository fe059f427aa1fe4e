"""Llama 4's pythonic tool-call text: `[get_weather(city="Paris", unit='c'), ...]`.

Parsed with `ast` the way vLLM's `llama4_pythonic` parser does: a list of calls (or one
bare call), keyword arguments only, literal values only. JSON's `true/false/null` are
accepted too (other models' "pythonic" output uses them). Text cut off at a safe point
is closed (`scan.closers`); text cut inside a value is refused.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from gateway.toolcalls.scan import closers

__all__ = ["CALL_START", "Pythonic", "parse_pythonic"]

#: Text that starts like a pythonic call: optional `[`, a name, `(`.
CALL_START = re.compile(r"\[?\s*([A-Za-z_]\w*)\s*\(")
_JSON_NAMES = {"true": True, "false": False, "null": None}


class NotLiteral(ValueError):
    """An argument value that is not a plain literal."""


@dataclass(frozen=True, slots=True)
class Pythonic:
    """Parsed calls as (name, arguments) pairs, or why the text could not be parsed."""

    calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    repaired: bool = False
    reason: str | None = None


def parse_pythonic(text: str) -> Pythonic:
    """Parse `text` (markers such as `<|python_start|>` already removed)."""
    tree, repaired = _parse(text)
    if tree is None:
        return Pythonic(reason="the call text is not valid Python and cannot be closed safely")
    nodes = tree.body.elts if isinstance(tree.body, ast.List | ast.Tuple) else [tree.body]
    calls = []
    for node in nodes:
        try:
            calls.append(_call(node))
        except NotLiteral as exc:
            return Pythonic(reason=str(exc))
    if not calls:
        return Pythonic(reason="an empty list of calls")
    return Pythonic(tuple(calls), repaired)


def _parse(text: str) -> tuple[ast.Expression | None, bool]:
    try:
        return ast.parse(text, mode="eval"), False
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    missing = closers(text, "python")
    if not missing:
        return None, False
    try:
        return ast.parse(text + missing, mode="eval"), True
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None, False


def _call(node: ast.expr) -> tuple[str, dict[str, Any]]:
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise NotLiteral("each item must be a call such as name(key=value)")
    name = node.func.id
    if node.args:
        raise NotLiteral(f"{name}: positional arguments are not allowed, use key=value")
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            raise NotLiteral(f"{name}: **-expansion is not allowed")
        arguments[keyword.arg] = _literal(keyword.value, name)
    return name, arguments


def _literal(node: ast.expr, name: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool | type(None)):
        return node.value
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item, name) for item in node.elts]
    if isinstance(node, ast.Dict):
        return _dict(node, name)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _literal(node.operand, name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    raise NotLiteral(f"{name}: argument values must be literals, got {ast.unparse(node)[:40]!r}")


def _dict(node: ast.Dict, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in zip(node.keys, node.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            raise NotLiteral(f"{name}: dictionary keys must be strings")
        out[key.value] = _literal(value, name)
    return out
