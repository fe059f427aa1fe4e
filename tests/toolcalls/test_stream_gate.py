"""The stream gate: content live, calls held until complete and valid, re-ask verdicts."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.toolcalls import Action, GateEnd, StreamGate, ToolGuard, prepare
from gateway.toolcalls.recognise import may_start_calls, recognise
from tests.toolcalls.corpus_data import answer_for, cases, request_for
from tests.toolcalls.helpers import call_chunks, chunk, content_chunks, ids, request

ARGS = '{"city": "Paris", "unit": "c"}'
CUTS = [[], [1], [5, 6], [3, 9, 17], list(range(1, len(ARGS)))]


def gate(mode: str = "retry", **body: Any) -> StreamGate:
    generated = ids()
    return StreamGate(ToolGuard(prepare(request(**body)), mode, new_id=lambda: next(generated)))


def run(g: StreamGate, chunks: list[dict[str, Any]]) -> tuple[list[list[dict[str, Any]]], GateEnd]:
    return [g.feed(c) for c in chunks], g.finish()


def flat(outputs: list[list[dict[str, Any]]], end: GateEnd | None = None) -> list[dict[str, Any]]:
    out = [c for batch in outputs for c in batch]
    return out + (end.chunks if end else [])


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


def calls_of(chunks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Rebuild the tool calls a client would see, checking id/type/name come first."""
    calls: dict[int, dict[str, Any]] = {}
    for c in chunks:
        for delta in c["choices"][0]["delta"].get("tool_calls") or ():
            if delta["index"] not in calls:
                assert delta["id"] and delta["type"] == "function" and delta["function"]["name"]
                calls[delta["index"]] = {"id": delta["id"], "name": delta["function"]["name"], "arguments": ""}
            calls[delta["index"]]["arguments"] += delta["function"].get("arguments", "")
    return calls


def finish_of(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["finish_reason"] for c in chunks if c["choices"][0]["finish_reason"]]


@pytest.mark.parametrize("cuts", [[], [1, 2, 3], [4, 10], list(range(1, 40))])
def test_content_passes_live_unchanged(cuts: list[int]) -> None:
    text = "The weather in Paris is sunny, 21 degrees."
    upstream = content_chunks(text, cuts)
    g = gate()
    outputs = [g.feed(c) for c in upstream[:-1]]
    assert all(out == [c] and out[0] is c for out, c in zip(outputs, upstream[:-1], strict=True))
    last = g.feed(upstream[-1])
    end = g.finish()
    assert last == [] and end.action is Action.DELIVER
    assert finish_of(end.chunks) == ["stop"] and text_of(flat(outputs, end)) == text
    assert g.guard.verdict == "valid"


@pytest.mark.parametrize("cuts", CUTS)
def test_a_valid_call_is_sent_once_complete_and_unaltered(cuts: list[int]) -> None:
    g = gate()
    outputs, end = run(g, call_chunks([("call_a", "get_weather", ARGS)], cuts))
    assert calls_of(flat(outputs)) == {}
    assert end.action is Action.DELIVER
    assert calls_of(end.chunks) == {0: {"id": "call_a", "name": "get_weather", "arguments": ARGS}}
    assert finish_of(end.chunks) == ["tool_calls"]
    assert g.guard.verdict == "valid"


def test_first_call_goes_out_when_the_second_starts() -> None:
    upstream = call_chunks([("call_a", "get_weather", ARGS), ("call_b", "get_time", '{"tz": "CET"}')], [4])
    g = gate()
    second_starts = next(
        i for i, c in enumerate(upstream) if c["choices"][0]["delta"].get("tool_calls", [{}])[0].get("index") == 1
    )
    outputs = [g.feed(c) for c in upstream]
    assert calls_of(flat(outputs[:second_starts])) == {}
    assert calls_of(outputs[second_starts]) == {0: {"id": "call_a", "name": "get_weather", "arguments": ARGS}}
    end = g.finish()
    assert calls_of(end.chunks) == {1: {"id": "call_b", "name": "get_time", "arguments": '{"tz": "CET"}'}}


def test_parallel_false_holds_calls_to_the_end_and_reasks_on_two() -> None:
    upstream = call_chunks([("call_a", "get_weather", ARGS), ("call_b", "get_time", '{"tz": "CET"}')], [])
    g = gate(parallel_tool_calls=False)
    outputs, end = run(g, upstream)
    assert calls_of(flat(outputs)) == {}
    assert end.action is Action.REASK and end.attempt is not None
    assert end.attempt.errors == ("parallel_tool_calls is false but the reply makes 2 tool calls",)


