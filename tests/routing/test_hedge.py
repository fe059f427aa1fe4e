"""Hedged requests in the pure router and the policy: when a request is hedged, after how
long, and what `corral policy check` says about a hedge that can never happen."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gateway.routing.hedge import DEFAULTS_KEY, HEDGE_SPEND_HALF_LIFE_S, HedgeSpend
from gateway.routing.policy.model import Hedge, Policy, Retry
from gateway.routing.stats import LatencyStats, Prior
from gateway.routing.types import Plan
from tests.routing.policy_support import found, report, show
from tests.routing.test_planner import HOSTED_ONLY, request, run, view

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]


def hedged(hedge: Hedge | None, **settings: Any) -> Policy:
    return Policy("t", replace(HOSTED_ONLY, hedge=hedge, **settings))


def decision(p: Plan) -> tuple[float | None, str]:
    assert p.hedge is not None
    return p.hedge.delay_ms, p.hedge.reason


def test_no_hedge_block_means_no_hedge_decision() -> None:
    assert run(request(), policy=hedged(None)).hedge is None


def test_a_fixed_delay_is_the_policys() -> None:
    delay, why = decision(run(request(stream=True), policy=hedged(Hedge(after_ms=450))))
    assert delay == 450 and "hedge.after" in why


def test_p95_is_the_first_deployments_own_ttft_for_streams_and_whole_answer_otherwise() -> None:
    """The default delay is the first candidate's p95 from its latency model: TTFT for a
    stream, the whole answer for a non-streamed request (what its client waits for)."""
    stats = LatencyStats(Prior(400, 100))
    for i in range(40):
        stats.observe_split(300 + 10 * (i % 5), 100, 1.0, 1000.0)
    live = view(available=frozenset({"deepinfra", "groq"}), stats={"deepinfra/llama-4-scout": stats})
    p = run(request(stream=True), live=live, policy=hedged(Hedge()))
    first = p.candidates[0]
    assert first.deployment.provider == "deepinfra"
    assert first.figures is not None
    delay, why = decision(p)
    assert delay == first.figures.p95_ttft_ms and "p95 TTFT" in why and "40 samples" in why
    assert first.figures.ttft_ms < first.figures.p95_ttft_ms
    whole = run(request(), live=live, policy=hedged(Hedge()))
    assert decision(whole)[0] == whole.candidates[0].figures.p95_latency_ms  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "hedge", "settings", "fragment"),
    [
        ({"tools": TOOLS}, Hedge(after_ms=100), {}, "carries tools"),
        ({"stream": True}, Hedge(after_ms=100, only="non_stream"), {}, "non_stream requests only"),
        ({}, Hedge(after_ms=100, only="stream"), {}, "stream requests only"),
        ({}, Hedge(after_ms=100), {"retry": Retry(attempts=1)}, "attempt budget"),
        ({}, Hedge(after_ms=100), {"fallback": False}, "no second candidate"),
        ({}, Hedge(after_ms=60_000), {}, "not before the deadline"),
    ],
)
def test_never_hedged_when_unsafe_or_impossible(
    body: dict[str, Any], hedge: Hedge, settings: dict[str, Any], fragment: str
) -> None:
    delay, why = decision(run(request(**body), policy=hedged(hedge, **settings)))
    assert delay is None and fragment in why


def test_tools_are_hedged_when_the_policy_allows_them() -> None:
    assert decision(run(request(tools=TOOLS), policy=hedged(Hedge(after_ms=100, allow_tools=True))))[0] == 100


def test_the_cost_cap_pauses_hedging_and_decays() -> None:
    """Extra cost above the cap pauses hedging; the share is of decayed sums, and spend
    without hedges brings it back under."""
    spend = HedgeSpend()
    spend.add(1.0, 0.5, now=1000.0)
    live = view(hedge_spend={DEFAULTS_KEY: spend})
    delay, why = decision(run(request(), live=live, policy=hedged(Hedge(after_ms=100, max_extra_cost_pct=10))))
    assert delay is None and "paused" in why and "50.0%" in why
    spend.add(10.0, 0.0, now=1000.0 + HEDGE_SPEND_HALF_LIFE_S)
    assert spend.extra_pct() == pytest.approx(100 * 0.25 / 10.5)
    assert decision(run(request(), live=live, policy=hedged(Hedge(after_ms=100, max_extra_cost_pct=10))))[0] == 100


POLICY_HEDGE = """
version: 1
defaults:
  retry: {attempts: 3}
  hedge: {after: p95, max_extra_cost_pct: 5, only: stream}
rules:
  - name: fixed
    match: {teams: [a]}
    hedge: {after: 250}
  - name: off
    match: {teams: [b]}
    hedge: null
"""


def test_hedge_blocks_load_and_merge_key_by_key() -> None:
    from gateway.catalogue.deployments import load_catalogue
    from gateway.routing.policy.load import parse_policy

    policy = parse_policy(POLICY_HEDGE.lstrip(), "t.yaml", load_catalogue())
    assert policy.defaults.hedge == Hedge(after_ms=None, max_extra_cost_pct=5, only="stream")
    fixed, off = policy.rules
    assert fixed.settings.hedge == Hedge(after_ms=250, max_extra_cost_pct=5, only="stream")
    assert off.settings.hedge is None


@pytest.mark.parametrize(
    ("text", "line", "path", "fragment"),
    [
        (
            """
            version: 1
            defaults:
              fallback: false
              hedge: {after: 200}
            """,
            4,
            "defaults.hedge",
            "fallback is off",
        ),
        (
            """
            version: 1
            defaults:
              retry: {attempts: 1}
              hedge: {after: 200}
            """,
            4,
            "defaults.hedge",
            "retry.attempts is 1",
        ),
        (
            """
            version: 1
            defaults:
              retry: {deadline_ms: 1000}
              hedge: {after: 1500}
            """,
            4,
            "defaults.hedge",
            "not before the deadline",
        ),
    ],
)
def test_check_warns_about_a_hedge_that_never_happens(text: str, line: int, path: str, fragment: str) -> None:
    errors, warnings = report(text)
    assert not errors, show(errors)
    assert found(warnings, line, path, fragment), show(warnings)


@pytest.mark.parametrize("bad", ["{after: p90}", "{after: 0}", "{max_hedges: 2}", "{only: sometimes}", "{x: 1}"])
def test_schema_refuses_bad_hedge_blocks(bad: str) -> None:
    errors, _ = report(f"version: 1\ndefaults:\n  hedge: {bad}\n")
    assert errors, bad
