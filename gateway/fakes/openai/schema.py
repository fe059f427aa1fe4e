"""Values valid against a JSON Schema, for the fakes' tool arguments and structured output.

`example_from_schema` builds a candidate by walking the schema (types, properties,
enums, bounds, formats, patterns, unions, local $refs), then checks it with jsonschema
and tries again with other choices if it does not validate, so what it returns is valid
whenever it returns at all.
"""

from __future__ import annotations

import importlib
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeGuard

import orjson

#: jsonschema ships no type information; loading it by name keeps mypy honest about that.
_jsonschema_validators = importlib.import_module("jsonschema.validators")
#: The stdlib regex parser (what `re` compiles from); used to generate strings matching a pattern.
_regex_parser = importlib.import_module("re._parser")


class SchemaError(ValueError):
    """No value can be produced for (or against) this JSON Schema."""


_ATTEMPTS = 12
#: What an untyped schema tries in turn (so `not` and friends can still be met).
_ANY_TYPE = ("string", "integer", "object", "boolean", "null")
_SOFT_DEPTH = 5
_HARD_DEPTH = 64
_HINTS = {
    "city": "Paris",
    "location": "Paris, France",
    "country": "France",
    "name": "Ada Lovelace",
    "query": "llama 4 benchmarks",
    "q": "llama 4 benchmarks",
    "language": "en",
    "lang": "en",
    "timezone": "Europe/Paris",
    "tz": "Europe/Paris",
    "currency": "EUR",
    "unit": "celsius",
    "title": "Quarterly report",
    "text": "A short example.",
    "message": "A short example.",
    "description": "A short example.",
}
_FORMATS: dict[str, Callable[[random.Random], str]] = {
    "date": lambda rng: f"2025-04-{rng.randint(1, 28):02d}",
    "date-time": lambda rng: f"2025-04-{rng.randint(1, 28):02d}T09:30:00Z",
    "time": lambda rng: f"{rng.randint(0, 23):02d}:30:00Z",
    "email": lambda rng: "ada@example.com",
    "idn-email": lambda rng: "ada@example.com",
    "uri": lambda rng: "https://example.com/llama",
    "iri": lambda rng: "https://example.com/llama",
    "uri-reference": lambda rng: "https://example.com/llama",
    "hostname": lambda rng: "example.com",
    "ipv4": lambda rng: f"192.0.2.{rng.randint(1, 254)}",
    "ipv6": lambda rng: "2001:db8::1",
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "duration": lambda rng: "P1D",
    "json-pointer": lambda rng: "/llama",
    "regex": lambda rng: "^[a-z]+$",
}


