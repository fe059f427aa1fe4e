"""Answers from every dialect come out as the same plain OpenAI shapes."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.providers.openai.normalise import Malformed, Shape, normalise_chunk, normalise_completion
from gateway.providers.together import together_logprobs

PLAIN = Shape()
TOGETHER = Shape(logprobs=together_logprobs)


def completion(**choice: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"} | choice],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4, "estimated_cost": 0.1},
        "x_groq": {"id": "req_1"},
        "warnings": ["w"],
        "seed": 7,
    }


def test_extras_are_dropped() -> None:
    raw = completion(seed=1, stop_reason=None, message={"role": "assistant", "content": "Hi", "reasoning": "hmm"})
    assert normalise_completion(raw, PLAIN) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "system_fingerprint": "fp_1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop", "logprobs": None}
        ],
    }


@pytest.mark.parametrize(
    ("raw", "openai"), [("eos", "stop"), ("tool_call", "tool_calls"), ("", None), ("length", "length")]
)
def test_finish_reasons(raw: str, openai: str | None) -> None:
    body = normalise_completion(completion(finish_reason=raw), PLAIN)
    assert body["choices"][0]["finish_reason"] == openai


def test_tool_calls_are_normalised() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}, "extra": 1},
            {"function": {"name": "g", "arguments": {"b": 2}}},
        ],
    }
    calls = normalise_completion(completion(message=message, finish_reason="tool_calls"), PLAIN)["choices"][0][
        "message"
    ]["tool_calls"]
    assert calls[0] == {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    assert calls[1]["id"].startswith("call_") and calls[1]["function"] == {"name": "g", "arguments": '{"b":2}'}


@pytest.mark.parametrize(
    "raw",
    [
        [],
        {"choices": "x"},
        {"choices": []},
        {"choices": [1]},
        {"choices": [{"message": "hi"}]},
        {"choices": [{"message": {"tool_calls": [{"name": "f"}]}}]},
        {"choices": [{"message": {}, "finish_reason": 3}]},
    ],
)
def test_wrong_shapes_are_malformed(raw: Any) -> None:
    with pytest.raises(Malformed):
        normalise_completion(raw, PLAIN)


def test_chunks() -> None:
    raw = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "x_groq": {"id": "req"},
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "Hi", "reasoning": "r", "token_id": 5, "tool_calls": None},
                "finish_reason": None,
                "seed": 1,
            }
        ],
    }
    assert normalise_chunk(raw, PLAIN) == {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None, "logprobs": None}
        ],
    }


def test_usage_only_chunks_are_not_passed_on() -> None:
    assert normalise_chunk({"id": "c", "choices": [], "usage": {"prompt_tokens": 1}}, PLAIN) is None
    assert normalise_chunk({"id": "c", "choices": None}, PLAIN) is None


def test_streamed_tool_call_deltas() -> None:
    raw = {
        "choices": [
            {
                "delta": {
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}},
                        {"function": {"arguments": '{"a"'}},
                    ]
                },
                "finish_reason": None,
            }
        ]
    }
    chunk = normalise_chunk(raw, PLAIN)
    assert chunk is not None
    assert chunk["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}},
        {"index": 1, "function": {"arguments": '{"a"'}},
    ]


def test_together_logprobs() -> None:
    whole = completion(logprobs={"tokens": ["Hi", "!"], "token_logprobs": [-0.1, -0.2], "top_logprobs": [{"Hi": -0.1}]})
    content = normalise_completion(whole, TOGETHER)["choices"][0]["logprobs"]["content"]
    assert content[0] == {
        "token": "Hi",
        "logprob": -0.1,
        "bytes": [72, 105],
        "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105]}],
    }
    assert content[1]["top_logprobs"] == []
    chunk = normalise_chunk({"choices": [{"delta": {"content": "Hi"}, "logprobs": -0.5}]}, TOGETHER)
    assert chunk is not None
    assert chunk["choices"][0]["logprobs"] == {
        "content": [{"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}]
    }
    openai_style: dict[str, Any] = {"content": []}
    assert together_logprobs(openai_style, {}) is openai_style
    assert together_logprobs(None, {}) is None


def _text_chunk(**delta: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
    }


@pytest.mark.parametrize(
    "delta", [{"content": "Llamas"}, {"role": "assistant", "content": ""}, {}, {"role": "assistant"}]
)
def test_a_plain_text_chunk_comes_out_as_a_rebuilt_one_would(delta: dict[str, Any]) -> None:
    """Text chunks already in OpenAI's shape are passed on as they are (the hot path);
    what goes out is what rebuilding them gives (a falsy `system_fingerprint`, which the
    rebuilt chunk leaves out, sends this one down the rebuilding path)."""
    plain = normalise_chunk(_text_chunk(**delta), PLAIN)
    rebuilt = normalise_chunk(_text_chunk(**delta) | {"system_fingerprint": ""}, PLAIN)
    assert plain == rebuilt == _text_chunk(**delta)


@pytest.mark.parametrize(
    ("change", "expected_choice"),
    [
        # A finish reason a dialect renames, logprobs, an extra field in the choice or
        # the delta, tool calls: each is rebuilt, never passed on as sent.
        ({"finish_reason": "eos"}, {"finish_reason": "stop"}),
        ({"logprobs": {"content": []}}, {"logprobs": {"content": []}}),
        ({"stop_reason": None}, {}),
        ({"delta": {"content": "x", "reasoning_content": "hmm"}}, {"delta": {"content": "x"}}),
    ],
)
def test_chunks_that_are_not_plain_are_rebuilt(change: dict[str, Any], expected_choice: dict[str, Any]) -> None:
    raw = _text_chunk(content="x")
    raw["choices"][0] |= change
    out = normalise_chunk(raw, Shape(finish_reasons={"eos": "stop"}))
    assert out is not None and out is not raw
    expected = {"index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None} | expected_choice
    assert out["choices"] == [expected]


def test_envelope_extras_send_a_chunk_down_the_rebuilding_path() -> None:
    raw = _text_chunk(content="x") | {"usage": None, "x_groq": {"id": "req_1"}}
    out = normalise_chunk(raw, PLAIN)
    assert out == _text_chunk(content="x")
