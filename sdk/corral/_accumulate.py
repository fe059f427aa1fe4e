"""Assembling streamed chunks into the final completion: content, tool calls and usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.types.chat import ChatCompletion, ChatCompletionMessage, Choice, FunctionCall, ToolCall, Usage
from corral.types.chunk import ChatCompletionChunk, ChoiceDeltaToolCall
from corral.types.corral import body_corral


@dataclass(slots=True)
class _ToolCallParts:
    id: str = ""
    type: str = "function"
    name: str = ""
    arguments: list[str] = field(default_factory=list)

    def add(self, delta: ChoiceDeltaToolCall) -> None:
        if delta.id and not self.id:
            self.id = delta.id
        if delta.type:
            self.type = delta.type
        name = delta.function.name
        if name and name != self.name:
            # Most backends send the whole name once; a few repeat it, a few split it.
            self.name = name if not self.name or name.startswith(self.name) else self.name + name
        if delta.function.arguments:
            self.arguments.append(delta.function.arguments)

    def build(self) -> ToolCall:
        return ToolCall(id=self.id, type=self.type, function=FunctionCall(self.name, "".join(self.arguments)))


@dataclass(slots=True)
class _ChoiceParts:
    role: str = "assistant"
    content: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tool_calls: dict[int, _ToolCallParts] = field(default_factory=dict)
    finish_reason: str | None = None

    def build(self, index: int) -> Choice:
        message = ChatCompletionMessage(
            role=self.role,
            content="".join(self.content) if self.content else None,
            tool_calls=[self.tool_calls[i].build() for i in sorted(self.tool_calls)] or None,
            refusal="".join(self.refusal) if self.refusal else None,
        )
        return Choice(index=index, message=message, finish_reason=self.finish_reason)


@dataclass(slots=True)
class ChunkAccumulator:
    """Feed chunks with `add`; `completion()` is what a non-streamed call would have returned."""

    id: str = ""
    model: str = ""
    created: int = 0
    system_fingerprint: str | None = None
    usage: Usage | None = None
    #: What `corral` / `x_corral` objects in chunks said (e.g. the final cost), if anything.
    corral: dict[str, Any] = field(default_factory=dict)
    _choices: dict[int, _ChoiceParts] = field(default_factory=dict)

    def add(self, chunk: ChatCompletionChunk) -> None:
        self.id = self.id or chunk.id
        self.model = self.model or chunk.model
        self.created = self.created or chunk.created
        self.system_fingerprint = chunk.system_fingerprint or self.system_fingerprint
        if chunk.usage is not None:
            self.usage = chunk.usage
        self.corral.update(body_corral(chunk.raw))
        for choice in chunk.choices:
            parts = self._choices.setdefault(choice.index, _ChoiceParts())
            delta = choice.delta
            if delta.role:
                parts.role = delta.role
            if delta.content:
                parts.content.append(delta.content)
            if delta.refusal:
                parts.refusal.append(delta.refusal)
            for call in delta.tool_calls:
                parts.tool_calls.setdefault(call.index, _ToolCallParts()).add(call)
            if choice.finish_reason:
                parts.finish_reason = choice.finish_reason

    @property
    def content(self) -> str:
        """The first choice's text so far."""
        parts = self._choices.get(0)
        return "".join(parts.content) if parts else ""

    def completion(self) -> ChatCompletion:
        return ChatCompletion(
            id=self.id,
            model=self.model,
            created=self.created,
            choices=[self._choices[i].build(i) for i in sorted(self._choices)],
            usage=self.usage,
            system_fingerprint=self.system_fingerprint,
        )
