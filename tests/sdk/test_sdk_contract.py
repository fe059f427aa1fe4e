"""The SDK and the gateway agree on the tool-validation outcomes: one list each, held equal
here, and what a running gateway sends reads as the SDK documents it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import corral
import pytest
from corral.types.corral import RETRIED_PREFIX, TOOL_VALIDATION_OUTCOMES

from gateway.config import load_settings
from gateway.fakes.script import Behaviour
from gateway.runtime import Runtime
from gateway.toolcalls.model import RETRIED, VERDICTS
from tests.support import running_gateway

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK = [{"role": "user", "content": "Weather in Paris? Use get_weather."}]


def test_outcome_lists_are_the_same() -> None:
    assert set(TOOL_VALIDATION_OUTCOMES) == set(VERDICTS)
    assert RETRIED_PREFIX == RETRIED


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[corral.Corral, Runtime]]:
    with running_gateway(load_settings(env={})) as (url, runtime), corral.Corral(base_url=url, api_key="demo") as sdk:
        yield sdk, runtime


def _fake(runtime: Runtime, provider: str) -> Any:
    return next(f for f in runtime.fakes if f.provider == provider)


@pytest.mark.parametrize(
    ("behaviour", "outcome", "retries"),
    [(Behaviour(), "valid", 0), (Behaviour(tool_args="schema_invalid"), "retried:1", 1)],
)
def test_the_gateways_outcome_reads_as_documented(
    live: tuple[corral.Corral, Runtime], behaviour: Behaviour, outcome: str, retries: int
) -> None:
    client, runtime = live
    _fake(runtime, "deepinfra").script.push(behaviour)
    answer = client.chat.completions.create(
        model="maverick", messages=ASK, tools=[WEATHER], tool_choice="required", providers=["deepinfra"]
    )
    assert answer.corral.tool_validation == outcome
    assert answer.corral.tool_retries == retries
