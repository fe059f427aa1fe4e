"""One streamed chunk (`object: chat.completion.chunk`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.types._dump import Dumpable
from corral.types._parse import as_dict, dict_list, opt_int, opt_str
from corral.types.chat import Usage


@dataclass(slots=True)
class ChoiceDeltaFunction:
    name: str | None = None
    arguments: str | None = None


@dataclass(slots=True)
class ChoiceDeltaToolCall:
    index: int
    id: str | None = None
    type: str | None = None
    function: ChoiceDeltaFunction = field(default_factory=ChoiceDeltaFunction)

    @classmethod
    def from_dict(cls, data: dict[str, Any], position: int) -> ChoiceDeltaToolCall:
        function = as_dict(data.get("function"))
        index = opt_int(data.get("index"))
        return cls(
            index=index if index is not None else position,
            id=opt_str(data.get("id")),
            type=opt_str(data.get("type")),
            function=ChoiceDeltaFunction(opt_str(function.get("name")), opt_str(function.get("arguments"))),
        )


@dataclass(slots=True)
class ChoiceDelta:
    role: str | None = None
    content: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] = field(default_factory=list)
    refusal: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChoiceDelta:
        calls = dict_list(data.get("tool_calls"))
        return cls(
            role=opt_str(data.get("role")),
            content=opt_str(data.get("content")),
            tool_calls=[ChoiceDeltaToolCall.from_dict(item, i) for i, item in enumerate(calls)],
            refusal=opt_str(data.get("refusal")),
        )


@dataclass(slots=True)
class ChunkChoice:
    index: int
    delta: ChoiceDelta
    finish_reason: str | None = None
    logprobs: Any = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChunkChoice:
        return cls(
            index=opt_int(data.get("index")) or 0,
            delta=ChoiceDelta.from_dict(as_dict(data.get("delta"))),
            finish_reason=opt_str(data.get("finish_reason")),
            logprobs=data.get("logprobs"),
        )


@dataclass(slots=True)
class ChatCompletionChunk(Dumpable):
    """A streamed chunk. The last one (with `choices == []`) carries `usage`."""

    id: str
    model: str
    choices: list[ChunkChoice]
    created: int = 0
    usage: Usage | None = None
    system_fingerprint: str | None = None
    object: str = "chat.completion.chunk"
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatCompletionChunk:
        return cls(
            id=opt_str(data.get("id")) or "",
            model=opt_str(data.get("model")) or "",
            choices=[ChunkChoice.from_dict(item) for item in dict_list(data.get("choices"))],
            created=opt_int(data.get("created")) or 0,
            usage=Usage.from_dict(data.get("usage")),
            system_fingerprint=opt_str(data.get("system_fingerprint")),
            object=opt_str(data.get("object")) or "chat.completion.chunk",
            raw=data,
        )
