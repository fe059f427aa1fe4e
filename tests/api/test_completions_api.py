"""POST /v1/completions (OpenAI's legacy endpoint) with the official openai client's
`completions.create`, plain and streamed, and LiteLLM's `text_completion`, against the
running gateway on its fakes: what the client sees, and what each fake received."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai import OpenAI

from tests.api.conftest import SimulatedGateway

MODEL = "llama-4-maverick"
#: Backends serving Maverick in the simulated gateway (Bedrock's answers are checked through
#: the client only: its fake receives Converse, not a chat body).
BACKENDS = ["deepinfra", "fireworks", "bedrock", "vllm"]


def client(gateway: SimulatedGateway) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=20)


def only(provider: str) -> dict[str, Any]:
    return {"corral": {"providers": {"only": [provider]}}}


def sent(gateway: SimulatedGateway, provider: str) -> list[dict[str, Any]]:
    return [r.json for r in gateway.requests(provider) if isinstance(r.json, dict)]


@pytest.mark.parametrize("provider", BACKENDS)
def test_create_answers_a_text_completion_with_usage_and_headers(gateway: SimulatedGateway, provider: str) -> None:
    raw = client(gateway).completions.with_raw_response.create(
        model=MODEL, prompt="Say hello", max_tokens=32, temperature=0.2, stop=["\n\n"], extra_body=only(provider)
    )
    answer = raw.parse()
    assert answer.object == "text_completion" and answer.id.startswith("cmpl-")
    assert answer.model == MODEL
    (choice,) = answer.choices
    assert choice.index == 0 and choice.text and choice.finish_reason in ("stop", "length")
    assert choice.logprobs is None
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    assert raw.headers["x-corral-provider"] == provider
    assert Decimal(raw.headers["x-corral-cost-usd"]) > 0
    assert raw.headers["x-corral-request-id"] and raw.headers["x-corral-attempts"] == "1"
    if provider != "bedrock":
        (body,) = sent(gateway, provider)
        assert body["messages"] == [{"role": "user", "content": "Say hello"}]
        assert body.get("max_tokens", body.get("max_completion_tokens")) == 32
        assert body["temperature"] == 0.2 and body["stop"] == ["\n\n"]
        assert "prompt" not in body and "corral" not in body


def test_max_tokens_defaults_to_16_as_at_openai(gateway: SimulatedGateway) -> None:
    client(gateway).completions.create(model=MODEL, prompt="Say hello", extra_body=only("deepinfra"))
    (body,) = sent(gateway, "deepinfra")
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 16


def test_a_list_of_one_prompt_and_echo(gateway: SimulatedGateway) -> None:
    answer = client(gateway).completions.create(
        model=MODEL, prompt=["Say hello"], echo=True, max_tokens=32, extra_body=only("deepinfra")
    )
    (body,) = sent(gateway, "deepinfra")
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
    text = answer.choices[0].text
    assert text.startswith("Say hello") and len(text) > len("Say hello")


@pytest.mark.parametrize("provider", BACKENDS)
def test_stream_sends_text_completion_chunks_usage_and_done(gateway: SimulatedGateway, provider: str) -> None:
    stream = client(gateway).completions.create(
        model=MODEL,
        prompt="Tell me a story",
        max_tokens=48,
        stream=True,
        stream_options={"include_usage": True},
        extra_body=only(provider),
    )
    chunks = list(stream)
    assert all(c.object == "text_completion" and c.model == MODEL for c in chunks)
    assert len({c.id for c in chunks}) == 1
    texts = [c.choices[0].text for c in chunks if c.choices]
    assert len(texts) > 1 and "".join(texts)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes in (["stop"], ["length"])
    *_, last = chunks
    assert last.choices == [] and last.usage is not None and last.usage.completion_tokens > 0
    assert Decimal((last.model_extra or {})["x_corral"]["cost_usd"]) > 0


def test_stream_on_the_wire_ends_with_done_and_carries_the_headers(gateway: SimulatedGateway) -> None:
    body = {"model": MODEL, "prompt": "Hi", "stream": True, "echo": True, **only("fireworks")}
    with httpx.stream("POST", gateway.url + "/v1/completions", json=body, timeout=20) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["x-corral-provider"] == "fireworks"
        assert answer.headers["x-corral-cost-estimated"] == "true"
        frames = [line for line in answer.iter_lines() if line]
    assert frames[-1] == "data: [DONE]"
    first = orjson.loads(frames[0].removeprefix("data: "))
    assert first["choices"][0]["text"] == "Hi"  # echo: the prompt comes first
    assert not any('"usage"' in f for f in frames[:-1]), "no usage chunk unless include_usage is set"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"best_of": 3}, "best_of"),
        ({"logprobs": 1}, "logprobs"),
        ({"suffix": "end"}, "suffix"),
        ({"prompt": [1, 2, 3]}, "prompt"),
        ({"prompt": [[1, 2], [3]]}, "prompt"),
        ({"prompt": ["one", "two"]}, "prompt"),
        ({"frobnicate": True}, "frobnicate"),
    ],
)
def test_what_cannot_be_served_truthfully_is_a_400_naming_the_parameter(
    gateway: SimulatedGateway, extra: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway).completions.create(model=MODEL, prompt="hi", extra_body=extra)
    assert caught.value.code == "unsupported_parameter" and caught.value.param == param
    assert not any(gateway.requests(p) for p in BACKENDS)


def test_n_and_best_of_of_one_are_accepted(gateway: SimulatedGateway) -> None:
    answer = client(gateway).completions.create(model=MODEL, prompt="hi", n=1, best_of=1, extra_body=only("fireworks"))
    assert answer.choices[0].text


def test_a_missing_prompt_and_an_unknown_model(gateway: SimulatedGateway) -> None:
    missing = httpx.post(gateway.url + "/v1/completions", json={"model": MODEL}, timeout=20)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "prompt"
    with pytest.raises(openai.NotFoundError) as caught:
        client(gateway).completions.create(model="no-such-model", prompt="hi")
    assert caught.value.code == "model_not_found"


def test_litellm_text_completion(gateway: SimulatedGateway) -> None:
    from gateway.providers.litellm.adapter import load_litellm

    litellm = load_litellm()  # its local model table: litellm must not fetch one from the network
    answer = litellm.text_completion(
        model=f"text-completion-openai/{MODEL}",
        api_base=gateway.url + "/v1",
        api_key="unused",
        prompt="Say hello",
        max_tokens=24,
        extra_body=only("vllm"),
    )
    assert answer.choices[0].text
    (body,) = sent(gateway, "vllm")
    assert body["messages"] == [{"role": "user", "content": "Say hello"}]
