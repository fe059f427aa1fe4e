"""Chat-completions answers -> OpenAI Responses API objects and stream events (pure).

A `chat.completion` becomes a `response` whose `output` holds a `message` item (the text)
and one `function_call` item per tool call; a chunk stream becomes the Responses event
sequence: `response.created`, `response.in_progress`, then per item
`response.output_item.added`, (`response.content_part.added`, `response.output_text.delta`...,
`response.output_text.done`, `response.content_part.done`) or
(`response.function_call_arguments.delta`..., `response.function_call_arguments.done`),
`response.output_item.done`, and at the end `response.completed` (`response.incomplete`
when the output limit cut it, `response.failed` on an error), each with a `sequence_number`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["EventStream", "ResponseShell", "assistant_message", "response_object", "response_usage"]


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def response_usage(usage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Chat usage -> Responses usage."""
    if not usage:
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens", 0) if isinstance(details, Mapping) else 0
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


@dataclass(slots=True)
class ResponseShell:
    """What a response object repeats from its request."""

    model: str
    request: Mapping[str, Any]
    id: str = field(default_factory=lambda: _id("resp"))
    created_at: int = 0

    def build(
        self,
        output: list[dict[str, Any]],
        status: str,
        usage: dict[str, Any] | None,
        *,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request = self.request
        text = request.get("text") if isinstance(request.get("text"), Mapping) else None
        incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": request.get("parallel_tool_calls", True) is not False,
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "store": request.get("store") is not False,
            "temperature": request.get("temperature"),
            "text": {"format": {"type": "text"}, **(text or {})},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_p": request.get("top_p"),
            "truncation": "disabled",
            "usage": usage,
            "user": request.get("user"),
            "metadata": request.get("metadata") or {},
        }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": []}
    return {"type": "message", "id": item_id, "status": status, "role": "assistant", "content": [part]}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _status(finish_reason: Any) -> str:
    return "incomplete" if finish_reason == "length" else "completed"


def response_object(shell: ResponseShell, completion: Mapping[str, Any]) -> dict[str, Any]:
    """A `chat.completion` body as a `response` object."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        output.append(_message_item(_id("msg"), content, "completed"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        output.append(
            _call_item(
                _id("fc"), call.get("id", ""), function.get("name", ""), function.get("arguments", ""), "completed"
            )
        )
    status = _status(choice.get("finish_reason"))
    return shell.build(output, status, response_usage(completion.get("usage")))


def assistant_message(response: Mapping[str, Any]) -> dict[str, Any]:
    """A response's output as the chat assistant message (for `previous_response_id`)."""
    text = ""
    calls = []
    for item in response.get("output") or ():
        if item.get("type") == "message":
            text += "".join(part.get("text", "") for part in item.get("content") or ())
        elif item.get("type") == "function_call":
            function = {"name": item["name"], "arguments": item["arguments"]}
            calls.append({"id": item["call_id"], "type": "function", "function": function})
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


@dataclass(slots=True)
class _Call:
    output_index: int
    item_id: str
    call_id: str
    name: str
    arguments: str = ""


class EventStream:
    """Turns chat chunks into Responses events (SSE frames), keeping the output as it goes."""

    def __init__(self, shell: ResponseShell) -> None:
        self.shell = shell
        self.output: list[dict[str, Any]] = []
        self._seq = 0
        self._text: str | None = None
        self._text_id = ""
        self._text_index = 0
        self._calls: dict[int, _Call] = {}
        self._open_call: _Call | None = None
        self._finish: Any = None

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **payload}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def start(self) -> bytes:
        shell = self.shell.build([], "in_progress", None)
        return self._event("response.created", {"response": shell}) + self._event(
            "response.in_progress", {"response": shell}
        )

    def chunk(self, chunk: Mapping[str, Any]) -> bytes:
        out = b""
        for choice in (chunk.get("choices") or ())[:1]:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                out += self._close_call() + self._text_delta(content)
            for call in delta.get("tool_calls") or ():
                out += self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return out

    def _text_delta(self, content: str) -> bytes:
        out = b""
        if self._text is None:
            self._text, self._text_id, self._text_index = "", _id("msg"), len(self.output)
            self.output.append(_message_item(self._text_id, "", "in_progress"))
            item = {**self.output[-1], "content": []}
            part = {"type": "output_text", "text": "", "annotations": []}
            where = {"item_id": self._text_id, "output_index": self._text_index}
            out += self._event("response.output_item.added", {"output_index": self._text_index, "item": item})
            out += self._event("response.content_part.added", {**where, "content_index": 0, "part": part})
        self._text += content
        where = {"item_id": self._text_id, "output_index": self._text_index, "content_index": 0}
        return out + self._event("response.output_text.delta", {**where, "delta": content, "logprobs": []})

    def _close_text(self) -> bytes:
        if self._text is None:
            return b""
        text, self._text = self._text, None
        item = _message_item(self._text_id, text, "completed")
        self.output[self._text_index] = item
        where = {"item_id": self._text_id, "output_index": self._text_index, "content_index": 0}
        return (
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
            + self._event("response.content_part.done", {**where, "part": item["content"][0]})
            + self._event("response.output_item.done", {"output_index": self._text_index, "item": item})
        )

    def _call_delta(self, raw: Mapping[str, Any]) -> bytes:
        index = raw.get("index", 0)
        function = raw.get("function") or {}
        out = b""
        call = self._calls.get(index)
        if call is None:
            out += self._close_text() + self._close_call()
            call = _Call(len(self.output), _id("fc"), raw.get("id") or _id("call"), function.get("name") or "")
            self._calls[index] = call
            self._open_call = call
            self.output.append(_call_item(call.item_id, call.call_id, call.name, "", "in_progress"))
            out += self._event(
                "response.output_item.added", {"output_index": call.output_index, "item": self.output[-1]}
            )
        piece = function.get("arguments")
        if piece:
            call.arguments += piece
            where = {"item_id": call.item_id, "output_index": call.output_index}
            out += self._event("response.function_call_arguments.delta", {**where, "delta": piece})
        return out

    def _close_call(self) -> bytes:
        call, self._open_call = self._open_call, None
        if call is None:
            return b""
        item = _call_item(call.item_id, call.call_id, call.name, call.arguments, "completed")
        self.output[call.output_index] = item
        where = {"item_id": call.item_id, "output_index": call.output_index}
        return self._event(
            "response.function_call_arguments.done", {**where, "name": call.name, "arguments": call.arguments}
        ) + self._event("response.output_item.done", {"output_index": call.output_index, "item": item})

    def finish(self, usage: Mapping[str, Any] | None) -> tuple[bytes, dict[str, Any]]:
        """The closing events and the final response object."""
        out = self._close_text() + self._close_call()
        status = _status(self._finish)
        response = self.shell.build(self.output, status, response_usage(usage))
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        return out + self._event(kind, {"response": response}), response

    def failed(self, error: Mapping[str, Any]) -> bytes:
        inner = error.get("error")
        detail: Mapping[str, Any] = inner if isinstance(inner, Mapping) else error
        problem = {"code": detail.get("code") or "server_error", "message": detail.get("message") or "failed"}
        response = self.shell.build(self.output, "failed", None, error=problem)
        return self._event("response.failed", {"response": response})
