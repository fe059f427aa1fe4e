"""Per-request decisions and the verdict header across modes and attempts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.toolcalls import Action, Mode, ToolGuard, prepare
from tests.toolcalls.helpers import call, completion, request

GOOD = completion(tool_calls=[call("get_weather", '{"city": "Paris"}')], finish="tool_calls")
SYNTAX = completion(tool_calls=[call("get_weather", "{'city': 'Paris'}")], finish="tool_calls")
BAD = completion(tool_calls=[call("get_weather", '{"city": "Paris", "unit": "k"}')], finish="tool_calls")
TEXT_CALL = completion(content='<|python_start|>[get_weather(city="Paris")]<|python_end|>')


def guard(mode: str = "retry", reasks: int = 1, **body: object) -> ToolGuard:
    return ToolGuard(prepare(request(**body)), mode, reasks, new_id=lambda: "call_new")


def test_valid_is_delivered_unchanged() -> None:
    g = guard()
    decision = g.check(GOOD)
    assert decision.action is Action.DELIVER and decision.body == GOOD
    assert g.verdict == "valid" and g.errors == [()]


@pytest.mark.parametrize("answer", [SYNTAX, TEXT_CALL])
def test_repaired(answer: dict[str, Any]) -> None:
    before = copy.deepcopy(answer)
    g = guard()
    decision = g.check(answer)
    assert decision.action is Action.DELIVER and g.verdict == "repaired"
    choice = decision.body["choices"][0]
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris"}'
    assert choice["finish_reason"] in ("tool_calls", "stop")
    assert answer == before


def test_retry_then_valid() -> None:
    g = guard()
    assert g.check(BAD).action is Action.REASK
    assert g.verdict == "pending"
    assert g.check(GOOD).action is Action.DELIVER
    assert g.verdict == "retried:1"
    assert g.errors == [("tool_calls[0] (get_weather): $.unit: 'k' is not one of ['c', 'f']",), ()]


def test_retry_budget_then_fail_with_502() -> None:
    g = guard(reasks=2)
    assert [g.check(BAD).action for _ in range(3)] == [Action.REASK, Action.REASK, Action.FAIL]
    assert g.verdict == "invalid"
    error = g.failure()
    assert error.status == 502 and error.code == "tool_call_validation_failed"
    assert len(error.body()["error"]["validation_errors"]) == 3
    assert "'k' is not one of" in error.message


def test_no_reask_after_a_length_cut() -> None:
    cut = completion(tool_calls=[call("get_weather", '{"city": "Par')], finish="length")
    g = guard()
    assert g.check(cut).action is Action.FAIL
    assert g.verdict == "invalid"


def test_repair_mode_never_reasks() -> None:
    g = guard("repair")
    assert g.check(BAD).action is Action.FAIL
    assert guard("repair").check(SYNTAX).action is Action.DELIVER


def test_report_mode_delivers_as_received_and_flags() -> None:
    g = guard("report")
    decision = g.check(SYNTAX)
    assert decision.action is Action.DELIVER and decision.body == SYNTAX
    assert g.verdict == "invalid" and g.errors[0]
    g = guard("report")
    assert g.check(GOOD).action is Action.DELIVER and g.verdict == "valid"


def test_off_and_not_applicable() -> None:
    g = guard("off")
    assert g.check(SYNTAX).body == SYNTAX and g.verdict == "not_applicable" and g.attempts == []
    g = ToolGuard(prepare({"messages": []}))
    assert g.check(GOOD).action is Action.DELIVER and g.verdict == "not_applicable"
    assert ToolGuard(None, Mode.RETRY).verdict == "not_applicable"