@lru_cache(maxsize=256)
def _validator_for_key(key: bytes) -> Any:
    schema = orjson.loads(key)
    cls = _jsonschema_validators.validator_for(schema, default=_jsonschema_validators.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validator(schema: Any) -> Any:
    """A (cached) jsonschema validator for `schema`, checking formats too."""
    return _validator_for_key(orjson.dumps(schema))


def is_valid(checker: Any, value: Any) -> bool:
    """Validate, treating a schema jsonschema cannot evaluate (bad $ref, bad regex) as passing."""
    try:
        return bool(checker.is_valid(value))
    except Exception:
        return True


def example_from_schema(schema: Any, seed: int = 0) -> Any:
    """A value valid against `schema` (checked with jsonschema; several seeded tries)."""
    checker = validator(schema)
    failure: SchemaError | None = None
    for attempt in range(_ATTEMPTS):
        try:
            value = _Builder(schema, seed, attempt).build(schema, "", 0)
        except SchemaError as exc:
            failure = exc
            continue
        if is_valid(checker, value):
            return value
    raise failure or SchemaError("could not produce a value valid against this schema")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _merge_types(a: Any, b: Any) -> list[str]:
    left, right = _as_list(a), _as_list(b)
    merged = []
    for kind in left:
        if kind in right or (kind == "integer" and "number" in right):
            merged.append(kind)
        elif kind == "number" and "integer" in right:
            merged.append("integer")
    return merged


_TIGHTER_MIN = frozenset({"minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"})
_TIGHTER_MAX = frozenset({"maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"})


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The conjunction of two schemas, good enough to generate from (allOf, $ref siblings)."""
    out = dict(a)
    for key, value in b.items():
        if key not in out:
            out[key] = value
            continue
        current = out[key]
        if key == "properties" and isinstance(current, dict) and isinstance(value, dict):
            props = dict(current)
            for name, sub in value.items():
                props[name] = {"allOf": [current[name], sub]} if name in current else sub
            out[key] = props
        elif key == "required" and isinstance(current, list) and isinstance(value, list):
            out[key] = list(dict.fromkeys([*current, *value]))
        elif key == "type":
            out[key] = _merge_types(current, value)
        elif key == "enum" and isinstance(current, list) and isinstance(value, list):
            out[key] = [v for v in current if v in value]
        elif key in _TIGHTER_MIN and _is_number(current) and _is_number(value):
            out[key] = max(current, value)
        elif key in _TIGHTER_MAX and _is_number(current) and _is_number(value):
            out[key] = min(current, value)
        elif key in ("anyOf", "oneOf") and isinstance(current, list) and isinstance(value, list):
            pairs = [{"allOf": [x, y]} for x in current for y in value]
            out[key] = pairs if len(pairs) <= 64 else current
        else:
            out[key] = value
    return out


class _Builder:
    """One generation attempt: `attempt` rotates the choices (union branches, types, optional
    properties) so that a failed attempt is followed by a different candidate."""

    def __init__(self, root: Any, seed: int, attempt: int) -> None:
        self.root = root
        self.rng = random.Random(seed * 1_000_003 + attempt)
        self.attempt = attempt

    def build(self, schema: Any, hint: str, depth: int) -> Any:
        if depth > _HARD_DEPTH:
            raise SchemaError("schema nests too deeply to produce a finite value")
        if schema is True:
            return self._string({}, hint)
        if schema is False or not isinstance(schema, dict):
            raise SchemaError("the schema admits no value")
        schema = self._flatten(schema, depth)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            options = schema["enum"]
            if not options:
                raise SchemaError("empty enum")
            return options[(self.attempt + self.rng.randrange(len(options))) % len(options)]
        for key in ("oneOf", "anyOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                rest = {k: v for k, v in schema.items() if k != key}
                ordered = sorted(branches, key=lambda b: isinstance(b, dict) and b.get("type") == "null")
                branch = ordered[self.attempt % len(ordered)]
                return self.build(
                    _merge(rest, self._flatten(branch, depth) if branch is not True else {}), hint, depth + 1
                )
        kind = self._type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, hint, depth)
        if kind in ("integer", "number"):
            return self._number(schema, integer=kind == "integer")
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema, hint)

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise SchemaError(f"only local $ref is supported, not {ref!r}")
        node = self.root
        for part in ref[1:].lstrip("/").split("/") if ref not in ("#", "#/") else ():
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise SchemaError(f"unresolvable $ref {ref!r}")
        return node

    def _flatten(self, schema: Any, depth: int) -> dict[str, Any]:
        """Inline `$ref` and `allOf` so that one dict describes the value to build."""
        if schema is True:
            return {}
        if not isinstance(schema, dict) or depth > _HARD_DEPTH:
            raise SchemaError("the schema admits no (finite) value")
        hops = 0
        while "$ref" in schema:
            hops += 1
            if hops > _HARD_DEPTH:
                raise SchemaError("$ref cycle")
            target = self._resolve(str(schema["$ref"]))
            if target is False:
                raise SchemaError("the schema admits no value")
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge(rest, target if isinstance(target, dict) else {})
        flat: dict[str, Any] = schema
        if "allOf" in flat:
            merged = {k: v for k, v in flat.items() if k != "allOf"}
            for sub in flat["allOf"]:
                merged = _merge(merged, self._flatten(sub, depth + 1))
            return self._flatten(merged, depth + 1) if "allOf" in merged or "$ref" in merged else merged
        return flat

    def _type(self, schema: Mapping[str, Any]) -> str:
        declared = schema.get("type")
        if isinstance(declared, str):
            return declared
        if isinstance(declared, list):
            if not declared:
                raise SchemaError("no type satisfies the schema")
            preferred = [t for t in declared if t != "null"] or ["null"]
            return str(preferred[self.attempt % len(preferred)])
        keys = schema.keys()
        if keys & {"properties", "required", "additionalProperties", "minProperties", "patternProperties"}:
            return "object"
        if keys & {"items", "prefixItems", "minItems", "maxItems", "contains", "uniqueItems"}:
            return "array"
        if keys & {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}:
            return "number"
        return _ANY_TYPE[self.attempt % len(_ANY_TYPE)]

    def _object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        required = [r for r in schema.get("required") or () if isinstance(r, str)]
        additional = schema.get("additionalProperties", True)
        optional_allowed = self.attempt < 2 and depth < _SOFT_DEPTH
        names = required + [n for n in props if n not in required and optional_allowed]
        max_props = schema.get("maxProperties")
        if isinstance(max_props, int):
            names = names[: max(max_props, len(required))]
        out: dict[str, Any] = {}
        for name in names:
            out[name] = self.build(self._property_schema(schema, name), name, depth + 1)
        min_props = schema.get("minProperties", 0)
        extra = 1
        while isinstance(min_props, int) and len(out) < min_props and additional is not False:
            key = f"extra_{extra}"
            out[key] = self.build(additional if isinstance(additional, dict) else True, key, depth + 1)
            extra += 1
        return out

    def _property_schema(self, schema: Mapping[str, Any], name: str) -> Any:
        props = schema.get("properties") or {}
        if name in props:
            return props[name]
        for pattern, sub in (schema.get("patternProperties") or {}).items():
            if _compiled(pattern).search(name):
                return sub
        additional = schema.get("additionalProperties", True)
        return additional if isinstance(additional, dict) else True

    def _array(self, schema: Mapping[str, Any], hint: str, depth: int) -> list[Any]:
        raw_items = schema.get("items", True)
        prefix = schema.get("prefixItems") or (raw_items if isinstance(raw_items, list) else [])
        rest = schema.get("additionalItems", True) if isinstance(raw_items, list) else raw_items
        if "prefixItems" in schema:
            rest = raw_items
        low = schema.get("minItems", 0)
        count = max(low, 0 if depth >= _SOFT_DEPTH else 1)
        high = schema.get("maxItems")
        count = max(count, len(prefix))
        if isinstance(high, int):
            count = min(count, high)
        if rest is False:
            count = min(count, len(prefix))
        contains = schema.get("contains")
        if contains is not None:
            count = max(count, 1)
        unique = bool(schema.get("uniqueItems"))
        items: list[Any] = []
        seen: set[bytes] = set()
        for index in range(count):
            if index < len(prefix):
                item_schema = prefix[index]
            elif index == 0 and contains is not None:
                item_schema = _merge(rest if isinstance(rest, dict) else {}, self._flatten(contains, depth))
            else:
                item_schema = rest
            item = self.build(item_schema, hint, depth + 1)
            for _ in range(16 if unique else 0):
                if orjson.dumps(item, option=orjson.OPT_SORT_KEYS) not in seen:
                    break
                item = self.build(item_schema, hint, depth + 1)
            seen.add(orjson.dumps(item, option=orjson.OPT_SORT_KEYS))
            items.append(item)
        return items

    def _number(self, schema: Mapping[str, Any], *, integer: bool) -> int | float:
        low, low_open = _bound(schema, "minimum", "exclusiveMinimum", max)
        high, high_open = _bound(schema, "maximum", "exclusiveMaximum", min)
        step = schema.get("multipleOf")
        if _is_number(step) and step > 0:
            return _multiple(step, low, low_open, high, high_open, integer=integer)
        if integer:
            lo, hi = _int_bounds(low, low_open, high, high_open)
            if lo > hi:
                raise SchemaError("empty integer range")
            return self.rng.randint(lo, hi)
        if low is not None and high is not None:
            if low > high or (low == high and (low_open or high_open)):
                raise SchemaError("empty number range")
            return low + (high - low) / 2
        if low is not None:
            return low + 1.5 if low_open else low + round(self.rng.uniform(0, 10), 1)
        if high is not None:
            return high - 1.5 if high_open else high - round(self.rng.uniform(0, 10), 1)
        return round(self.rng.uniform(1, 100), 1)

    def _string(self, schema: Mapping[str, Any], hint: str) -> str:
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            candidate = ""
            for stretch in range(8):
                candidate = regex_example(pattern, self.rng, stretch + self.attempt)
                if len(candidate) >= low and (high is None or len(candidate) <= high):
                    return candidate
            return candidate
        fmt = schema.get("format")
        if isinstance(fmt, str) and fmt in _FORMATS:
            value = _FORMATS[fmt](self.rng)
        else:
            value = _HINTS.get(hint) or _HINTS.get(hint.removesuffix("s")) or "example"
        if isinstance(low, int) and len(value) < low:
            value += "x" * (low - len(value))
        if isinstance(high, int) and len(value) > high:
            value = value[:high]
        return value


def _bound(
    schema: Mapping[str, Any], inclusive: str, exclusive: str, pick: Callable[[float, float], float]
) -> tuple[float | None, bool]:
    """The effective bound and whether it is open, for draft-4 (boolean) and later (numeric) styles."""
    value = schema.get(inclusive)
    value = value if _is_number(value) else None
    open_value = schema.get(exclusive)
    if isinstance(open_value, bool):
        return value, open_value and value is not None
    if _is_number(open_value) and (value is None or pick(value, open_value) == open_value):
        return open_value, True
    return value, False


def _int_bounds(low: float | None, low_open: bool, high: float | None, high_open: bool) -> tuple[int, int]:
    lo = None if low is None else math.ceil(low) + (1 if low_open and math.ceil(low) == low else 0)
    hi = None if high is None else math.floor(high) - (1 if high_open and math.floor(high) == high else 0)
    if lo is None:
        lo = hi - 9 if hi is not None else 1
    if hi is None:
        hi = lo + 9
    return lo, hi


def _multiple(
    step: float, low: float | None, low_open: bool, high: float | None, high_open: bool, *, integer: bool
) -> int | float:
    """The first multiple of `step` inside the bounds that jsonschema's float check accepts."""
    start = low if low is not None else (high - 10 * step if high is not None else step)
    k = math.ceil(start / step)
    for _ in range(10_000):
        value = round(k * step, 12)
        k += 1
        if low is not None and (value < low or (low_open and value == low)):
            continue
        if high is not None and (value > high or (high_open and value == high)):
            break
        if float(value).is_integer():
            return int(value)
        if not integer and (value / step).is_integer():
            return value
    raise SchemaError("no multiple of multipleOf fits the bounds")


# --------------------------------------------------------------------------- regex examples


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=512)
def _parsed(pattern: str) -> Any:
    try:
        return _regex_parser.parse(pattern)
    except re.error as exc:
        raise SchemaError(f"pattern {pattern!r} is not a regular expression Python understands") from exc