@pytest.mark.parametrize("cuts", CUTS)
def test_syntax_broken_call_is_repaired_in_flight(cuts: list[int]) -> None:
    broken = "{'city': 'Paris', 'unit': 'c',}"
    g = gate()
    outputs, end = run(g, call_chunks([("call_a", "get_weather", broken)], cuts))
    assert calls_of(flat(outputs, end)) == {
        0: {"id": "call_a", "name": "get_weather", "arguments": '{"city":"Paris","unit":"c"}'}
    }
    assert g.guard.verdict == "repaired"


def test_bad_call_gives_a_reask_verdict_and_the_next_gate_continues() -> None:
    g = gate()
    outputs, end = run(g, call_chunks([("call_a", "get_weather", '{"city": "Paris", "unit": "k"}')], [7]))
    assert end.action is Action.REASK and end.chunks == [] and calls_of(flat(outputs)) == {}
    assert [c["choices"][0]["delta"].get("role") for c in flat(outputs)] == ["assistant"]
    assert end.attempt is not None and "'k' is not one of" in end.attempt.errors[0]
    messages = g.guard.reask_messages(request()["messages"], end.attempt)
    assert messages[-1]["role"] == "tool" and messages[-1]["tool_call_id"] == "call_a"
    again = g.next()
    outputs, end = run(again, call_chunks([("call_z", "get_weather", ARGS)], [3], chunk_id="chatcmpl-other"))
    sent = flat(outputs, end)
    assert {c["id"] for c in sent} == {"chatcmpl-s1"}
    assert all("role" not in c["choices"][0]["delta"] for c in sent)
    assert calls_of(sent) == {0: {"id": "call_z", "name": "get_weather", "arguments": ARGS}}
    assert g.guard.verdict == "retried:1"


def test_a_later_bad_call_after_a_sent_one_reasks_and_numbering_continues() -> None:
    upstream = call_chunks([("call_a", "get_time", '{"tz": "CET"}'), ("call_b", "get_weather", '{"city": 3}')], [])
    g = gate()
    outputs, end = run(g, upstream)
    assert calls_of(flat(outputs)) == {0: {"id": "call_a", "name": "get_time", "arguments": '{"tz": "CET"}'}}
    assert end.action is Action.REASK and end.attempt is not None
    assert [c.delivered for c in end.attempt.calls] == [True, False]
    messages = g.guard.reask_messages([], end.attempt)
    assert messages[1]["content"].startswith("Accepted")
    again = g.next()
    outputs, end = run(again, call_chunks([("call_c", "get_weather", ARGS)], []))
    assert calls_of(flat(outputs, end)) == {1: {"id": "call_c", "name": "get_weather", "arguments": ARGS}}


PYTHONIC = '<|python_start|>[get_weather(city="Paris", unit="c"), get_time(tz="CET")]<|python_end|>'


@pytest.mark.parametrize("cuts", [[], [1], [2, 16, 17], list(range(1, len(PYTHONIC)))])
def test_pythonic_content_is_held_and_converted_at_the_end(cuts: list[int]) -> None:
    g = gate()
    outputs, end = run(g, content_chunks(PYTHONIC, cuts))
    assert text_of(flat(outputs, end)) == ""
    assert calls_of(end.chunks) == {
        0: {"id": "call_gen1", "name": "get_weather", "arguments": ARGS.replace(" ", "")},
        1: {"id": "call_gen2", "name": "get_time", "arguments": '{"tz":"CET"}'},
    }
    assert finish_of(end.chunks) == ["tool_calls"] and g.guard.verdict == "repaired"


def test_text_that_only_looks_like_a_call_at_first_is_released() -> None:
    text = "[1] Paris is sunny today."
    g = gate()
    outputs, end = run(g, content_chunks(text, list(range(1, len(text)))))
    assert text_of(flat(outputs)) == text
    assert end.action is Action.DELIVER and finish_of(end.chunks) == ["stop"]


def test_held_text_that_is_not_a_call_is_sent_at_the_end() -> None:
    text = '{"name": "Alice"}'
    g = gate()
    outputs, end = run(g, content_chunks(text, [3, 8]))
    assert text_of(flat(outputs)) == ""
    assert text_of(end.chunks) == text and finish_of(end.chunks) == ["stop"]


