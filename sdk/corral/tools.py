"""Tools from plain Python: functions (schema from type hints and docstring), pydantic models
(their JSON Schema) or OpenAI tool dicts; and tool calls with their arguments already parsed.

Usage:
    def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
        '''Current weather in a city.

        Args:
            city: The city's name.
        '''

    class Search(pydantic.BaseModel):
        query: str

    completion = client.chat.completions.create(model=..., messages=..., tools=[get_weather, Search])
    call = completion.choices[0].message.tool_calls[0]
    call.function.parsed_arguments   # {"city": "Oslo"} or Search(query=...)
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar, get_args, get_origin, get_type_hints, overload

import jsonschema

from corral._docstring import parse_docstring
from corral._errors import CorralError
from corral._schema import Schema, is_pydantic_model, model_schema, type_schema
from corral.types.chat import ChatCompletion, ChatCompletionMessage, ToolCall

__all__ = [
    "MaxToolRoundsExceeded",
    "Tool",
    "ToolArgumentsError",
    "ToolLike",
    "ToolRegistry",
    "ToolRunResult",
    "tool",
    "tool_result_content",
]

M = TypeVar("M")
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_MAX_ROUNDS = 10


class ToolArgumentsError(CorralError):
    """A tool call's arguments are not valid JSON or do not fit the tool's schema."""

    def __init__(self, tool: str, errors: list[str]):
        super().__init__(f"invalid arguments for tool {tool!r}: " + "; ".join(errors))
        self.tool = tool
        self.errors = errors


@dataclass(slots=True, eq=False)
class Tool:
    """A tool the model may call: its name, description and JSON Schema, and optionally the
    function that runs it (`handler`) and the pydantic model its arguments parse into (`model`).

    Build one with `corral.tool(...)`; `create(tools=[...])` also accepts functions, pydantic
    models and OpenAI tool dicts directly.
    """

    name: str
    parameters: Schema
    description: str | None = None
    handler: Callable[..., Any] | None = None
    model: type | None = None
    strict: bool | None = None
    _validator: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {NAME_PATTERN.pattern}; pass name=...")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.handler is None:
            raise TypeError(f"tool {self.name!r} has no handler")
        return self.handler(*args, **kwargs)

    def to_param(self) -> dict[str, Any]:
        """The OpenAI `tools[]` entry."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        if self.strict is not None:
            function["strict"] = self.strict
        return {"type": "function", "function": function}

    def parse_arguments(self, arguments: str) -> Any:
        """The model instance (pydantic tools) or the dict of arguments, checked against the schema."""
        if self.model is not None:
            return _parse_model(self.name, self.model, arguments)
        try:
            value = json.loads(arguments or "{}")
        except ValueError as exc:
            raise ToolArgumentsError(self.name, [f"arguments are not valid JSON: {exc}"]) from None
        if not isinstance(value, dict):
            raise ToolArgumentsError(self.name, ["arguments must be a JSON object"])
        if self._validator is None:
            self._validator = jsonschema.Draft202012Validator(self.parameters)
        errors = [_schema_error(e) for e in self._validator.iter_errors(value)]
        if errors:
            raise ToolArgumentsError(self.name, errors)
        return value

    def invoke(self, parsed: Any) -> Any:
        """Run the handler on parsed arguments (may return an awaitable for async handlers)."""
        if self.handler is None:
            raise TypeError(f"tool {self.name!r} has no handler; build it with corral.tool(..., handler=fn)")
        if self.model is not None:
            return self.handler(parsed)
        return self.handler(**coerce_kwargs(self.handler, parsed))


#: What `tools=[...]` accepts: a Tool, a function, a pydantic model class or an OpenAI tool dict.
ToolLike: TypeAlias = Tool | Callable[..., Any] | type | Mapping[str, Any]
#: Parses the calls of tools a request did not declare: any JSON object.
_ANY_TOOL = Tool("any", {"type": "object"})


