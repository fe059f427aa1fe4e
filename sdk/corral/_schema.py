"""JSON Schema from Python type hints, for tools built from plain functions.

Covers what tool parameters use: str, int, float, bool, None, Any, Literal, Enum, list / tuple /
set / dict (and their abc forms), unions, Annotated (a str in the metadata is the description),
datetime / date / time / UUID / Decimal, dataclasses, TypedDicts and pydantic models (through
their own schema). Named types land in `$defs` and are referenced, so recursion works.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import sys
import types
import typing
import uuid
from collections import abc
from decimal import Decimal
from typing import Any, get_args, get_origin, get_type_hints

Schema = dict[str, Any]

_SCALARS: dict[Any, Schema] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    Decimal: {"type": "number"},
    dt.datetime: {"type": "string", "format": "date-time"},
    dt.date: {"type": "string", "format": "date"},
    dt.time: {"type": "string", "format": "time"},
    uuid.UUID: {"type": "string", "format": "uuid"},
    bytes: {"type": "string"},
}
_ARRAYS = (list, abc.Sequence, abc.MutableSequence, abc.Iterable, abc.Collection)
_SETS = (set, frozenset, abc.Set, abc.MutableSet)
_MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)


class SchemaError(TypeError):
    """A type the SDK cannot describe as JSON Schema."""


def type_schema(tp: Any, defs: dict[str, Schema]) -> Schema:
    """The schema of `tp`; named types are added to `defs` and referenced."""
    if tp is Any or tp is object:
        return {}
    if tp is None:
        return {"type": "null"}
    if tp in _SCALARS:
        return dict(_SCALARS[tp])
    origin = get_origin(tp)
    if origin is not None:
        return _generic_schema(tp, origin, defs)
    if isinstance(tp, type):
        return _class_schema(tp, defs)
    raise SchemaError(f"cannot describe {tp!r} as JSON Schema")


def _generic_schema(tp: Any, origin: Any, defs: dict[str, Schema]) -> Schema:
    args = get_args(tp)
    if origin is typing.Annotated:
        schema = type_schema(args[0], defs)
        notes = [meta for meta in args[1:] if isinstance(meta, str)]
        return {**schema, "description": notes[0]} if notes else schema
    if origin is typing.Literal:
        return _literal_schema(args)
    if origin is typing.Union or origin is types.UnionType:
        return {"anyOf": [type_schema(arg, defs) for arg in args]}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": type_schema(args[0], defs)}
        items = [type_schema(arg, defs) for arg in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}
    if origin in _SETS:
        return {"type": "array", "items": type_schema(args[0], defs) if args else {}, "uniqueItems": True}
    if origin in _ARRAYS:
        return {"type": "array", "items": type_schema(args[0], defs) if args else {}}
    if origin in _MAPPINGS:
        if args and args[0] is not str:
            raise SchemaError(f"JSON object keys are strings; cannot describe {tp!r}")
        return {"type": "object", "additionalProperties": type_schema(args[1], defs) if args else {}}
    raise SchemaError(f"cannot describe {tp!r} as JSON Schema")


def _literal_schema(values: tuple[Any, ...]) -> Schema:
    schema: Schema = {"enum": list(values)}
    kinds = {type(value) for value in values}
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind in _SCALARS and "format" not in _SCALARS[kind]:
            schema["type"] = _SCALARS[kind]["type"]
    return schema


def _class_schema(cls: type, defs: dict[str, Schema]) -> Schema:
    if issubclass(cls, enum.Enum):
        return _literal_schema(tuple(member.value for member in cls))
    if cls in (list, tuple, set, frozenset):
        return {"type": "array"}
    if cls is dict:
        return {"type": "object"}
    if is_pydantic_model(cls):
        return _pydantic_schema(cls, defs)
    if dataclasses.is_dataclass(cls) or typing.is_typeddict(cls):
        ref = {"$ref": f"#/$defs/{cls.__name__}"}
        if cls.__name__ not in defs:
            defs[cls.__name__] = {}  # reserve the name first: the class may refer to itself
            defs[cls.__name__] = _object_schema(cls, defs)
        return ref
    raise SchemaError(f"cannot describe {cls.__qualname__} as JSON Schema")


def _object_schema(cls: type, defs: dict[str, Schema]) -> Schema:
    hints = get_type_hints(cls, include_extras=True)
    if typing.is_typeddict(cls):
        required = [name for name in hints if name in getattr(cls, "__required_keys__", ())]
    else:
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        hints = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    schema: Schema = {
        "type": "object",
        "properties": {name: type_schema(hint, defs) for name, hint in hints.items()},
        "required": required,
        "additionalProperties": False,
    }
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):
        schema["description"] = cls.__doc__.strip()
    return schema


def _pydantic_schema(cls: type, defs: dict[str, Schema]) -> Schema:
    schema = model_schema(cls)
    defs.update(schema.pop("$defs", {}))
    defs[cls.__name__] = schema
    return {"$ref": f"#/$defs/{cls.__name__}"}


def model_schema(cls: type) -> Schema:
    """A pydantic model's JSON Schema, with references into `#/$defs/`."""
    schema: Schema = cls.model_json_schema(ref_template="#/$defs/{model}")  # type: ignore[attr-defined]
    return schema


def is_pydantic_model(obj: object) -> bool:
    """True for pydantic BaseModel subclasses; never imports pydantic itself."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(obj, type):
        return False
    base: type = pydantic.BaseModel
    return issubclass(obj, base)
