"""Client configuration, request building, the corral object and response.corral."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sdk_fakes import HEADERS, FakeGateway, chat_body

import corral

MESSAGES = [{"role": "user", "content": "Hi"}]


def test_configured_from_environment(monkeypatch: pytest.MonkeyPatch, gateway: FakeGateway) -> None:
    monkeypatch.setenv("CORRAL_BASE_URL", "http://env-gateway:9000/v1/")
    monkeypatch.setenv("CORRAL_API_KEY", "sk-env")
    client = corral.Corral(http_client=httpx.Client(transport=httpx.MockTransport(gateway)))
    assert str(client.base_url) == "http://env-gateway:9000"
    client.chat.completions.create(model="llama-4-scout", messages=MESSAGES)
    request = gateway.requests[0]
    assert str(request.url) == "http://env-gateway:9000/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-env"


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRAL_API_KEY", "sk-env")
    client = corral.Corral(api_key="sk-arg", base_url="https://gw.example/prefix")
    assert client.api_key == "sk-arg"
    assert str(client.base_url) == "https://gw.example/prefix"
    assert "sk-arg" not in repr(client)
    client.close()


def test_missing_api_key_names_the_variable() -> None:
    with pytest.raises(corral.CorralError, match="CORRAL_API_KEY"):
        corral.Corral()


def test_defaults_match_openai() -> None:
    client = corral.Corral(api_key="k")
    assert client.timeout == httpx.Timeout(600.0, connect=5.0)
    assert client.max_retries == 2
    assert str(client.base_url) == "http://127.0.0.1:8080"
    client.close()


@pytest.mark.parametrize("bad", [None, -1, 1.5, True])
def test_bad_max_retries_fail_in_the_constructor(bad: object) -> None:
    with pytest.raises(TypeError, match="max_retries"):
        corral.Corral(api_key="k", max_retries=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["ftp://x", "not a url"])
def test_bad_base_url(bad: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        corral.Corral(api_key="k", base_url=bad)


def test_request_shape(gateway: FakeGateway) -> None:
    client = gateway.client()
    client.chat.completions.create(model="llama-4-scout", messages=MESSAGES, temperature=0.2, max_tokens=50)
    request = gateway.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/chat/completions"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.headers["user-agent"].startswith("corral-python/")
    assert request.headers["idempotency-key"].startswith("corral-")
    assert json.loads(request.content) == {
        "model": "llama-4-scout",
        "messages": MESSAGES,
        "temperature": 0.2,
        "max_tokens": 50,
    }


def test_routing_preferences_become_the_corral_object(gateway: FakeGateway) -> None:
    client = gateway.client()
    client.chat.completions.create(
        model="llama-4-maverick",
        messages=MESSAGES,
        prefer="latency",
        providers=["groq", "together"],
        max_price_usd=Decimal("0.002"),
        max_ttft_ms=800,
        allow_fallbacks=False,
        tags={"team": "search", "feature": "autocomplete"},
        tool_validation="repair",
    )
    assert gateway.sent_json()["corral"] == {
        "prefer": "latency",
        "providers": {"only": ["groq", "together"]},
        "max_price_usd": 0.002,
        "max_ttft_ms": 800.0,
        "allow_fallbacks": False,
        "tags": {"team": "search", "feature": "autocomplete"},
        "tool_validation": "repair",
    }


def test_providers_mapping_and_no_corral_object_by_default(gateway: FakeGateway) -> None:
    client = gateway.client()
    client.chat.completions.create(
        model="m", messages=MESSAGES, providers={"ignore": ["bedrock"], "order": ["vllm"]}
    )
    assert gateway.sent_json()["corral"] == {"providers": {"ignore": ["bedrock"], "order": ["vllm"]}}
    client.chat.completions.create(model="m", messages=MESSAGES)
    assert "corral" not in gateway.sent_json()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"prefer": "cheapest"}, ValueError),
        ({"providers": {"only": ["groq"], "prefer": ["x"]}}, ValueError),
        ({"providers": {"only": "groq"}}, TypeError),
        ({"max_price_usd": 0}, ValueError),
        ({"max_ttft_ms": -5}, ValueError),
        ({"tags": {"team": 7}}, TypeError),
        ({"tool_validation": "strict"}, ValueError),
    ],
)
def test_bad_routing_preferences_fail_before_sending(
    gateway: FakeGateway, kwargs: dict[str, object], error: type[Exception]
) -> None:
    client = gateway.client()
    with pytest.raises(error):
        client.chat.completions.create(model="m", messages=MESSAGES, **kwargs)  # type: ignore[call-overload]
    assert gateway.requests == []


def test_extra_body_headers_and_timeout(gateway: FakeGateway) -> None:
    client = gateway.client(default_headers={"X-Team": "a"})
    client.chat.completions.create(
        model="m", messages=MESSAGES, extra_body={"top_k": 5}, extra_headers={"X-Trace": "t1"}, timeout=3.0
    )
    request = gateway.requests[0]
    assert gateway.sent_json()["top_k"] == 5
    assert request.headers["x-team"] == "a"
    assert request.headers["x-trace"] == "t1"
    assert request.extensions["timeout"] == httpx.Timeout(3.0).as_dict()


def test_default_timeout_is_sent_per_request(gateway: FakeGateway) -> None:
    gateway.client(deadline=None).chat.completions.create(model="m", messages=MESSAGES)
    assert gateway.requests[0].extensions["timeout"] == {
        "connect": 5.0,
        "read": 600.0,
        "write": 600.0,
        "pool": 600.0,
    }


def test_the_deadline_cuts_the_timeout(gateway: FakeGateway) -> None:
    gateway.client(deadline=30).chat.completions.create(model="m", messages=MESSAGES)
    timeout = gateway.requests[0].extensions["timeout"]
    assert timeout["connect"] == 5.0
    assert 29 < timeout["read"] <= 30


def test_response_corral_reads_the_headers(gateway: FakeGateway) -> None:
    gateway.push(
        httpx.Response(
            200,
            json=chat_body("ok"),
            headers={**HEADERS, "x-corral-attempts": "3", "x-corral-tool-validation": "repaired"},
        )
    )
    completion = gateway.client().chat.completions.create(model="llama-4-scout", messages=MESSAGES)
    info = completion.corral
    assert info.provider == "groq"
    assert info.model_id == "meta-llama/llama-4-scout-17b-16e-instruct"
    assert info.attempts == 3
    assert info.cost_usd == Decimal("0.000012345")
    assert isinstance(info.cost_usd, Decimal)
    assert info.tool_validation == "repaired"
    assert info.request_id == "req_123"
    assert info.retries == 0


def test_missing_headers_are_none(gateway: FakeGateway) -> None:
    gateway.push(httpx.Response(200, json=chat_body("ok")))
    info = gateway.client().chat.completions.create(model="m", messages=MESSAGES).corral
    assert (info.provider, info.attempts, info.cost_usd, info.tool_validation) == (None, None, None, None)


def test_typed_response(gateway: FakeGateway) -> None:
    completion = gateway.client().chat.completions.create(model="llama-4-scout", messages=MESSAGES)
    assert isinstance(completion, corral.ChatCompletion)
    assert completion.choices[0].message.content == "Hello from the fake gateway."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage == corral.Usage(12, 5, 17, 0)
    assert completion.raw["id"] == "chatcmpl-1"


def test_unreadable_success_body(gateway: FakeGateway) -> None:
    gateway.push(httpx.Response(200, content=b"<html>", headers=HEADERS))
    with pytest.raises(corral.APIResponseValidationError):
        gateway.client().chat.completions.create(model="m", messages=MESSAGES)


def test_messages_may_be_returned_messages(gateway: FakeGateway) -> None:
    client = gateway.client()
    first = client.chat.completions.create(model="m", messages=MESSAGES)
    client.chat.completions.create(model="m", messages=[*MESSAGES, first.choices[0].message])
    assert gateway.sent_json()["messages"][-1] == {
        "role": "assistant",
        "content": "Hello from the fake gateway.",
    }


def test_with_options_copies_and_shares_connections(gateway: FakeGateway) -> None:
    client = gateway.client()
    copy = client.with_options(max_retries=5, timeout=10.0, deadline=None)
    assert (copy.max_retries, copy.timeout, copy.deadline) == (5, httpx.Timeout(10.0), None)
    assert (client.max_retries, client.deadline) == (2, 600.0)
    assert copy._http is client._http
    assert copy.api_key == client.api_key
    with pytest.raises(TypeError):
        client.with_options(max_retries=None)  # type: ignore[arg-type]


def test_context_manager_closes_its_own_client_only() -> None:
    with corral.Corral(api_key="k") as client:
        pass
    assert client._http.is_closed
    provided = httpx.Client()
    with corral.Corral(api_key="k", http_client=provided):
        pass
    assert not provided.is_closed
    provided.close()


def test_connection_reuse_one_http_client(gateway: FakeGateway) -> None:
    client = gateway.client()
    http = client._http
    for _ in range(3):
        client.chat.completions.create(model="m", messages=MESSAGES)
    assert client._http is http
    assert len(gateway.requests) == 3


async def test_async_client_lifetime_and_request(gateway: FakeGateway) -> None:
    async with gateway.async_client() as client:
        completion = await client.chat.completions.create(
            model="llama-4-scout", messages=MESSAGES, prefer="cost"
        )
        assert completion.corral.provider == "groq"
        assert gateway.sent_json()["corral"] == {"prefer": "cost"}
        copy = client.with_options(max_retries=0)
        assert copy.max_retries == 0 and copy._http is client._http
    async with corral.AsyncCorral(api_key="k") as own:
        pass
    assert own._http.is_closed


def test_models_list(gateway: FakeGateway) -> None:
    models = gateway.client().models.list()
    assert [m.id for m in models] == ["llama-4-scout", "llama-4-maverick"]
    assert models.data[0].extra == {"context_length": 131072}
    assert "idempotency-key" not in gateway.requests[0].headers


@pytest.mark.parametrize(
    ("typo", "suggested"),
    [("temprature", "temperature"), ("max_token", "max_tokens"), ("tool", "tools"), ("prefr", "prefer")],
)
def test_a_misspelled_keyword_raises_type_error_naming_the_nearest(typo: str, suggested: str) -> None:
    # Typed callers get the same error from their type checker; `Any` lets the call run.
    client: Any = corral.Corral(base_url="http://127.0.0.1:9", api_key="k", max_retries=0)
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{typo}'; did you mean '{suggested}'"):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], **{typo: 1})
    with pytest.raises(TypeError, match=typo):
        client.explain(model="m", messages=[{"role": "user", "content": "x"}], **{typo: 1})


def test_a_keyword_unlike_any_raises_type_error_without_a_guess() -> None:
    # Typed callers get the same error from their type checker; `Any` lets the call run.
    client: Any = corral.Corral(base_url="http://127.0.0.1:9", api_key="k", max_retries=0)
    with pytest.raises(TypeError) as caught:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], zzqx=1)
    assert "did you mean" not in str(caught.value)


def test_responses_dump_like_openai_models(gateway: FakeGateway) -> None:
    completion = gateway.client().chat.completions.create(model="llama-4-scout", messages=MESSAGES)
    dumped = completion.model_dump()
    assert dumped == completion.to_dict() == json.loads(completion.to_json())
    assert dumped["choices"][0]["message"] == {
        "role": "assistant",
        "content": gateway.reply,
        "tool_calls": None,
        "refusal": None,
    }
    assert dumped["usage"]["total_tokens"] == 17
    assert dumped["corral"]["provider"] == completion.corral.provider
    assert dumped["corral"]["cost_usd"] == str(completion.corral.cost_usd)
    assert "raw" not in dumped


def test_tool_calls_is_none_without_calls_as_in_openai(gateway: FakeGateway) -> None:
    completion = gateway.client().chat.completions.create(model="llama-4-scout", messages=MESSAGES)
    assert completion.choices[0].message.tool_calls is None


def test_help_shows_every_parameter_with_its_doc() -> None:
    import inspect
    import pydoc

    from corral._params import CHAT_KEYWORDS
    from corral._signature import PARAMETER_DOCS

    client = corral.Corral(api_key="k")
    async_client = corral.AsyncCorral(api_key="k")
    everything = {"model", "messages", "stream", *CHAT_KEYWORDS}
    for method, expected in (
        (client.chat.completions.create, everything),
        (async_client.chat.completions.create, everything),
        (client.explain, everything - {"stream"}),
    ):
        assert set(inspect.signature(method).parameters) == expected
        page = pydoc.render_doc(method, renderer=pydoc.TextDoc())
        for name in expected:
            assert f"{name}: {PARAMETER_DOCS[name]}" in page, name
    client.close()
