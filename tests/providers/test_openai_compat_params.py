"""The per-provider PARAMETERS tables and the request translation they drive."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ProviderConfig
from gateway.providers.deepinfra import DeepInfraProvider
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.groq import GroqProvider
from gateway.providers.openai.adapter import OpenAICompatProvider
from gateway.providers.openai.params import DROP, PASS, Unsupported, rename, translate_body, unsupported
from gateway.providers.together import TogetherProvider
from gateway.providers.vllm.adapter import VllmProvider
from gateway.schema.chat import ChatCompletionRequest

from .conftest import WEATHER_TOOL, chat_request, deployment

CLASSES: dict[str, type[OpenAICompatProvider]] = {
    "groq": GroqProvider,
    "together": TogetherProvider,
    "deepinfra": DeepInfraProvider,
    "vllm": VllmProvider,
}
#: Set by the adapter itself, never from the client's body.
MANAGED = {"model", "stream", "stream_options"}


def provider(name: str) -> OpenAICompatProvider:
    return CLASSES[name](ProviderConfig(name=name, base_url="http://127.0.0.1:9/v1"))


def body_for(name: str, *, streaming: bool = False, **fields: Any) -> dict[str, Any]:
    return provider(name).build_body(chat_request(**fields), deployment(name), stream=streaming)


@pytest.mark.parametrize("name", CLASSES)
def test_every_openai_field_has_a_rule(name: str) -> None:
    fields = {f.alias or key for key, f in ChatCompletionRequest.model_fields.items()} - MANAGED
    own = {"vllm": {"structured_outputs"}}.get(name, set())
    assert set(CLASSES[name].dialect.params) == fields | own


@pytest.mark.parametrize("name", CLASSES)
def test_model_is_the_deployment_id_and_unknown_and_managed_fields_never_pass(name: str) -> None:
    request = chat_request(stream=True, stream_options={"include_usage": False}, temperature=0.2)
    request.body["surprise"] = 1
    body = provider(name).build_body(request, deployment(name), stream=False)
    assert body["model"] == deployment(name).model_id
    assert body["temperature"] == 0.2
    assert "surprise" not in body and "stream" not in body and "stream_options" not in body


@pytest.mark.parametrize(
    ("name", "stream_options"),
    [("groq", None), ("together", None), ("deepinfra", None), ("vllm", {"include_usage": True})],
)
def test_streams_ask_for_usage_where_the_backend_needs_asking(name: str, stream_options: Any) -> None:
    body = body_for(name, streaming=True, stream=True)
    assert body["stream"] is True
    assert body.get("stream_options") == stream_options


@pytest.mark.parametrize(
    ("name", "key"),
    [("groq", "max_completion_tokens"), ("together", "max_tokens"), ("deepinfra", "max_tokens")],
)
def test_output_limit_name_and_precedence(name: str, key: str) -> None:
    other = {"max_tokens", "max_completion_tokens"} - {key}
    assert body_for(name, max_tokens=50)[key] == 50
    assert body_for(name, max_completion_tokens=60)[key] == 60
    for order in ({"max_tokens": 50, "max_completion_tokens": 60}, {"max_completion_tokens": 60, "max_tokens": 50}):
        body = provider(name).build_body(chat_request(**order), deployment(name), stream=False)
        assert body[key] == 60
        assert not other & set(body)


def test_vllm_passes_both_limits() -> None:
    body = body_for("vllm", max_tokens=5, max_completion_tokens=6)
    assert (body["max_tokens"], body["max_completion_tokens"]) == (5, 6)


@pytest.mark.parametrize("name", CLASSES)
def test_hints_are_dropped(name: str) -> None:
    body = body_for(name, metadata={"a": "b"}, store=True, service_tier="auto")
    assert not {"metadata", "store", "service_tier"} & set(body)


def test_groq_drops_message_names_and_all_map_developer_to_system() -> None:
    messages = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi", "name": "ann"}]
    groq = body_for("groq", messages=messages)
    assert groq["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert messages[1]["name"] == "ann", "the client's body is never mutated"
    vllm = body_for("vllm", messages=messages)
    assert vllm["messages"][1]["name"] == "ann"
    assert vllm["messages"][0]["role"] == "system"


def test_unchanged_messages_are_not_copied() -> None:
    request = chat_request()
    body = provider("groq").build_body(request, deployment("groq"), stream=False)
    assert body["messages"] is request.body["messages"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"logprobs": True, "top_logprobs": 3}, {"logprobs": 3}),
        ({"logprobs": True}, {"logprobs": 1}),
        ({"logprobs": False, "top_logprobs": 3}, {}),
    ],
)
def test_together_logprobs_become_an_integer(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    body = body_for("together", **fields)
    assert {k: body[k] for k in ("logprobs", "top_logprobs") if k in body} == expected


@pytest.mark.parametrize(
    ("name", "fields", "reason"),
    [
        ("groq", {"logprobs": True}, "logprobs"),
        ("deepinfra", {"logprobs": True}, "logprobs"),
        (
            "deepinfra",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}},
            "json_schema",
        ),
        ("groq", {"response_format": {"type": "json_object"}, "tools": [WEATHER_TOOL]}, "JSON mode"),
    ],
)
def test_unsupported_requests_give_a_reason(name: str, fields: dict[str, Any], reason: str) -> None:
    request = chat_request(**fields)
    found = provider(name).unsupported(request, deployment(name))
    assert found is not None and reason in found and name in found
    with pytest.raises(UpstreamError) as caught:
        provider(name).build_body(request, deployment(name), stream=False)
    assert caught.value.kind is ErrorKind.BAD_REQUEST and caught.value.code == "unsupported_parameter"


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("groq", {"logprobs": False}),
        ("groq", {"response_format": {"type": "json_object"}}),
        ("groq", {"response_format": {"type": "json_object"}, "tools": [WEATHER_TOOL], "tool_choice": "none"}),
        ("together", {"parallel_tool_calls": True, "tools": [WEATHER_TOOL]}),
        ("deepinfra", {"response_format": {"type": "json_object"}}),
        ("vllm", {"logprobs": True, "top_logprobs": 2, "parallel_tool_calls": False, "n": 1}),
    ],
)
def test_supported_variants(name: str, fields: dict[str, Any]) -> None:
    request = chat_request(**fields)
    assert provider(name).unsupported(request, deployment(name)) is None
    body = provider(name).build_body(request, deployment(name), stream=False)
    if "response_format" in fields:
        assert body["response_format"] == fields["response_format"]


@pytest.mark.parametrize("value", [True, False])
def test_parallel_tool_calls_is_emulated_not_sent_where_the_dialect_lacks_it(value: bool) -> None:
    """Together and DeepInfra (Fireworks: tests/api/test_parameter_policy.py) serve either
    value: the gateway's validator enforces false."""
    for name in ("together", "deepinfra"):
        request = chat_request(parallel_tool_calls=value, tools=[WEATHER_TOOL])
        assert provider(name).unsupported(request, deployment(name)) is None
        assert "parallel_tool_calls" not in provider(name).build_body(request, deployment(name), stream=False)


def test_logit_bias_goes_to_the_pool_and_is_named_as_dropped_elsewhere() -> None:
    bias = {"1234": -100.0}
    request = chat_request(logit_bias=bias)
    assert body_for("vllm", logit_bias=bias)["logit_bias"] == bias
    assert provider("vllm").dropped(request) == ()
    for name in ("groq", "together", "deepinfra"):
        assert "logit_bias" not in body_for(name, logit_bias=bias)
        assert provider(name).dropped(request) == ("logit_bias",)


def test_tools_and_images_pass_through() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, image]}]
    for name in CLASSES:
        body = body_for(name, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto")
        assert body["messages"][0]["content"][1] == image
        assert body["tools"] == [WEATHER_TOOL] and body["tool_choice"] == "auto"


def test_rule_machinery() -> None:
    table = {"a": PASS, "b": rename("c"), "d": DROP, "e": unsupported("e is unsupported"), "f": rename("g", unless="a")}
    assert translate_body({"a": 1, "b": 2, "d": 3, "e": 0, "f": 4}, table, "m") == {"model": "m", "a": 1, "c": 2}
    with pytest.raises(Unsupported, match="e is unsupported"):
        translate_body({"e": True}, table, "m")
    assert rename("x").describe() == "rename -> x"
