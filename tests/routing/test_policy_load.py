"""Loading policies: YAML and schema errors with their lines, the API, layering, first match."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from gateway.providers.errors import ErrorKind
from gateway.routing.policy.load import (
    SCHEMA_PATH,
    PolicyError,
    PolicyIssue,
    check_policy_file,
    load_policy,
    load_schema,
    parse_policy,
)
from gateway.routing.policy.model import Objective, Retry, RouteSettings, ToolCalls
from tests.routing.policy_support import SOURCE, found, report, show, yaml_text

REPO = Path(__file__).resolve().parents[2]

# (yaml, line, dotted path, fragment of the message)
SCHEMA_ERRORS = [
    ("rulez: []\n", 1, "rulez", "unknown key 'rulez' (did you mean 'rules'?)"),
    ("version: 2\n", 1, "version", "1 was expected"),
    ("defaults:\n  retry:\n    attemps: 2\n", 3, "defaults.retry.attemps", "did you mean 'attempts'"),
    ("defaults:\n  retry:\n    attempts: three\n", 3, "defaults.retry.attempts", "expected integer, got a string"),
    ("defaults:\n  retry:\n    attempts: 0\n", 3, "defaults.retry.attempts", "less than the minimum of 1"),
    ("defaults:\n  retry:\n    on: [timeout, gremlins]\n", 3, "defaults.retry.on[1]", "'gremlins' is not one of"),
    ("defaults:\n  objective: {prefer: fastest}\n", 2, "defaults.objective.prefer", "is not one of"),
    ("defaults:\n  objective:\n    max_ttft_ms: 0\n", 3, "defaults.objective.max_ttft_ms", "minimum of 0"),
    ("defaults:\n  max_price_usd: '1,5'\n", 2, "defaults.max_price_usd", "not an amount in US dollars"),
    ("defaults:\n  allow: [groq, groq]\n", 2, "defaults.allow", "non-unique"),
    ("defaults:\n  allow: groq\n", 2, "defaults.allow", "expected array or null, got a string ('groq')"),
    ("defaults:\n  pool: {max_kv_cache_usage: 90}\n", 2, "defaults.pool.max_kv_cache_usage", "maximum of 1"),
    ("defaults:\n  tool_calls: {mode: sometimes}\n", 2, "defaults.tool_calls.mode", "is not one of"),
    ("defaults:\n  fallback: yes\n", 2, "defaults.fallback", "expected boolean, got a string ('yes')"),
    ("rules:\n  - match: {}\n    fallback: false\n", 2, "rules[0]", "'name' is a required property"),
    ("rules:\n  - name: a\n    match:\n      models: []\n", 4, "rules[0].match.models", "should be non-empty"),
    ("rules:\n  - name: a\n    match:\n      tags: {x: [1]}\n", 4, "rules[0].match.tags.x", "expected string"),
    ("rules:\n  - name: a\n    match:\n      colour: red\n", 4, "rules[0].match.colour", "unknown key 'colour'"),
    ("rules:\n  - name: a\n    split:\n      - {provider: groq}\n", 4, "rules[0].split[0]", "'weight_pct' is a"),
    ("budgets:\n  - {team: a, limit_usd: 5}\n", 2, "budgets[0]", "'period' is a required property"),
    ("budgets:\n  - {team: a, limit_usd: 5, period: year}\n", 2, "budgets[0].period", "is not one of"),
    ("- just\n- a list\n", 1, "", "expected object, got a list"),
]


@pytest.mark.parametrize(("text", "line", "path", "fragment"), SCHEMA_ERRORS)
def test_schema_errors_name_the_line_and_path(text: str, line: int, path: str, fragment: str) -> None:
    errors, _ = report(text)
    assert found(errors, line, path, fragment), show(errors)


YAML_ERRORS = [
    ("defaults:\n  allow: [groq\nrules: []\n", 3, "not valid YAML"),
    ("", 1, "the file is empty"),
    ("name: a\ndefaults: {}\nname: b\n", 3, "duplicate key 'name' (first written on line 1)"),
    ("defaults:\n  retry:\n    deadline_ms: .inf\n", 3, "not a finite number"),
    ("a: &x [*x]\n", 1, "an alias refers to a node that contains it"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), YAML_ERRORS)
def test_yaml_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    errors, _ = report(text)
    assert any(e.line == line and fragment in e.message for e in errors), show(errors)


def test_every_error_is_reported_not_just_the_first() -> None:
    errors, _ = report(
        """
        defaults:
          retry: {attempts: 0}
          fallback: maybe
        rules:
          - name: a
            colour: red
        """
    )
    assert [(e.line, e.path) for e in errors] == [
        (2, "defaults.retry.attempts"),
        (3, "defaults.fallback"),
        (6, "rules[0].colour"),
    ]


def test_policy_error_lists_file_line_path_and_message() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("defaults:\n  retry: {attempts: 0}\n  fallback: maybe\n", "prod.yaml")
    lines = str(caught.value).splitlines()
    assert lines[0] == "prod.yaml:2: defaults.retry.attempts: 0 is less than the minimum of 1"
    assert lines[1].startswith("prod.yaml:3: defaults.fallback: expected boolean")
    assert caught.value.errors[0] == PolicyIssue("prod.yaml", 2, "defaults.retry.attempts", lines[0].split(": ", 2)[2])


def test_load_policy_and_check_policy_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("rules:\n  - name: a\n    match: {models: [scout]}\n    fallback: false\n")
    policy = load_policy(good)
    assert policy.name == "good"
    assert policy.rules[0].source == f"{good}:2"
    assert check_policy_file(good) == ([], [])
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: a\n    deny: [grok]\n")
    errors, warnings = check_policy_file(bad)
    assert [(e.file, e.line, e.path) for e in errors] == [(str(bad), 3, "rules[0].deny[0]")]
    assert warnings == []
    with pytest.raises(PolicyError):
        load_policy(bad)
    with pytest.raises(OSError):
        load_policy(tmp_path / "missing.yaml")


def test_defaults_layer_over_built_in_defaults() -> None:
    policy = parse_policy("defaults:\n  retry: {attempts: 1}\n  objective: {prefer: latency}\n", SOURCE)
    assert policy.defaults == RouteSettings(retry=Retry(attempts=1), objective=Objective(prefer="latency"))


def test_rule_overriding_only_retry_attempts_keeps_other_defaults() -> None:
    policy = parse_policy(
        yaml_text(
            """
            defaults:
              allow: [groq, together]
              retry: {attempts: 3, on: [timeout], deadline_ms: 30000}
              objective: {prefer: latency, max_ttft_ms: 700}
              tool_calls: {mode: repair}
            rules:
              - name: more-attempts
                match: {teams: [batch]}
                retry: {attempts: 5}
                objective: {max_latency_ms: 9000}
            """
        ),
        SOURCE,
    )
    settings = policy.rules[0].settings
    assert settings.retry == Retry(attempts=5, on=frozenset({"timeout"}), deadline_ms=30000.0, tries_per_deployment=2)
    assert settings.objective == Objective(prefer="latency", max_ttft_ms=700.0, max_latency_ms=9000.0)
    assert settings.allow == frozenset({"groq", "together"})
    assert settings.tool_calls == ToolCalls(mode="repair", reasks=1)


LAYERING = [
    ("allow: [vllm]", "allow", frozenset({"vllm"})),
    ("allow: null", "allow", None),
    ("deny: []", "deny", frozenset()),
    ("order: [together]", "order", ("together",)),
    ("objective: {weights: {cost: 0.25, latency: 0.75}}", "objective", Objective("balanced", 0.25, 0.75, 500.0)),
    ("objective: {max_ttft_ms: null}", "objective", Objective()),
    ("max_price_usd: null", "max_price_usd", None),
]


@pytest.mark.parametrize(("line", "attr", "expected"), LAYERING)
def test_a_rule_key_replaces_the_default(line: str, attr: str, expected: object) -> None:
    base = "defaults:\n  allow: [groq, vllm]\n  deny: [bedrock]\n  order: [groq]\n  max_price_usd: 1\n"
    base += "  objective: {max_ttft_ms: 500}\n"
    rule = f"rules:\n  - name: r\n    match: {{teams: [t]}}\n    {line}\n"
    policy = parse_policy(base + rule, SOURCE)
    assert getattr(policy.rules[0].settings, attr) == expected


def test_money_is_read_exactly_from_the_text() -> None:
    policy = parse_policy(
        yaml_text(
            """
            defaults: {max_price_usd: 0.10}
            rules:
              - {name: a, match: {teams: [a]}, max_price_usd: "0.000001"}
              - {name: b, match: {teams: [b]}, max_price_usd: 1.5e-3}
            budgets:
              - {team: a, limit_usd: 2000, period: month}
              - {key: key_1, limit_usd: "99.99", period: day, warn_at: 0.5}
            """
        ),
        SOURCE,
    )
    assert str(policy.defaults.max_price_usd) == "0.10"
    assert policy.rules[0].settings.max_price_usd == Decimal("0.000001")
    assert policy.rules[1].settings.max_price_usd == Decimal("0.0015")
    assert [(b.team, b.key, b.limit_usd, b.period, b.warn_at) for b in policy.budgets] == [
        ("a", None, Decimal(2000), "month", 0.8),
        (None, "key_1", Decimal("99.99"), "day", 0.5),
    ]


def test_yaml_1_2_booleans_aliases_and_tag_values_as_written() -> None:
    policy = parse_policy(
        yaml_text(
            """
            defaults:
              tool_calls: {mode: off}
            rules:
              - name: no-region
                match: {models: [scout, maverick], tags: {region: no, tier: 1, beta: true}}
                fallback: false
            """
        ),
        SOURCE,
    )
    assert policy.defaults.tool_calls.mode == "off"
    match = policy.rules[0].match
    assert match.models == frozenset({"llama-4-scout", "llama-4-maverick"})
    assert match.tags == (("beta", "true"), ("region", "no"), ("tier", "1"))


def test_merge_keys_share_settings_and_own_keys_win() -> None:
    policy = parse_policy(
        yaml_text(
            """
            rules:
              - name: a
                match: {teams: [a]}
                retry: &r {attempts: 4, deadline_ms: 9000}
              - name: b
                match: {teams: [b]}
                retry:
                  <<: *r
                  attempts: 2
            """
        ),
        SOURCE,
    )
    assert (policy.rules[1].settings.retry.attempts, policy.rules[1].settings.retry.deadline_ms) == (2, 9000.0)


FIRST_MATCH_POLICY = """
rules:
  - name: eu-images
    match: {tags: {region: eu}, features: [images]}
    reject: no images
  - name: scout-long
    match: {models: [scout], min_prompt_tokens: 10000}
    order: [together]
  - name: scout
    match: {models: [scout]}
    order: [groq]
  - name: ml-team
    match: {teams: [ml]}
    order: [deepinfra]
