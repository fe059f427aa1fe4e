"""The SDK against a live gateway: what served a response, explain, and typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import corral
import pytest
from corral.tools import ToolRegistry
from corral.types.chat import ChatCompletion
from pydantic import BaseModel

from gateway.config import load_settings
from tests.support import running_gateway


@pytest.fixture(scope="module")
def client() -> Iterator[corral.Corral]:
    with running_gateway(load_settings(env={})) as (url, _), corral.Corral(base_url=url, api_key="demo") as sdk:
        yield sdk


def test_response_says_what_served_it(client: corral.Corral) -> None:
    answer = client.chat.completions.create(
        model="maverick", messages=[{"role": "user", "content": "hi"}], providers={"only": ["deepinfra"]}
    )
    assert answer.corral.provider == "deepinfra"
    assert answer.corral.model_id == "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"
    assert answer.corral.attempts == 1 and answer.corral.cost_usd > 0
    assert answer.corral.request_id


def test_explain_matches_the_gateways_plan(client: corral.Corral) -> None:
    plan = client.explain(model="llama-4-scout", messages=[{"role": "user", "content": "x"}], prefer="latency")
    assert plan.model == "llama-4-scout"
    assert plan.plan and plan.plan[0].provider
    assert any("retired" in d.reason for d in plan.dropped)


def test_errors_are_typed(client: corral.Corral) -> None:
    with pytest.raises(corral.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(corral.BadRequestError) as bad:
        client.chat.completions.create(
            model="llama-4-scout", messages=[{"role": "user", "content": "hi"}], temperature=5
        )
    assert bad.value.param == "temperature"


class Weather(BaseModel):
    """Current weather for a city."""

    city: str


def test_parse_gives_instances_of_the_model_given(client: corral.Corral) -> None:
    answer = client.chat.completions.parse(
        model="maverick",
        messages=[{"role": "user", "content": "What is the weather in Paris? Use Weather."}],
        tools=[Weather],
        tool_choice="required",
        providers={"only": ["deepinfra"]},
    )
    (call,) = answer.choices[0].message.tool_calls or ()
    assert isinstance(call.function.parsed_arguments, Weather) and call.function.parsed_arguments.city
    assert call.function.arguments_as(Weather) == call.function.parsed_arguments


async def test_async_parse_too(client: corral.Corral) -> None:
    async with corral.AsyncCorral(base_url=client.base_url, api_key="demo") as aclient:
        answer = await aclient.chat.completions.parse(
            model="maverick",
            messages=[{"role": "user", "content": "What is the weather in Oslo? Use Weather."}],
            tools=[Weather],
            tool_choice="required",
            providers={"only": ["vllm"]},
        )
    (call,) = answer.choices[0].message.tool_calls or ()
    assert isinstance(call.function.parsed_arguments, Weather)


def test_parse_takes_pydantic_models_only(client: corral.Corral) -> None:
    def get_weather(city: str) -> str:
        return city

    with pytest.raises(TypeError, match="pydantic model classes"):
        client.chat.completions.parse(
            model="maverick",
            messages=[{"role": "user", "content": "hi"}],
            tools=[get_weather],  # type: ignore[list-item]
        )


def test_a_call_to_a_tool_not_given_is_never_a_dict_under_parse() -> None:
    registry = ToolRegistry([Weather])
    completion: ChatCompletion[Weather] = ChatCompletion.from_dict(
        {
            "id": "c",
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "1", "type": "function", "function": {"name": "Other", "arguments": "{}"}},
                            {"id": "2", "type": "function", "function": {"name": "Weather", "arguments": "{}"}},
                        ],
                    },
                }
            ],
        }
    )
    other, invalid = registry.parse_typed(completion).choices[0].message.tool_calls or ()
    assert other.function.parsed_arguments is None and "not a tool given" in (other.function.parse_error or "")
    assert invalid.function.parsed_arguments is None and "city" in (invalid.function.parse_error or "")