def test_response_format_content_is_held_checked_and_reasked() -> None:
    spec = {"name": "a", "schema": {"type": "object", "required": ["answer"]}}
    body: dict[str, Any] = {"tools": None, "response_format": {"type": "json_schema", "json_schema": spec}}
    good = gate(**body)
    outputs, end = run(good, content_chunks('{"answer": 4', [4]))
    assert text_of(flat(outputs)) == ""
    assert end.action is Action.REASK  # cut on a number: not repaired
    outputs, end = run(good.next(), content_chunks('{"answer": 42}', [4]))
    assert text_of(end.chunks) == '{"answer": 42}' and good.guard.verdict == "retried:1"


def test_report_mode_passes_everything_and_flags() -> None:
    g = gate("report")
    upstream = call_chunks([("call_a", "get_weather", '{"city": 1}')], [2])
    outputs, end = run(g, upstream)
    assert [out[0] for out in outputs] == upstream
    assert end.action is Action.DELIVER and end.chunks == [] and g.guard.verdict == "invalid"


def test_report_mode_flags_calls_written_as_text() -> None:
    g = gate("report")
    outputs, end = run(g, content_chunks(PYTHONIC, [5]))
    assert text_of(flat(outputs)) == PYTHONIC
    assert end.attempt is not None and "written as text (pythonic)" in end.attempt.errors[0]
    assert g.guard.verdict == "invalid"


def test_off_passes_everything() -> None:
    g = gate("off")
    upstream = call_chunks([("call_a", "get_weather", "{bad")], [])
    outputs, end = run(g, upstream)
    assert [out[0] for out in outputs] == upstream and end.chunks == [] and g.guard.verdict == "not_applicable"


def test_required_call_missing_in_a_stream_reasks() -> None:
    g = gate(tool_choice="required")
    outputs, end = run(g, content_chunks("I think it is sunny.", [5]))
    assert text_of(flat(outputs)) == "I think it is sunny."
    assert end.action is Action.REASK


def test_every_split_of_two_calls_gives_the_same_result() -> None:
    calls = [("call_a", "get_weather", ARGS), ("call_b", "get_time", '{"tz": "CET"}')]
    for cuts in itertools.combinations(range(1, 12), 2):
        g = gate()
        outputs, end = run(g, call_chunks(calls, list(cuts)))
        assert calls_of(flat(outputs, end)) == {
            0: {"id": "call_a", "name": "get_weather", "arguments": ARGS},
            1: {"id": "call_b", "name": "get_time", "arguments": '{"tz": "CET"}'},
        }


def test_chunks_without_choices_are_dropped() -> None:
    assert gate().feed({"id": "x", "choices": []}) == []
    assert chunk({})["choices"][0]["delta"] == {}


def _streamable(case: dict[str, Any]) -> bool:
    """Content that starts with prose goes out live, so calls hidden later in it cannot
    be taken back (a documented limit); every other corpus case must stream alike."""
    content = case.get("content")
    declared = [t["function"]["name"] for t in request_for(case).get("tools", ())]
    return content is None or may_start_calls(content[:64]) or recognise(content, declared) is None


def _upstream(case: dict[str, Any], cuts: list[int]) -> list[dict[str, Any]]:
    calls = [(f"call_{i}", c["name"], c["arguments"]) for i, c in enumerate(case.get("calls", ()))]
    if calls:
        return call_chunks(calls, cuts, case["finish"])
    return content_chunks(case.get("content") or "", cuts, case["finish"])


@settings(max_examples=300, deadline=None, database=None)
@given(st.sampled_from([case for case in cases() if _streamable(case)]), st.lists(st.integers(1, 120), max_size=6))
def test_streaming_reaches_the_same_answer_as_the_whole_reply(case: dict[str, Any], cuts: list[int]) -> None:
    whole_ids, stream_ids = ids(), ids()
    whole = ToolGuard(prepare(request_for(case)), "retry", new_id=lambda: next(whole_ids))
    decision = whole.check(answer_for(case))
    streamed = StreamGate(ToolGuard(prepare(request_for(case)), "retry", new_id=lambda: next(stream_ids)))
    outputs, end = run(streamed, _upstream(case, cuts))
    assert end.action is decision.action
    assert streamed.guard.verdict == whole.verdict
    if end.action is Action.DELIVER:
        message = decision.body["choices"][0]["message"]
        sent = flat(outputs, end)
        assert text_of(sent) == (message["content"] or "")
        expected = {i: {"id": c["id"], **c["function"]} for i, c in enumerate(message.get("tool_calls") or ())}
        assert calls_of(sent) == expected
