"""What a request promises its answer will satisfy: declared tools, tool_choice,
parallel_tool_calls and response_format, with every schema compiled up front.

`prepare(body)` runs before any backend is called, so a request whose own schema is
broken gets a 400 naming the tool and the reason instead of a confusing upstream error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gateway.errors import Code, bad_request, error
from gateway.toolcalls.schemas import DEFAULT_CACHE, CompiledSchema, InvalidSchema, SchemaCache

__all__ = ["Choice", "Contract", "OutputKind", "prepare"]

ChoiceKind = Literal["auto", "none", "required", "function"]
OutputKind = Literal["json_object", "json_schema"]
#: Most tools one request may declare (OpenAI's limit too).
MAX_TOOLS = 128
#: Schema used when a function declares no parameters: any JSON object.
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


@dataclass(frozen=True, slots=True)
class Choice:
    kind: ChoiceKind = "auto"
    #: The forced function when `kind == "function"`.
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Contract:
    """The compiled expectations for one request's answer."""

    tools: Mapping[str, CompiledSchema]
    choice: Choice
    parallel: bool
    output_kind: OutputKind | None = None
    #: The response_format schema (json_schema), or None for json_object / no format.
    output: CompiledSchema | None = None

    @property
    def calls_allowed(self) -> bool:
        return bool(self.tools) and self.choice.kind != "none"

    def allowed_names(self) -> tuple[str, ...]:
        if self.choice.kind == "function" and self.choice.name is not None:
            return (self.choice.name,)
        return tuple(self.tools) if self.calls_allowed else ()


def prepare(body: Mapping[str, Any], cache: SchemaCache = DEFAULT_CACHE) -> Contract | None:
    """Compile the request's tool and response schemas; None when it has neither.

    Raises `GatewayError` 400: `invalid_tool_schema` for a tool whose parameters schema
    fails its draft's meta-schema, `invalid_value` for duplicate function names, a
    tool_choice naming an undeclared function, or an invalid response_format schema.
    """
    tools = _tools(body.get("tools") or (), cache)
    output_kind, output = _output(body.get("response_format"), cache)
    if not tools and output_kind is None:
        return None
    choice = _choice(body.get("tool_choice"), tools)
    parallel = body.get("parallel_tool_calls") is not False
    return Contract(tools, choice, parallel, output_kind, output)


def _tools(raw: Any, cache: SchemaCache) -> dict[str, CompiledSchema]:
    if len(raw) > MAX_TOOLS:
        raise bad_request(f"{len(raw)} tools declared; at most {MAX_TOOLS}", param="tools")
    compiled: dict[str, CompiledSchema] = {}
    for position, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise bad_request("each tool needs a function with a name", param=f"tools[{position}].function")
        name = function["name"]
        if name in compiled:
            raise bad_request(f"function {name!r} is declared twice", param=f"tools[{position}].function.name")
        compiled[name] = _tool_schema(position, name, function.get("parameters"), cache)
    return compiled


def _tool_schema(position: int, name: str, schema: Any, cache: SchemaCache) -> CompiledSchema:
    try:
        return cache.get(_ANY_OBJECT if schema is None else schema)
    except InvalidSchema as exc:
        raise error(
            Code.INVALID_TOOL_SCHEMA,
            f"tools[{position}] ({name}): the parameters schema is invalid: {exc}",
            param=f"tools[{position}].function.parameters",
        ) from exc


def _output(raw: Any, cache: SchemaCache) -> tuple[OutputKind | None, CompiledSchema | None]:
    kind = raw.get("type") if isinstance(raw, Mapping) else None
    if kind == "json_object":
        return "json_object", None
    if kind != "json_schema":
        return None, None
    spec = raw.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    if schema is None:
        return "json_object", None
    try:
        return "json_schema", cache.get(schema)
    except InvalidSchema as exc:
        raise bad_request(
            f"response_format.json_schema.schema is invalid: {exc}", param="response_format.json_schema.schema"
        ) from exc


def _choice(raw: Any, tools: Mapping[str, CompiledSchema]) -> Choice:
    if raw in (None, "auto"):
        return Choice("auto")
    if raw in ("none", "required"):
        return Choice(raw)
    function = raw.get("function") if isinstance(raw, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str):
        raise bad_request("tool_choice must be none, auto, required or a named function", param="tool_choice")
    if name not in tools:
        raise bad_request(f"tool_choice names {name!r}, which is not among the declared tools", param="tool_choice")
    return Choice("function", name)