"""

# (model, team, tags, features, prompt tokens, expected rule)
FIRST_MATCH = [
    ("llama-4-scout", None, {"region": "eu"}, {"images"}, 10, "eu-images"),
    ("llama-4-scout", None, {"region": "eu"}, set(), 10, "scout"),
    ("llama-4-scout", "ml", {}, set(), 20000, "scout-long"),
    ("llama-4-scout", "ml", {}, set(), 9999, "scout"),
    ("llama-4-maverick", "ml", {}, {"tools"}, 10, "ml-team"),
    ("llama-4-maverick", None, {"region": "eu"}, {"tools"}, 10, None),
]


@pytest.mark.parametrize(("model", "team", "tags", "features", "tokens", "expected"), FIRST_MATCH)
def test_rule_for_returns_the_first_matching_rule(
    model: str, team: str | None, tags: dict[str, str], features: set[str], tokens: int, expected: str | None
) -> None:
    policy = parse_policy(yaml_text(FIRST_MATCH_POLICY), SOURCE)
    rule = policy.rule_for(model, team, None, tags, frozenset(features), tokens)
    assert (rule.name if rule else None) == expected


SHIPPED = sorted([REPO / "policies" / "default.yaml", *(REPO / "policies" / "examples").glob("*.yaml")])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_policies_load_clean_and_refuse_eu_image_input(path: Path) -> None:
    assert check_policy_file(path) == ([], [])
    policy = load_policy(path)
    rule = policy.rule_for("llama-4-maverick", None, None, {"region": "eu"}, frozenset({"images"}), 100)
    assert rule is not None and rule.reject is not None
    assert "Llama 4 Community License" in rule.reject
    assert "European Union" in rule.reject


def test_shipped_examples_cover_the_documented_scenarios() -> None:
    assert {p.name for p in SHIPPED} >= {
        "default.yaml",
        "cost_with_latency_slo.yaml",
        "latency_first.yaml",
        "pool_first.yaml",
        "regulated_phi.yaml",
        "eu_tenants.yaml",
        "canary.yaml",
    }


def test_default_policy_spells_out_the_built_in_defaults() -> None:
    assert load_policy(REPO / "policies" / "default.yaml").defaults == RouteSettings()


def test_schema_is_valid_draft_2020_12_and_ships_as_package_data() -> None:
    Draft202012Validator.check_schema(load_schema())
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads((REPO / "policies" / "schema.json").read_text())
    packaged = REPO / "gateway" / "data" / "default_policy.yaml"
    assert packaged.read_text() == (REPO / "policies" / "default.yaml").read_text()


def test_schema_error_kinds_are_the_dispatch_error_kinds() -> None:
    kinds = load_schema()["$defs"]["retry"]["properties"]["on"]["items"]["enum"]
    assert set(kinds) == {k.value for k in ErrorKind}
