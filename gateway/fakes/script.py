"""How a test (or a demo) tells a fake what to do with the next request.

Three layers, later wins: the server's `script.default`; one-shot behaviours queued
with `script.push(...)` (consumed in order, one per request); and a per-request
directive, either an `x-fake-behaviour` header holding JSON or, because headers do not
pass through the gateway, a `[[fake: {...}]]` marker in the last user message.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import orjson

FakeErrorKind = Literal[
    "rate_limited",
    "overloaded",
    "server_error",
    "bad_request",
    "auth",
    "context_too_long",
    "model_gone",
    "malformed_body",
]
ToolArgs = Literal["valid", "malformed", "schema_invalid"]
ToolFormat = Literal["native", "pythonic", "json_in_content"]

DIRECTIVE = re.compile(r"\[\[fake:\s*(\{.*?\})\s*\]\]", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Behaviour:
    #: Delay before the status line (non-streamed: before the whole body).
    latency_ms: float = 0.0
    #: Output pacing; None answers as fast as possible.
    tokens_per_s: float | None = None
    #: Output length in tokens when `text` is not given.
    completion_tokens: int = 16
    text: str | None = None
    error: FakeErrorKind | None = None
    retry_after_s: float | None = None
    #: Accept the request and never answer (until the client gives up).
    hang: bool = False
    #: Streams only: drop the connection after this many content chunks.
    disconnect_after_chunks: int | None = None
    #: Streams only: send the provider's in-stream error after this many chunks.
    mid_stream_error_after: int | None = None
    tool_args: ToolArgs = "valid"
    tool_format: ToolFormat = "native"
    #: Native format: how many calls the reply makes (models do call tools in parallel
    #: when the request does not say `parallel_tool_calls: false` to the backend).
    tool_calls: int = 1
    #: Leave usage out of the answer (exercises our estimation).
    omit_usage: bool = False
    #: A scripted slow tail (a test knob, not a provider rule): every `tail_every`-th chat
    #: request this fake receives waits `tail_latency_ms` instead of `latency_ms`.
    tail_every: int | None = None
    tail_latency_ms: float = 0.0

    def latency_for(self, n: int) -> float:
        """The delay before the status line of the `n`-th (1-based) chat request."""
        if self.tail_every and n % self.tail_every == 0:
            return self.tail_latency_ms
        return self.latency_ms

    def merged(self, overrides: dict[str, Any]) -> Behaviour:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown fake behaviour field(s): {sorted(unknown)}")
        return replace(self, **overrides)


@dataclass(slots=True)
class Script:
    default: Behaviour = field(default_factory=Behaviour)
    _queue: deque[Behaviour] = field(default_factory=deque)

    def push(self, behaviour: Behaviour, times: int = 1) -> None:
        self._queue.extend([behaviour] * times)

    def clear(self) -> None:
        self._queue.clear()
        self.default = Behaviour()

    def next(self, header: str | None, body: dict[str, Any] | None) -> Behaviour:
        behaviour = self._queue.popleft() if self._queue else self.default
        overrides: dict[str, Any] = {}
        directive = _directive_in(body)
        if directive:
            overrides.update(directive)
        if header:
            overrides.update(orjson.loads(header))
        return behaviour.merged(overrides) if overrides else behaviour


def _directive_in(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The `[[fake: {...}]]` directive in the last user message, if any."""
    if not isinstance(body, dict):
        return None
    text = last_user_text(body)
    match = DIRECTIVE.search(text) if text else None
    if not match:
        return None
    parsed = orjson.loads(match.group(1))
    return parsed if isinstance(parsed, dict) else None


def last_user_text(body: dict[str, Any]) -> str:
    """Text of the last user turn in an OpenAI (`messages[].content`) or Converse body."""
    for message in reversed(body.get("messages") or []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""
