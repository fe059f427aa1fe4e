"""A chat completion as the gateway returns it (OpenAI's shape), plus what served it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from typing_extensions import TypeVar as DefaultedTypeVar

from corral.types._dump import Dumpable
from corral.types._parse import as_dict, dict_list, opt_int, opt_str
from corral.types.corral import CorralInfo, body_corral

M = TypeVar("M")
#: What `parsed_arguments` holds: Any by default; the pydantic model given to `parse()`.
A = DefaultedTypeVar("A", default=Any)


@dataclass(slots=True)
class FunctionCall(Dumpable, Generic[A]):
    """The function a tool call names, its raw JSON arguments and, once parsed, the arguments.

    `parsed_arguments` is a dict for function and raw-schema tools and an instance of the model
    for pydantic tools; it is None when the arguments could not be parsed, and then
    `parse_error` says why. Typed `Any`, except in what `chat.completions.parse(tools=[Model])`
    returns, where type checkers see `Model | None`; `arguments_as(Model)` gives them typed as
    that model anywhere.
    """

    name: str
    arguments: str
    parsed_arguments: A | None = None
    parse_error: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FunctionCall[A]:
        arguments = data.get("arguments")
        return cls(
            name=opt_str(data.get("name")) or "", arguments=arguments if isinstance(arguments, str) else ""
        )

    def arguments_as(self, model: type[M]) -> M:
        """The arguments as an instance of `model` (the pydantic model given as the tool), typed
        as such for type checkers. Raises ValueError when they did not parse or validate."""
        if isinstance(self.parsed_arguments, model):
            return self.parsed_arguments
        validate = getattr(model, "model_validate_json", None)
        if validate is None:
            raise TypeError(f"{model.__name__} is not a pydantic model")
        try:
            value = validate(self.arguments)
        except ValueError as exc:  # pydantic.ValidationError is a ValueError
            raise ValueError(f"arguments of {self.name!r} are not a valid {model.__name__}: {exc}") from exc
        if not isinstance(value, model):
            raise TypeError(f"{model.__name__}.model_validate_json returned {type(value).__name__}")
        return value

    def to_param(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class ToolCall(Dumpable, Generic[A]):
    id: str
    function: FunctionCall[A]
    type: str = "function"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall[A]:
        return cls(
            id=opt_str(data.get("id")) or "",
            function=FunctionCall.from_dict(as_dict(data.get("function"))),
            type=opt_str(data.get("type")) or "function",
        )

    def to_param(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "function": self.function.to_param()}


@dataclass(slots=True)
class ChatCompletionMessage(Dumpable, Generic[A]):
    role: str = "assistant"
    content: str | None = None
    #: None when the message calls no tool (as in openai-python).
    tool_calls: list[ToolCall[A]] | None = None
    refusal: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatCompletionMessage[A]:
        content = data.get("content")
        if isinstance(content, list):  # text parts
            content = "".join(str(part.get("text", "")) for part in dict_list(content))
        return cls(
            role=opt_str(data.get("role")) or "assistant",
            content=content if isinstance(content, str) else None,
            tool_calls=[ToolCall.from_dict(item) for item in dict_list(data.get("tool_calls"))] or None,
            refusal=opt_str(data.get("refusal")),
        )

    def to_param(self) -> dict[str, Any]:
        """This message as a request message, to append to the conversation."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.to_param() for call in self.tool_calls]
        return out


@dataclass(slots=True)
class Choice(Dumpable, Generic[A]):
    index: int
    message: ChatCompletionMessage[A]
    finish_reason: str | None = None
    logprobs: Any = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Choice[A]:
        return cls(
            index=opt_int(data.get("index")) or 0,
            message=ChatCompletionMessage.from_dict(as_dict(data.get("message"))),
            finish_reason=opt_str(data.get("finish_reason")),
            logprobs=data.get("logprobs"),
        )


@dataclass(frozen=True, slots=True)
class Usage(Dumpable):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> Usage | None:
        if not isinstance(data, dict):
            return None
        prompt = opt_int(data.get("prompt_tokens")) or 0
        completion = opt_int(data.get("completion_tokens")) or 0
        total = opt_int(data.get("total_tokens"))
        cached = opt_int(as_dict(data.get("prompt_tokens_details")).get("cached_tokens")) or 0
        return cls(prompt, completion, total if total is not None else prompt + completion, cached)


@dataclass(slots=True)
class ChatCompletion(Dumpable, Generic[A]):
    """A chat completion. `corral` says what served it; `raw` is the body as received.
    `ChatCompletion[Model]` (from `parse()`): its tool calls' `parsed_arguments` are `Model | None`."""

    id: str
    model: str
    choices: list[Choice[A]]
    created: int = 0
    usage: Usage | None = None
    system_fingerprint: str | None = None
    object: str = "chat.completion"
    corral: CorralInfo = field(default_factory=CorralInfo)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, corral: CorralInfo | None = None) -> ChatCompletion[A]:
        info = corral or CorralInfo()
        extra = body_corral(data)
        if extra:
            info = info.updated(extra)
        return cls(
            id=opt_str(data.get("id")) or "",
            model=opt_str(data.get("model")) or "",
            choices=[Choice.from_dict(item) for item in dict_list(data.get("choices"))],
            created=opt_int(data.get("created")) or 0,
            usage=Usage.from_dict(data.get("usage")),
            system_fingerprint=opt_str(data.get("system_fingerprint")),
            object=opt_str(data.get("object")) or "chat.completion",
            corral=info,
            raw=data,
        )
