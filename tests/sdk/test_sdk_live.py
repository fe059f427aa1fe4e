"""The SDK against a live gateway: what served a response, explain, and typed errors."""

from __future__ import annotations

from collections.abc import Iterator

import corral
import pytest

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
