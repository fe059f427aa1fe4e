"""Which requests may use the cache and under which key (pure)."""

from __future__ import annotations

from typing import Any

import orjson

from gateway.api.parse import parse_chat
from gateway.cache.decide import decide, uses_cache
from gateway.catalogue.deployments import load_catalogue
from gateway.routing.policy.model import Cache, Match, Policy, RouteSettings, Rule

CATALOGUE = load_catalogue()
POLICY = Policy("t", RouteSettings(cache=Cache(ttl_s=60)))
SHARED = Policy("t", RouteSettings(cache=Cache(ttl_s=60, shared_across_teams=True)))


def _req(**body: Any) -> Any:
    base = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}], "temperature": 0}
    return parse_chat(orjson.dumps({**base, **body}), CATALOGUE, "req_1")


def _key(policy: Policy = POLICY, key_id: str | None = None, **body: Any) -> str | None:
    decision = decide(policy, _req(**body), key_id, None)
    assert decision is not None
    return decision.key


def test_fields_that_cannot_change_the_answer_are_not_in_the_key() -> None:
    plain = _key()
    assert plain is not None
    assert _key(stream=True, stream_options={"include_usage": True}, user="u", metadata={"a": "b"}) == plain


def test_everything_that_can_change_the_answer_is() -> None:
    plain = _key()
    others = [
        _key(messages=[{"role": "user", "content": "hi!"}]),
        _key(max_tokens=5),
        _key(seed=1),
        _key(stop=["x"]),
        _key(response_format={"type": "json_object"}),
        _key(model="llama-4-maverick"),
        _key(corral={"tool_validation": "off"}),
        _key(corral={"tags": {"team": "a"}}),
    ]
    assert plain not in others and len(set(others)) == len(others)


def test_the_key_is_per_team_then_per_api_key_unless_shared() -> None:
    a = _key(corral={"tags": {"team": "a"}})
    b = _key(corral={"tags": {"team": "b"}})
    assert a != b
    assert _key(key_id="key_1") != _key(key_id="key_2")
    assert _key(SHARED, corral={"tags": {"team": "a"}}) == _key(SHARED, corral={"tags": {"team": "b"}})


def test_the_same_request_written_differently_has_the_same_key() -> None:
    one = _req(messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    two = parse_chat(
        b'{"max_tokens": 3, "temperature": 0, "messages": [{"content": "hi", "role": "user"}], '
        b'"model": "llama-4-scout"}',
        CATALOGUE,
        "req_2",
    )
    first, second = decide(POLICY, one, None, None), decide(POLICY, two, None, None)
    assert first is not None and second is not None and first.key == second.key


def test_bypass_reasons() -> None:
    def reason(policy: Policy = POLICY, cache_control: str | None = None, **body: Any) -> str:
        decision = decide(policy, _req(**body), None, cache_control)
        assert decision is not None
        return decision.reason

    assert reason() == ""
    assert reason(temperature=1) == "not_deterministic"
    assert reason(temperature=1, seed=3) == ""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    assert reason(tools=[tool]) == "tools"
    assert reason(Policy("t", RouteSettings(cache=Cache(ttl_s=1, allow_tools=True))), tools=[tool]) == ""
    assert reason(cache_control="no-cache") == "no_cache"
    assert reason(cache_control="max-age=0, No-Store") == "no_store"


def test_not_in_play_without_a_rule_or_a_request_asking_and_never_for_a_rejected_request() -> None:
    assert decide(Policy("t", RouteSettings()), _req(), None, None) is None
    asked = decide(Policy("t", RouteSettings()), _req(corral={"cache": {"ttl_s": 5}}), None, None)
    assert asked is not None and asked.ttl_s == 5 and asked.read and asked.store


def test_a_request_a_reject_rule_matches_never_uses_the_cache() -> None:
    rule = Rule("no", Match(tags=(("x", "1"),)), RouteSettings(cache=Cache(ttl_s=60)), reject="no")
    policy = Policy("t", RouteSettings(cache=Cache(ttl_s=60)), rules=(rule,))
    assert decide(policy, _req(corral={"tags": {"x": "1"}, "cache": {"ttl_s": 5}}), None, None) is None
    assert decide(policy, _req(), None, None) is not None


def test_a_policy_without_a_cache_anywhere_is_remembered_as_such() -> None:
    off = Policy("t", RouteSettings())
    ruled = Policy("t", RouteSettings(), rules=(Rule("r", Match(), RouteSettings(cache=Cache(ttl_s=5))),))
    assert not uses_cache(off) and uses_cache(ruled) and not uses_cache(off)
    assert decide(off, _req(), None, None) is None
    assert decide(ruled, _req(), None, None) is not None
