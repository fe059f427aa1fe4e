"""Per-request bookkeeping: check each attempt's answer, decide deliver / re-ask / fail,
and keep the verdict (`x-corral-tool-calls` style header value) and per-attempt errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import Code, GatewayError, error
from gateway.toolcalls.contract import Contract
from gateway.toolcalls.fence import fenced_check
from gateway.toolcalls.model import RETRIED, Action, Attempt, Mode, new_call_id
from gateway.toolcalls.reask import reask_messages, structured_constraint
from gateway.toolcalls.validate import check_message

__all__ = ["Decision", "ToolGuard"]

#: Finish reasons after which asking again would only hit the same wall.
HOPELESS = frozenset({"length", "content_filter"})


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one attempt's answer."""

    action: Action
    #: The body to send to the client (meaningful when `action` is DELIVER).
    body: dict[str, Any]
    #: The check of this attempt; None when checks are off or not applicable.
    attempt: Attempt | None = None


class ToolGuard:
    """Checks every attempt of one request.

    Usage::

        guard = ToolGuard(prepare(body), mode="retry", reasks=1)
        decision = guard.check(completion.body)
        if decision.action is Action.REASK:
            messages = guard.reask_messages(body["messages"], decision.attempt)
        headers["x-corral-tool-calls"] = guard.verdict

    Parameters: `contract` from `prepare()` (None: nothing to check); `mode` (off,
    report, repair, retry); `reasks`, the most re-asks in retry mode; `new_id`, the
    tool-call id factory for calls recognised in text.
    """

    def __init__(
        self,
        contract: Contract | None,
        mode: Mode | str = Mode.RETRY,
        reasks: int = 1,
        new_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.contract = contract
        self.mode = Mode(mode)
        self.reasks = reasks
        self.new_id = new_id
        self.attempts: list[Attempt] = []
        #: Where each attempt was answered ("provider/model_id"), for the failure report.
        self.where: list[str] = []
        self._verdict = "pending"
        #: Index of the first attempt on the current deployment: each gets its own re-asks.
        self._base = 0
        self._where = ""

    def next_deployment(self, where: str) -> None:
        """Falling over to another deployment: it gets a first try and its own re-asks."""
        self._base = len(self.attempts)
        self._where = where

    @property
    def active(self) -> bool:
        return self.contract is not None and self.mode is not Mode.OFF

    @property
    def verdict(self) -> str:
        """`valid`, `repaired`, `retried:N`, `invalid`, or `not_applicable`."""
        return self._verdict if self.active else "not_applicable"

    @property
    def errors(self) -> list[tuple[str, ...]]:
        """Validation errors per attempt (empty tuple for an attempt that was valid)."""
        return [attempt.errors for attempt in self.attempts]

    def check(self, body: Mapping[str, Any]) -> Decision:
        """Check a non-streamed `chat.completion` body (its first choice), on this thread."""
        if self.contract is None or self.mode is Mode.OFF or not body.get("choices"):
            return Decision(Action.DELIVER, dict(body))
        choice = body["choices"][0]
        attempt = check_message(
            self.contract,
            choice.get("message") or {},
            choice.get("finish_reason"),
            repair=self.mode is not Mode.REPORT,
            new_id=self.new_id,
        )
        return self._decide(body, attempt)

    async def acheck(self, body: Mapping[str, Any]) -> Decision:
        """As `check`, but a run that could be expensive goes off the event loop under the
        CPU budget (`fence.py`); the serving path uses this one."""
        if self.contract is None or self.mode is Mode.OFF or not body.get("choices"):
            return Decision(Action.DELIVER, dict(body))
        choice = body["choices"][0]
        attempt = await fenced_check(
            self.contract,
            choice.get("message") or {},
            choice.get("finish_reason"),
            repair=self.mode is not Mode.REPORT,
            new_id=self.new_id,
        )
        return self._decide(body, attempt)

    def _decide(self, body: Mapping[str, Any], attempt: Attempt) -> Decision:
        choice = body["choices"][0]
        action = self.record(attempt)
        if action is not Action.DELIVER or self.mode is Mode.REPORT or not attempt.changed:
            return Decision(action, dict(body), attempt)
        fixed = {**choice, "message": attempt.message, "finish_reason": attempt.finish_reason}
        return Decision(action, {**body, "choices": [fixed, *body["choices"][1:]]}, attempt)

    def record(self, attempt: Attempt) -> Action:
        """Count an attempt, set the verdict, and say what to do next."""
        self.attempts.append(attempt)
        self.where.append(self._where)
        retried = len(self.attempts) - 1
        retried_here = len(self.attempts) - 1 - self._base
        if attempt.valid:
            self._verdict = f"{RETRIED}{retried}" if retried else ("repaired" if attempt.changed else "valid")
            return Action.DELIVER
        if self.mode is Mode.REPORT:
            self._verdict = "invalid"
            return Action.DELIVER
        hopeless = attempt.finish_reason in HOPELESS or attempt.over_budget
        if self.mode is Mode.RETRY and retried_here < self.reasks and not hopeless:
            return Action.REASK
        self._verdict = "invalid"
        return Action.FAIL

    def reask_messages(self, messages: Sequence[Mapping[str, Any]], attempt: Attempt) -> list[dict[str, Any]]:
        """The conversation for the re-ask: `messages` + the invalid reply + the errors."""
        return reask_messages(messages, attempt)

    def constraint(self, attempt: Attempt | None = None) -> dict[str, Any] | None:
        """Request fields that make a vLLM answer valid by construction (see `reask`)."""
        return structured_constraint(self.contract, attempt) if self.contract is not None else None

    def failure(self) -> GatewayError:
        """The 502 to return when the answer could not be made valid."""
        last = self.attempts[-1].errors if self.attempts else ()
        summary = "; ".join(last[:3]) or "no valid answer"
        return error(
            Code.TOOL_CALL_VALIDATION_FAILED,
            f"the model's reply did not validate after {len(self.attempts)} attempt(s): {summary}",
            extra={
                "validation_errors": [list(errors) for errors in self.errors],
                "attempts": [
                    {"deployment": where, "errors": list(attempt.errors)}
                    for where, attempt in zip(self.where, self.attempts, strict=True)
                ],
            },
        )
