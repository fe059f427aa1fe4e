"""The corpus of real-looking bad tool calls (corpus.yaml): every case reaches its expected
outcome, repaired calls carry exactly the intended arguments, valid calls are never altered.

Run `python -m tests.toolcalls.test_corpus` to print the figures.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import pytest

from gateway.toolcalls import Action, Decision, ToolGuard, prepare
from gateway.toolcalls.reask import CLOSING
from tests.toolcalls.corpus_data import answer_for, cases, request_for

OUTCOMES = ("valid", "valid_after_repair", "needs_reask", "unrecoverable")


def outcome(decision: Decision, guard: ToolGuard) -> str:
    if decision.action is Action.REASK:
        return "needs_reask"
    if decision.action is Action.FAIL:
        return "unrecoverable"
    return "valid_after_repair" if guard.verdict == "repaired" else guard.verdict


def run(case: dict[str, Any]) -> tuple[str, Decision, ToolGuard]:
    guard = ToolGuard(prepare(request_for(case)), "retry", reasks=1, new_id=lambda: "call_new")
    decision = guard.check(answer_for(case))
    return outcome(decision, guard), decision, guard


def delivered_arguments(decision: Decision) -> list[Any]:
    calls = decision.body["choices"][0]["message"].get("tool_calls") or []
    return [orjson.loads(c["function"]["arguments"]) for c in calls]


def figures() -> dict[str, Any]:
    counts: Counter[str] = Counter()
    altered = 0
    for case in cases():
        got, decision, _ = run(case)
        counts[got] += 1
        altered += case["expect"] == "valid" and decision.body != answer_for(case)
    bad = sum(counts[name] for name in OUTCOMES[1:])
    return {
        "cases": len(cases()),
        "bad": bad,
        **{name: counts[name] for name in OUTCOMES},
        "share_valid_by_repair_alone": round(counts["valid_after_repair"] / bad, 3),
        "share_sent_to_reask": round(counts["needs_reask"] / bad, 3),
        "valid_calls_altered": altered,
    }


def test_corpus_is_large_and_covers_every_outcome() -> None:
    found = Counter(case["expect"] for case in cases())
    assert sum(found[name] for name in OUTCOMES[1:]) >= 40
    assert set(found) == set(OUTCOMES)
    assert len({case["id"] for case in cases()}) == len(cases())


@pytest.mark.parametrize("case", cases(), ids=lambda case: case["id"])
def test_case(case: dict[str, Any]) -> None:
    got, decision, guard = run(case)
    assert got == case["expect"], guard.errors
    if got == "valid":
        assert decision.body == answer_for(case)
    if "arguments" in case:
        assert delivered_arguments(decision) == case["arguments"]
        assert decision.body["choices"][0]["message"]["content"] is None
    if "content_json" in case:
        assert orjson.loads(decision.body["choices"][0]["message"]["content"]) == case["content_json"]
    if got == "needs_reask":
        assert decision.attempt is not None and decision.attempt.errors
        messages = guard.reask_messages(request_for(case)["messages"], decision.attempt)
        assert messages[-1]["content"].endswith(CLOSING)
        answered = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
        assert answered == {c["id"] for c in messages[1].get("tool_calls", ())}


def test_figures() -> None:
    numbers = figures()
    print("\ncorpus figures:", numbers)
    assert numbers["valid_calls_altered"] == 0
    assert numbers["valid"] == sum(case["expect"] == "valid" for case in cases())


if __name__ == "__main__":
    for key, value in figures().items():
        print(f"{key}: {value}")
