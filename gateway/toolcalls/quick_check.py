"""A fast "certainly valid" check for the schemas tool calls usually have.

jsonschema is the authority, but it spends 20-60 µs on a typical five-property tool
schema. This compiles the common keyword subset (type, properties, required,
additionalProperties, enum, const, numeric and length bounds, pattern, format, items,
uniqueItems, item and property counts) into plain closures. The contract is one-sided:
True means jsonschema would also accept the instance; False means "not sure", and the
caller asks jsonschema. Anything outside the subset ($ref, anyOf, prefixItems, drafts
3 and 4, unknown keywords …) makes `compile_fast` return None, and jsonschema does all
the work. A property test checks the contract against jsonschema on generated schemas
and instances.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator, FormatChecker

from gateway.toolcalls.linear_regex import compile_pattern

__all__ = ["Check", "compile_fast"]

Check = Callable[[Any], bool]

_DRAFTS = (Draft6Validator, Draft7Validator, Draft201909Validator, Draft202012Validator)
_ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "definitions", "title", "description", "default", "examples"}
    | {"deprecated", "readOnly", "writeOnly"}
)
_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}
_SCALARS = (str, int, float, bool, type(None))


class _Unsupported(Exception):
    """The schema uses something the fast path does not model."""


def compile_fast(schema: Any, validator_class: type, format_checker: FormatChecker | None) -> Check | None:
    """A sound "certainly valid" check for `schema`, or None when it is out of scope."""
    if validator_class not in _DRAFTS:
        return None
    try:
        return _compile(schema, format_checker)
    except _Unsupported:
        return None


def _compile(schema: Any, formats: FormatChecker | None) -> Check:
    if schema is True or schema == {}:
        return _always
    if not isinstance(schema, dict):
        raise _Unsupported
    checks: list[Check] = []
    for keyword, value in schema.items():
        if keyword not in _ANNOTATIONS:
            checks.extend(_keyword(keyword, value, schema, formats))
    return _all(checks)


def _always(_: Any) -> bool:
    return True


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]

    def every(instance: Any) -> bool:
        return all(check(instance) for check in checks)

    return every


def _keyword(keyword: str, value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    builder = _BUILDERS.get(keyword)
    if builder is None:
        raise _Unsupported(keyword)
    return builder(value, schema, formats)


def _type(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(name, str) and name in _TYPES for name in names):
        raise _Unsupported("type")
    allowed = tuple({kind for name in names for kind in _TYPES[name]})
    strict_bool = "boolean" not in names

    def of_type(instance: Any) -> bool:
        kind = type(instance)
        return kind in allowed and not (strict_bool and kind is bool)

    return [of_type]


def _never(_: Any) -> bool:
    return False


def _same(expected: Any) -> Check:
    """Equality that never says yes where jsonschema might say no (types must match;
    arrays and objects are left to jsonschema)."""
    if not isinstance(expected, _SCALARS):
        return _never
    kind = type(expected)
    return lambda instance: type(instance) is kind and instance == expected


def _enum(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    if not isinstance(value, list):
        raise _Unsupported("enum")
    options = [_same(option) for option in value]
    return [lambda instance: any(option(instance) for option in options)]


def _const(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    return [_same(value)]


def _bound(compare: Callable[[Any, Any], bool], kinds: tuple[type, ...]) -> Callable[..., list[Check]]:
    def build(limit: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
        if type(limit) not in (int, float):
            raise _Unsupported("bound")

        def within(instance: Any) -> bool:
            kind = type(instance)
            return kind not in kinds or compare(_size(instance, kinds), limit)

        return [within]

    return build


def _size(instance: Any, kinds: tuple[type, ...]) -> Any:
    return instance if kinds == (int, float) else len(instance)


def _pattern(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    if not isinstance(value, str):
        raise _Unsupported("pattern")
    compiled = compile_pattern(value)
    return [lambda instance: type(instance) is not str or compiled.search(instance) is not None]


def _format(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    if formats is None:
        return []
    return [lambda instance: formats.conforms(instance, value)]


def _required(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    if not isinstance(value, list):
        raise _Unsupported("required")
    names = tuple(value)
    return [lambda instance: type(instance) is not dict or all(name in instance for name in names)]


def _properties(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    if not isinstance(value, dict):
        raise _Unsupported("properties")
    known = {name: _compile(sub, formats) for name, sub in value.items()}
    extra = schema.get("additionalProperties", True)
    rest = None if extra is False else _compile(extra, formats)

    def each_property(instance: Any) -> bool:
        if type(instance) is not dict:
            return True
        for name, item in instance.items():
            check = known.get(name, rest)
            if check is None or not check(item):
                return False
        return True

    return [each_property]


def _additional(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    if "properties" in schema:
        return []
    return _properties({}, {"additionalProperties": value}, formats)


def _items(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    item = _compile(value, formats)
    return [lambda instance: type(instance) is not list or all(item(element) for element in instance)]


def _unique(value: Any, schema: dict[str, Any], formats: FormatChecker | None) -> list[Check]:
    if value is not True:
        return []

    def distinct(instance: Any) -> bool:
        if type(instance) is not list or len(instance) < 2:
            return True
        kind = type(instance[0])
        if kind not in (str, int) or any(type(element) is not kind for element in instance):
            return False
        return len(set(instance)) == len(instance)

    return [distinct]


_ARRAY, _STRING, _OBJECT, _NUMBER = (list,), (str,), (dict,), (int, float)
_BUILDERS: dict[str, Callable[[Any, dict[str, Any], FormatChecker | None], list[Check]]] = {
    "type": _type,
    "enum": _enum,
    "const": _const,
    "minimum": _bound(lambda a, b: a >= b, _NUMBER),
    "maximum": _bound(lambda a, b: a <= b, _NUMBER),
    "exclusiveMinimum": _bound(lambda a, b: a > b, _NUMBER),
    "exclusiveMaximum": _bound(lambda a, b: a < b, _NUMBER),
    "minLength": _bound(lambda a, b: a >= b, _STRING),
    "maxLength": _bound(lambda a, b: a <= b, _STRING),
    "minItems": _bound(lambda a, b: a >= b, _ARRAY),
    "maxItems": _bound(lambda a, b: a <= b, _ARRAY),
    "minProperties": _bound(lambda a, b: a >= b, _OBJECT),
    "maxProperties": _bound(lambda a, b: a <= b, _OBJECT),
    "pattern": _pattern,
    "format": _format,
    "required": _required,
    "properties": _properties,
    "additionalProperties": _additional,
    "items": _items,
    "uniqueItems": _unique,
}