def _parse_model(name: str, model: type, arguments: str) -> Any:
    import pydantic

    try:
        return model.model_validate_json(arguments or "{}")  # type: ignore[attr-defined]
    except pydantic.ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()]
        raise ToolArgumentsError(name, errors) from None


def _schema_error(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{path}: {error.message}"


@overload
def tool(
    obj: Callable[..., Any] | type | Mapping[str, Any],
    *,
    name: str | None = None,
    description: str | None = None,
    handler: Callable[..., Any] | None = None,
    strict: bool | None = None,
) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, strict: bool | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...
def tool(
    obj: Callable[..., Any] | type | Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    handler: Callable[..., Any] | None = None,
    strict: bool | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a Tool from a function, a pydantic model (with an optional `handler` that receives
    the model instance) or an OpenAI tool dict. Also usable as a decorator, with or without
    arguments."""
    if obj is None:
        return lambda fn: tool(fn, name=name, description=description, strict=strict)
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, Mapping):
        return _from_dict(obj, handler)
    if is_pydantic_model(obj):
        assert isinstance(obj, type)
        schema = model_schema(obj)
        doc = description or schema.pop("description", None)
        schema.pop("title", None)
        return Tool(name or obj.__name__, schema, doc, handler, obj, strict)
    if callable(obj):
        return _from_function(obj, name, description, strict)
    raise TypeError(f"cannot make a tool from {obj!r}: pass a function, a pydantic model or a tool dict")


def _from_dict(raw: Mapping[str, Any], handler: Callable[..., Any] | None) -> Tool:
    function = raw.get("function", raw)
    if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
        raise ValueError(
            "a tool dict needs {'type': 'function', 'function': {'name': ..., 'parameters': ...}}"
        )
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return Tool(
        function["name"], dict(parameters), function.get("description"), handler, None, function.get("strict")
    )


def _from_function(
    fn: Callable[..., Any], name: str | None, description: str | None, strict: bool | None
) -> Tool:
    doc, param_docs = parse_docstring(inspect.getdoc(fn))
    try:
        hints = get_type_hints(fn, include_extras=True)
    except NameError as exc:
        raise TypeError(f"tool {getattr(fn, '__name__', fn)!r}: cannot resolve a type hint ({exc})") from exc
    properties: dict[str, Schema] = {}
    required: list[str] = []
    defs: dict[str, Schema] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise TypeError(
                f"tool {fn.__name__}: parameter {param.name!r} must be an ordinary or keyword parameter"
            )
        schema = type_schema(hints.get(param.name, Any), defs)
        if param.name in param_docs and "description" not in schema:
            schema["description"] = param_docs[param.name]
        if param.default is param.empty:
            required.append(param.name)
        else:
            default = _as_json(param.default)
            if default is not _NO_JSON:
                schema["default"] = default
        properties[param.name] = schema
    parameters: Schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if defs:
        parameters["$defs"] = defs
    tool_name = name or str(getattr(fn, "__name__", ""))
    return Tool(tool_name, parameters, description or doc, fn, None, strict)


_NO_JSON = object()


def _as_json(value: Any) -> Any:
    """`value` as JSON would carry it (enums by value, tuples as lists), or _NO_JSON."""
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return _NO_JSON


def coerce_kwargs(fn: Callable[..., Any], arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments turned into the handler's declared types where JSON loses them (enums,
    pydantic models, dataclasses, tuples, sets), recursively through containers."""
    hints = get_type_hints(fn)
    return {key: _coerce(value, hints.get(key, Any)) for key, value in arguments.items()}


def _coerce(value: Any, tp: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        for arg in args:
            if arg is not type(None) and value is not None:
                return _coerce(value, arg)
        return value
    if origin in (list, set, frozenset) and isinstance(value, list) and args:
        items = [_coerce(v, args[0]) for v in value]
        return items if origin is list else origin(items)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if len(args) == len(value):
            return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
        return tuple(value)
    if origin is dict and isinstance(value, dict) and len(args) == 2:
        return {k: _coerce(v, args[1]) for k, v in value.items()}
    if not isinstance(tp, type):
        return value
    if issubclass(tp, enum.Enum):
        return tp(value)
    if is_pydantic_model(tp):
        return tp.model_validate(value)  # type: ignore[attr-defined]
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return tp(**coerce_kwargs(tp, value))
    if tp in (tuple, set, frozenset) and isinstance(value, list):
        return tp(value)
    return value


class ToolRegistry:
    """The tools of one request, by name; parses the tool calls in a response."""

    def __init__(self, tools: Iterable[Any] = ()):
        self._tools: dict[str, Tool] = {}
        for item in tools:
            made = tool(item)
            if made.name in self._tools:
                raise ValueError(f"two tools are named {made.name!r}")
            self._tools[made.name] = made

    def __bool__(self) -> bool:
        return bool(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def params(self) -> list[dict[str, Any]]:
        return [t.to_param() for t in self._tools.values()]

    def parse_call(self, call: ToolCall) -> None:
        """Fill `call.function.parsed_arguments`, or `parse_error` when the arguments do not parse."""
        parser = self._tools.get(call.function.name) or _ANY_TOOL
        try:
            call.function.parsed_arguments = parser.parse_arguments(call.function.arguments)
            call.function.parse_error = None
        except ToolArgumentsError as exc:
            call.function.parsed_arguments = None
            call.function.parse_error = "; ".join(exc.errors)

    def parse_message(self, message: ChatCompletionMessage) -> None:
        for call in message.tool_calls or ():
            self.parse_call(call)

    def parse_completion(self, completion: ChatCompletion) -> ChatCompletion:
        for choice in completion.choices:
            self.parse_message(choice.message)
        return completion

    def parse_typed(self, completion: ChatCompletion[M]) -> ChatCompletion[M]:
        """For `parse()`, whose tools are all pydantic models: fill every call's arguments with
        an instance of its tool's model; a call naming a tool that was not given gets None and a
        `parse_error` (never a dict, which its type would not admit)."""
        for choice in completion.choices:
            for call in choice.message.tool_calls or ():
                if call.function.name in self._tools:
                    self.parse_call(call)
                else:
                    call.function.parsed_arguments = None
                    name = call.function.name
                    call.function.parse_error = f"the model called {name!r}, which is not a tool given"
        return completion


def models_only(tools: Sequence[object]) -> None:
    """`parse()` takes pydantic model classes only (what makes its typing true)."""
    for item in tools:
        if not (isinstance(item, type) and is_pydantic_model(item)):
            raise TypeError(
                f"parse() takes pydantic model classes as tools, not {item!r}; use create() for functions, "
                "Tool objects and tool dicts"
            )


def tool_result_content(value: Any) -> str:
    """What a handler returned, as the text of a `tool` message."""
    if isinstance(value, str):
        return value
    if is_pydantic_model(type(value)):
        text: str = value.model_dump_json()
        return text
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.dumps(value, default=str, ensure_ascii=False)


@dataclass(slots=True)
class ToolRunResult:
    """The outcome of `run_tools`: the last completion, every completion, and the conversation
    (your messages, the assistant's turns and the tool results) to continue from."""

    completion: ChatCompletion
    messages: list[dict[str, Any]]
    completions: list[ChatCompletion]

    @property
    def rounds(self) -> int:
        """How many times tools were run."""
        return len(self.completions) - 1

    @property
    def content(self) -> str | None:
        return self.completion.choices[0].message.content if self.completion.choices else None


class MaxToolRoundsExceeded(CorralError):
    """The model still asked for tools after `max_rounds` rounds; `result` holds the conversation."""

    def __init__(self, max_rounds: int, result: ToolRunResult):
        super().__init__(f"the model still requested tools after {max_rounds} round(s)")
        self.max_rounds = max_rounds
        self.result = result
