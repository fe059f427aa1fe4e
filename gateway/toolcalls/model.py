"""The values the tool-call checks produce: per call, per attempt, and what to do next."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

import orjson

__all__ = ["Action", "Attempt", "CallCheck", "Mode", "Source", "new_call_id", "to_json"]

Source = Literal["tool_calls", "pythonic", "json", "tag"]


#: Every verdict `ToolGuard.verdict` gives (the `x-corral-tool-validation` header), besides
#: RETRIED + the number of re-asks. The SDK's `ToolValidationOutcome` lists the same
#: (tests/sdk/test_sdk_contract.py holds them equal).
VERDICTS = ("valid", "repaired", "invalid", "not_applicable")
RETRIED = "retried:"


class Mode(StrEnum):
    """How hard the gateway works for a valid answer (policy `tool_calls.mode`, or the
    request's `corral.tool_validation`)."""

    #: No checks; the answer passes untouched and the verdict is `not_applicable`.
    OFF = "off"
    #: Check and report the verdict, but deliver the answer exactly as received.
    REPORT = "report"
    #: Recognise text calls and repair syntax; fail when that is not enough.
    REPAIR = "repair"
    #: As REPAIR, then re-ask the same deployment with the validator's errors.
    RETRY = "retry"


class Action(StrEnum):
    DELIVER = "deliver"
    REASK = "reask"
    FAIL = "fail"


def to_json(value: Any) -> str | None:
    """`value` as compact JSON text, or None when JSON cannot carry it faithfully (a lone
    surrogate, an integer beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return None


def new_call_id() -> str:
    """A tool-call id in OpenAI's style, for calls recognised in text."""
    return f"call_{os.urandom(12).hex()}"


@dataclass(frozen=True, slots=True)
class CallCheck:
    """One tool call: as the model produced it, as it would be delivered, and what is wrong."""

    index: int
    id: str
    name: str
    #: The arguments text as the model produced it.
    raw_arguments: str
    #: The arguments text to deliver: `raw_arguments` itself unless a repair changed it.
    arguments: str
    errors: tuple[str, ...] = ()
    repairs: tuple[str, ...] = ()
    source: Source = "tool_calls"
    #: The (possibly repaired) arguments are a JSON object, so the call can be replayed
    #: to the model as a structured tool call in a re-ask.
    parsed: bool = True
    #: The name is one of the request's functions.
    declared: bool = True
    #: Already sent to the client (streaming only).
    delivered: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors

    def label(self) -> str:
        return f"tool_calls[{self.index}] ({self.name})"

    @property
    def replayable(self) -> bool:
        """Can be shown back to the model as a structured tool call in a re-ask."""
        return self.parsed and self.declared

    def as_tool_call(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True, slots=True)
class Attempt:
    """The check of one answer from one backend attempt."""

    #: The assistant message as the model sent it.
    original: dict[str, Any]
    #: The assistant message with recognised and repaired calls (equal to `original`
    #: when nothing was changed).
    message: dict[str, Any]
    finish_reason: str | None
    calls: tuple[CallCheck, ...] = ()
    #: Everything still wrong after repair, as short `where: what` strings.
    errors: tuple[str, ...] = ()
    #: What repair changed, as short notes.
    repairs: tuple[str, ...] = ()
    #: Errors about the whole reply (tool_choice, parallel_tool_calls, response_format).
    reply_errors: tuple[str, ...] = field(default=())
    #: The check was stopped by its CPU budget (gateway/toolcalls/fence.py): the answer is
    #: unverified, and asking again would only spend the budget again.
    over_budget: bool = False

    @property
    def valid(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return bool(self.repairs)
