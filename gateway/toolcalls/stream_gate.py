"""An incremental gate between an upstream stream and the client.

Feed it upstream `chat.completion.chunk` dicts; it returns the chunks to send now.
Content passes through live. Tool-call deltas are held until the call is complete
(the next call starts, or the stream ends), then checked (and repaired) and sent as
two well-formed deltas: id/type/name, then the whole arguments. Calls go out in order
and only while every earlier call went out, and not at all before the end when
parallel_tool_calls is false (a second call would make the first one wrong). Content
that starts like a tool call written as text (`[`, `{`, `<|python_start|>`,
`<function=`, a code fence) is held and converted at the end; content for a
response_format is held whole and checked at the end.

`finish()` (`settle()` on the serving path: an expensive check goes off the event loop,
see fence.py) checks the whole reply exactly as the non-streamed path does and returns
the closing chunks, or says a re-ask is needed; `next()` gives the gate for the
re-asked stream, which continues the call numbering and the response id.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.toolcalls.calls import check_call
from gateway.toolcalls.fence import fenced_check, runs_inline
from gateway.toolcalls.guard import ToolGuard
from gateway.toolcalls.model import Action, Attempt, CallCheck, Mode
from gateway.toolcalls.recognise import may_start_calls
from gateway.toolcalls.validate import check_message

__all__ = ["GateEnd", "StreamGate"]

#: Held text this long that still starts like a call is taken to be one (every
#: non-call start is ruled out within a few characters).
_DECIDED_AFTER = 64
_ENVELOPE_KEYS = ("id", "object", "created", "model", "system_fingerprint")


@dataclass(frozen=True, slots=True)
class GateEnd:
    """How a stream attempt ended: DELIVER (send `chunks`, then close), REASK (send
    nothing more; re-ask and feed `gate.next()`), or FAIL (send an error)."""

    action: Action
    chunks: list[dict[str, Any]]
    attempt: Attempt | None = None


@dataclass(slots=True)
class _Pending:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class StreamGate:
    """Usage: `gate = StreamGate(guard)`; `for chunk in upstream: send(gate.feed(chunk))`;
    `end = gate.finish()`. Parameters: `guard`, the request's `ToolGuard` (it records
    each attempt and holds the verdict); `previous`, the gate of the attempt being
    re-asked (use `previous.next()`)."""

    def __init__(self, guard: ToolGuard, previous: StreamGate | None = None) -> None:
        self.guard = guard
        self.contract = guard.contract
        self.live = not guard.active or guard.mode is Mode.REPORT
        self.offset: int = previous.offset + previous.emitted if previous else 0
        self.envelope: dict[str, Any] = dict(previous.envelope) if previous else {}
        self.role_sent: bool = previous.role_sent if previous else False
        self.emitted: int = 0
        self.finish_reason: str | None = None
        self._hold_all = self.contract is not None and self.contract.output_kind is not None
        self._state: Literal["undecided", "held", "live"] = "held" if self._hold_all else "undecided"
        self._sent_text: list[str] = []
        self._held_text: list[str] = []
        self._pending: dict[int, _Pending] = {}
        self._checked: list[CallCheck] = []

    def next(self) -> StreamGate:
        """The gate for the re-asked stream."""
        return StreamGate(self.guard, self)

    def feed(self, chunk: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunks to send now for one upstream chunk."""
        choices = chunk.get("choices")
        if not choices:
            return []
        if not self.envelope:
            self.envelope = {key: chunk[key] for key in _ENVELOPE_KEYS if key in chunk}
        delta = choices[0].get("delta") or {}
        if choices[0].get("finish_reason"):
            self.finish_reason = choices[0]["finish_reason"]
        if self.live:
            if self.guard.active:
                self._remember(delta)
            return [chunk]
        text = delta.get("content")
        shown = self._content(text) if text else text
        ready = self._tool_deltas(delta.get("tool_calls") or ())
        if self._unchanged(chunk, delta, text, shown):
            self.role_sent = self.role_sent or "role" in delta
            return [chunk]
        return self._rebuilt(delta, shown, ready)

    def finish(self) -> GateEnd:
        """Check the whole reply on this thread; the closing chunks or the re-ask / fail verdict."""
        if self.contract is None or not self.guard.active:
            return GateEnd(Action.DELIVER, [])
        message, repair, read_text_calls = self._final()
        checked = check_message(
            self.contract,
            message,
            self.finish_reason,
            repair=repair,
            new_id=self.guard.new_id,
            prior_calls=self.offset,
            read_text_calls=read_text_calls,
        )
        return self._end(checked)

    async def settle(self) -> GateEnd:
        """As `finish`, with a check that could be expensive run off the event loop under
        the CPU budget (`fence.py`); the serving path uses this one."""
        if self.contract is None or not self.guard.active:
            return GateEnd(Action.DELIVER, [])
        message, repair, read_text_calls = self._final()
        checked = await fenced_check(
            self.contract,
            message,
            self.finish_reason,
            repair=repair,
            new_id=self.guard.new_id,
            prior_calls=self.offset,
            read_text_calls=read_text_calls,
        )
        return self._end(checked)

    def _end(self, checked: Attempt) -> GateEnd:
        calls = tuple(dataclasses.replace(c, delivered=c.index < self.emitted) for c in checked.calls)
        attempt = dataclasses.replace(checked, calls=calls)
        action = self.guard.record(attempt)
        if action is not Action.DELIVER or self.live:
            return GateEnd(action, [], attempt)
        return GateEnd(action, self._closing(attempt), attempt)

    def _remember(self, delta: dict[str, Any]) -> None:
        if delta.get("content"):
            self._sent_text.append(delta["content"])
        self._tool_deltas(delta.get("tool_calls") or ())

    def _content(self, text: str) -> str | None:
        if self._state == "live":
            self._sent_text.append(text)
            return text
        self._held_text.append(text)
        if self._state == "held":
            return None
        held = "".join(self._held_text)
        if self.contract is not None and self.contract.calls_allowed and may_start_calls(held):
            if len(held.strip()) >= _DECIDED_AFTER:
                self._state = "held"
            return None
        self._state = "live"
        self._held_text.clear()
        self._sent_text.append(held)
        return held

    def _tool_deltas(self, deltas: Any) -> list[CallCheck]:
        ready: list[CallCheck] = []
        for delta in deltas:
            index = delta.get("index", 0)
            if index not in self._pending:
                ready.extend(self._complete(below=index))
                self._pending[index] = _Pending()
            pending = self._pending[index]
            pending.id = pending.id or delta.get("id") or ""
            function = delta.get("function") or {}
            pending.name = pending.name or function.get("name") or ""
            if function.get("arguments"):
                pending.arguments.append(function["arguments"])
        return ready

    def _complete(self, below: int | None = None) -> list[CallCheck]:
        """Check the pending calls below `below` (all, at the end, when None); return
        those that may go out now (none at the end: `_closing` sends the rest)."""
        ready = []
        for index in sorted(self._pending):
            if below is not None and index >= below:
                break
            pending = self._pending.pop(index)
            pending.id = pending.id or self.guard.new_id()
            self._checked.append(self._check(pending))
            if below is not None and self._may_send(self._checked[-1]):
                ready.append(self._checked[-1])
                self.emitted += 1
        return ready

    def _check(self, pending: _Pending) -> CallCheck:
        assert self.contract is not None
        raw = "".join(pending.arguments)
        allowed = self.contract.allowed_names()
        position = len(self._checked)
        call = {"function": {"name": pending.name, "arguments": raw}}
        if not runs_inline(self.contract, {"tool_calls": [call]}):
            # Too costly for the event loop: held, and checked with the whole reply, off
            # the loop under the CPU budget (fence.py). Later calls wait behind it.
            return CallCheck(position, pending.id, pending.name, raw, raw, ("checked at the end",))
        return check_call(self.contract, position, pending.id, pending.name, raw, allowed=allowed, repair=not self.live)

    def _may_send(self, call: CallCheck) -> bool:
        if self.live or self.contract is None or not self.contract.parallel:
            return False
        return call.ok and self.emitted == len(self._checked) - 1

    def _unchanged(self, chunk: dict[str, Any], delta: dict[str, Any], text: str | None, shown: str | None) -> bool:
        return (
            shown == text
            and not delta.get("tool_calls")
            and not chunk["choices"][0].get("finish_reason")
            and chunk.get("id") == self.envelope.get("id")
            and not ("role" in delta and self.role_sent)
        )

    def _rebuilt(self, delta: dict[str, Any], shown: str | None, ready: list[CallCheck]) -> list[dict[str, Any]]:
        out = []
        head: dict[str, Any] = {}
        if "role" in delta and not self.role_sent:
            head["role"] = delta["role"]
            self.role_sent = True
        if shown:
            head["content"] = shown
        if head:
            out.append(self._chunk(head))
        for call in ready:
            out.extend(self._call_chunks(call))
        return out

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return {**self.envelope, "object": "chat.completion.chunk", "choices": [choice]}

    def _call_chunks(self, call: CallCheck) -> list[dict[str, Any]]:
        index = self.offset + call.index
        head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        body = {"index": index, "function": {"arguments": call.arguments}}
        return [self._chunk({"tool_calls": [head]}), self._chunk({"tool_calls": [body]})]

    def _final(self) -> tuple[dict[str, Any], bool, bool]:
        """The whole reply as one message, and how to check it (repair, read text calls)."""
        self._complete()
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._sent_text + self._held_text) or None}
        if self._checked:
            message["tool_calls"] = [self._raw(call) for call in self._checked]
        return message, not self.live, self.live or not self._sent_text

    @staticmethod
    def _raw(call: CallCheck) -> dict[str, Any]:
        """The call as the model sent it (the final check repeats any repair)."""
        return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.raw_arguments}}

    def _closing(self, attempt: Attempt) -> list[dict[str, Any]]:
        out = []
        content = attempt.message.get("content")
        if self._held_text and content:
            head = {"content": content} if self.role_sent else {"role": "assistant", "content": content}
            out.append(self._chunk(head))
            self.role_sent = True
        for call in attempt.calls[self.emitted :]:
            out.extend(self._call_chunks(call))
        self.emitted = len(attempt.calls)
        finish = "tool_calls" if self.offset + len(attempt.calls) else (attempt.finish_reason or "stop")
        out.append(self._chunk({}, finish))
        return out
