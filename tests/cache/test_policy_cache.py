"""`cache:` in a policy: schema, layering over defaults, and what `corral policy check` says."""

from __future__ import annotations

from pathlib import Path

from gateway.routing.policy.load import check_policy_file, load_policy
from gateway.routing.policy.model import Cache

REPO = Path(__file__).resolve().parents[2]

HEADER = """\
version: 1
name: t
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(HEADER + text)
    return path


def test_the_example_loads_with_its_cache_settings() -> None:
    policy = load_policy(REPO / "policies" / "examples" / "response_cache.yaml")
    caches = {r.name: r.settings.cache for r in policy.rules}
    assert caches["faq-bot"] == Cache(ttl_s=3600)
    assert caches["docs-search"] == Cache(ttl_s=86400, shared_across_teams=True, allow_tools=True)
    assert policy.defaults.cache is None


def test_a_rule_replaces_the_default_cache_whole_and_null_turns_it_off(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
defaults:
  cache: {ttl_s: 60, shared_across_teams: true}
rules:
  - {name: longer, match: {tags: {a: "1"}}, cache: {ttl_s: 600}}
  - {name: off, match: {tags: {a: "2"}}, cache: null}
""",
    )
    policy = load_policy(path)
    assert policy.defaults.cache == Cache(ttl_s=60, shared_across_teams=True)
    assert [r.settings.cache for r in policy.rules] == [Cache(ttl_s=600), None]


def test_the_schema_refuses_a_cache_without_ttl_or_with_unknown_keys(tmp_path: Path) -> None:
    errors, _ = check_policy_file(_write(tmp_path, "defaults:\n  cache: {shared_across_teams: true}\n"))
    assert any("ttl_s" in str(e) for e in errors)
    errors, _ = check_policy_file(_write(tmp_path, "defaults:\n  cache: {ttl_s: 5, tls: 3}\n"))
    assert errors
    errors, _ = check_policy_file(_write(tmp_path, "defaults:\n  cache: {ttl_s: 0}\n"))
    assert errors


def test_check_warns_of_a_cache_that_can_never_serve(tmp_path: Path) -> None:
    text = """\
rules:
  - {name: agents, match: {features: [tools]}, cache: {ttl_s: 60}}
"""
    errors, warnings = check_policy_file(_write(tmp_path, text))
    assert errors == []
    assert any("allow_tools" in str(w) for w in warnings)
    allowed = text.replace("{ttl_s: 60}", "{ttl_s: 60, allow_tools: true}")
    assert check_policy_file(_write(tmp_path, allowed)) == ([], [])
