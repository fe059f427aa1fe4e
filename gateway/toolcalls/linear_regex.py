"""Client-supplied regular expressions, run by RE2 so that matching is linear in the input.

JSON Schema `pattern` and `patternProperties` come from clients, and the strings they are
matched against come from a model that can be asked to produce anything. Python's `re`
backtracks: `^(a+)+$` against 29 `a`s and a `!` holds the event loop for minutes. RE2
guarantees time linear in the text and memory bounded by `MAX_MEM`; it has no
backreferences or lookaround, so a schema using them is refused up front (400
`invalid_tool_schema`) instead of being run by a slower engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import re2
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

__all__ = ["UnsupportedPattern", "compile_pattern", "pattern", "pattern_properties", "patterns_in"]

#: Memory RE2 may use for one compiled pattern (its own bound on pathological repetition).
MAX_MEM = 8 << 20
#: Largest compiled program (RE2 instructions). Matching is linear in the text with this as
#: the constant: nested counted repetitions (`((a{1,9}){1,9}){1,9}`) multiply it, so a
#: bound keeps each match cheap. `^.{0,1000}$` is about 9,000; typical tool patterns < 100.
MAX_PROGRAM = 10_000
#: Schema keywords whose values are data, not subschemas: a `pattern` key inside them is not a regex.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples", "title", "description", "$comment"})


class UnsupportedPattern(ValueError):
    """A pattern RE2 cannot run (backreference, lookaround, bad syntax, too large)."""


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = MAX_MEM
    options.log_errors = False
    return options


_OPTIONS = _options()


@lru_cache(maxsize=4096)
def compile_pattern(source: str) -> Any:
    """The RE2 program for `source` (cached: every request of an agent repeats its schemas)."""
    try:
        program = re2.compile(source, _OPTIONS)
    except re2.error as exc:
        raise UnsupportedPattern(
            f"pattern {source[:80]!r} cannot be run in linear time (no backreferences or lookaround): {exc}"
        ) from exc
    if program.programsize > MAX_PROGRAM:
        raise UnsupportedPattern(
            f"pattern {source[:80]!r} is too large to run in linear time: {program.programsize:,} RE2 "
            f"instructions, at most {MAX_PROGRAM:,} (nested repetition counts multiply)"
        )
    return program


def patterns_in(schema: Any) -> Iterator[tuple[str, str]]:
    """(JSON path, source) of every `pattern` and `patternProperties` key in a schema."""
    stack: list[tuple[str, Any]] = [("$", schema)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(node))
            continue
        if not isinstance(node, Mapping):
            continue
        for key, value in node.items():
            where = f"{path}.{key}"
            if key == "pattern" and isinstance(value, str):
                yield where, value
            elif key == "patternProperties" and isinstance(value, Mapping):
                for source, sub in value.items():
                    yield where, source
                    stack.append((f"{where}[{source!r}]", sub))
            elif key not in _DATA_KEYWORDS:
                stack.append((where, value))


def pattern(validator: Validator, source: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[ValidationError]:
    """jsonschema's `pattern` keyword, matched by RE2."""
    if validator.is_type(instance, "string") and compile_pattern(source).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {source!r}")


def pattern_properties(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """jsonschema's `patternProperties` keyword, matched by RE2 (`validator` is jsonschema's
    concrete class: the `Validator` protocol does not declare `descend`)."""
    if not validator.is_type(instance, "object"):
        return
    for source, subschema in properties.items():
        program = compile_pattern(source)
        for name, value in instance.items():
            if program.search(name) is not None:
                yield from validator.descend(value, subschema, path=name, schema_path=source)
