"""JSON Schemas compiled once and shared: content hash -> compiled validator (bounded LRU).

The cache key is a hash of the schema serialised with sorted keys, so the same schema
sent by many requests (every request of an agent repeats its tools) is checked and
compiled once. The validator is built from a fresh copy decoded from those bytes, so a
later change to the request body can never change a cached validator.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from gateway.toolcalls.cost import has_unique_items, schema_weight
from gateway.toolcalls.linear_regex import UnsupportedPattern, compile_pattern, pattern, pattern_properties, patterns_in
from gateway.toolcalls.quick_check import Check, compile_fast

__all__ = ["DEFAULT_CACHE", "CompiledSchema", "InvalidSchema", "SchemaCache"]

#: Longest error message kept per validation error (path + message).
MAX_ERROR_CHARS = 200
#: Most errors reported for one instance.
MAX_ERRORS = 5
#: Largest schema compiled (as compact JSON): checking and compiling grow with its size.
MAX_SCHEMA_BYTES = 128 * 1024
#: `$ref`s resolve only inside the schema itself (and the drafts' meta-schemas): a client's
#: schema must never make the gateway fetch a URL (jsonschema's default would, blocking).
LOCAL_ONLY: Registry[Any] = Registry()
#: Each draft's validator class with `pattern` and `patternProperties` run by RE2 (linear_regex).
_LINEAR: dict[type, type] = {}
_extend: Any = validators.extend


class InvalidSchema(ValueError):
    """The schema itself is not valid under its declared draft (or is not JSON)."""


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """A checked schema with its validator (the schema's own draft, formats checked)."""

    digest: bytes
    schema: Any
    validator: Validator
    #: A sound "certainly valid" shortcut for common schemas (see `fastpath`), or None.
    fast: Check | None = None
    #: Nodes with references expanded, or `cost.UNBOUNDED` (what a validation may cost).
    weight: int = 0
    #: `uniqueItems: true` somewhere: array items are compared pairwise.
    unique: bool = False

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        """Pickled as the schema itself and rebuilt through the receiving process's cache
        (the validator class is made at run time and cannot be pickled)."""
        return (_rebuild, (self.schema,))

    def is_valid(self, instance: Any) -> bool:
        try:
            if self.fast is not None and self.fast(instance):
                return True
            return bool(self.validator.is_valid(instance))
        except (Unresolvable, RecursionError):
            return False

    def errors(self, instance: Any) -> list[str]:
        """Short `path: message` strings, at most `MAX_ERRORS`, in a stable order."""
        try:
            found = sorted(self.validator.iter_errors(instance), key=_order)
        except Unresolvable as exc:
            return [_short(f"$: schema reference cannot be resolved: {exc}")]
        except RecursionError:
            return ["$: nested too deeply to validate"]
        return [_short(f"{error.json_path}: {error.message}") for error in found[:MAX_ERRORS]]


def _rebuild(schema: Any) -> CompiledSchema:
    """The compiled schema for `schema` from this process's cache (unpickling)."""
    return DEFAULT_CACHE.get(schema)


def _order(error: ValidationError) -> tuple[str, str]:
    return (error.json_path, error.message)


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _canonical(schema: Any) -> bytes:
    try:
        return orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise InvalidSchema(f"not serialisable as JSON: {exc}") from exc


def _compile(digest: bytes, canonical: bytes) -> CompiledSchema:
    schema: Any = orjson.loads(canonical)
    if isinstance(schema, bool):
        schema = {} if schema else {"not": {}}
    if not isinstance(schema, dict):
        raise InvalidSchema(f"a schema must be an object or a boolean, not {type(schema).__name__}")
    if not isinstance(schema.get("$schema", ""), str):
        raise InvalidSchema("$schema must be a string naming a JSON Schema draft (at $.$schema)")
    cls = validators.validator_for(schema, default=Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as error:
        where = error.json_path if error.absolute_path else "$"
        raise InvalidSchema(_short(f"{error.message} (at {where})")) from error
    for where, source in patterns_in(schema):
        try:
            compile_pattern(source)
        except UnsupportedPattern as exc:
            raise InvalidSchema(_short(f"{exc} (at {where})")) from exc
    formats = cls.FORMAT_CHECKER
    validator = _linear(cls)(schema, format_checker=formats, registry=LOCAL_ONLY)
    fast = compile_fast(schema, cls, formats)
    return CompiledSchema(digest, schema, validator, fast, schema_weight(schema), has_unique_items(schema))


def _linear(cls: type) -> type:
    """`cls` with its regex keywords run by RE2 (built once per draft)."""
    linear = _LINEAR.get(cls)
    if linear is None:
        linear = _LINEAR[cls] = _extend(cls, {"pattern": pattern, "patternProperties": pattern_properties})
    return linear


class SchemaCache:
    """Bounded LRU of compiled schemas keyed by content hash.

    Usage: `SchemaCache(512).get({"type": "object"})` -> `CompiledSchema` or raises
    `InvalidSchema`. Invalid schemas are not cached (they end the request with a 400).
    """

    def __init__(self, maxsize: int = 512) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[bytes, CompiledSchema] = OrderedDict()
        #: Large request bodies are parsed (and their schemas compiled) in worker threads.
        self._lock = threading.Lock()

    def get(self, schema: Any) -> CompiledSchema:
        canonical = _canonical(schema)
        if len(canonical) > MAX_SCHEMA_BYTES:
            raise InvalidSchema(f"the schema is {len(canonical):,} bytes as JSON; at most {MAX_SCHEMA_BYTES:,}")
        digest = hashlib.blake2b(canonical, digest_size=16).digest()
        with self._lock:
            entry = self._entries.get(digest)
            if entry is not None:
                self._entries.move_to_end(digest)
                return entry
        entry = _compile(digest, canonical)
        with self._lock:
            self._entries[digest] = entry
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return entry

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._entries)


#: The process-wide cache used when none is passed in.
DEFAULT_CACHE = SchemaCache()