_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_NOT_DIGIT": "abcxyz",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "abcxyz",
    "CATEGORY_WORD": "abcdefghijklmnopqrstuvwxyz",
    "CATEGORY_NOT_WORD": "-.",
    "CATEGORY_LINEBREAK": "\n",
    "CATEGORY_NOT_LINEBREAK": "abc",
}
_FALLBACK_CHARS = "axz0_-. AZ"
_UNBOUNDED = 65535


def regex_example(pattern: str, rng: random.Random, stretch: int = 0) -> str:
    """A string that `re.fullmatch`es `pattern` (lookarounds and anchors are ignored).

    `stretch` lengthens open-ended repeats, for callers that need to meet a minLength.
    """
    groups: dict[int, str] = {}
    return _emit(_parsed(pattern), rng, stretch, groups)


def _emit(subpattern: Any, rng: random.Random, stretch: int, groups: dict[int, str]) -> str:
    out: list[str] = []
    for op, av in subpattern:
        name = op.name
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "NOT_LITERAL":
            out.append("a" if av != ord("a") else "b")
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_from_set(av, rng))
        elif name == "BRANCH":
            out.append(_emit(rng.choice(av[1]), rng, stretch, groups))
        elif name == "SUBPATTERN":
            text = _emit(av[3], rng, stretch, groups)
            if av[0]:
                groups[av[0]] = text
            out.append(text)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = av
            top = low + 2 + 4 * stretch if high >= _UNBOUNDED else high
            out.extend(_emit(sub, rng, stretch, groups) for _ in range(rng.randint(low, min(top, high))))
        elif name == "ATOMIC_GROUP":
            out.append(_emit(av, rng, stretch, groups))
        elif name == "GROUPREF":
            out.append(groups.get(av, ""))
        elif name == "CATEGORY":
            out.append(rng.choice(_CATEGORY_CHARS.get(av.name, "a")))
        elif name not in ("AT", "ASSERT", "ASSERT_NOT"):
            raise SchemaError(f"cannot generate an example for regex construct {name}")
    return "".join(out)


def _in_set(char: str, items: Sequence[Any]) -> bool:
    code = ord(char)
    for op, av in items:
        name = op.name
        if (name == "LITERAL" and av == code) or (name == "RANGE" and av[0] <= code <= av[1]):
            return True
        if name == "CATEGORY" and char in _CATEGORY_CHARS.get(av.name, ""):
            return True
    return False


def _from_set(items: Sequence[Any], rng: random.Random) -> str:
    if items and items[0][0].name == "NEGATE":
        rest = items[1:]
        return next((c for c in _FALLBACK_CHARS if not _in_set(c, rest)), "~")
    op, av = rng.choice(list(items))
    if op.name == "LITERAL":
        return chr(av)
    if op.name == "RANGE":
        return chr(rng.randint(av[0], min(av[1], av[0] + 25)))
    if op.name == "CATEGORY":
        return rng.choice(_CATEGORY_CHARS.get(av.name, "a"))
    return "a"
