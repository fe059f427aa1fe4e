"""Semantic checks: every error and warning, with its line and path; shadowing both ways."""

from __future__ import annotations

import pytest

from tests.routing.policy_support import found, report, show

# (yaml, line, dotted path, fragment of the message)
SEMANTIC_ERRORS = [
    ("defaults:\n  allow: [groq, grok]\n", 2, "defaults.allow[1]", "unknown provider 'grok'; known providers: groq"),
    ("defaults:\n  deny: [azure]\n", 2, "defaults.deny[0]", "unknown provider 'azure'"),
    ("defaults:\n  order:\n    - cerebras\n", 3, "defaults.order[0]", "unknown provider 'cerebras'"),
    (
        "defaults:\n  split:\n    - {provider: groq, weight_pct: 50}\n    - {provider: openai, weight_pct: 50}\n",
        4,
        "defaults.split[1].provider",
        "unknown provider 'openai'",
    ),
    (
        "rules:\n  - name: a\n    match:\n      models: [llama-3-70b]\n    fallback: false\n",
        4,
        "rules[0].match.models[0]",
        "unknown model 'llama-3-70b'",
    ),
    (
        "rules:\n  - name: a\n    match:\n      features: [vision]\n    fallback: false\n",
        4,
        "rules[0].match.features[0]",
        "unknown feature 'vision'",
    ),
    (
        "rules:\n  - name: a\n    match:\n      min_prompt_tokens: 9000\n      max_prompt_tokens: 8000\n"
        "    fallback: false\n",
        4,
        "rules[0].match.min_prompt_tokens",
        "min_prompt_tokens 9000 > max_prompt_tokens 8000: the rule can never match",
    ),
    (
        "defaults:\n  deny: [groq, together, deepinfra, bedrock, vllm, fireworks, sglang, ollama]\n",
        2,
        "defaults.deny",
        "no deployment of llama-4-maverick is left after allow/deny",
    ),
    (
        "rules:\n  - name: a\n    match: {features: [json_schema]}\n    allow: [deepinfra, bedrock]\n",
        4,
        "rules[0].allow",
        "no deployment of llama-4-scout that supports json_schema is left after allow/deny",
    ),
    (
        "rules:\n  - name: a\n    match: {models: [maverick], features: [stream, tools]}\n    deny: [groq, together,"
        " deepinfra, vllm, fireworks, sglang]\n",
        4,
        "rules[0].deny",
        "llama-4-maverick that supports stream, stream_tools, tools",
    ),
    (
        "defaults:\n  split:\n    - {provider: groq, weight_pct: 60}\n    - {provider: together, weight_pct: 30}\n",
        2,
        "defaults.split",
        "split weights (weight_pct) add up to 90, not 100",
    ),
    (
        "defaults:\n  split:\n    - {provider: groq, weight_pct: 33.3}\n    - {provider: together, weight_pct: 33.3}\n"
        "    - {provider: vllm, weight_pct: 33.3}\n",
        2,
        "defaults.split",
        "add up to 99.9, not 100",
    ),
    (
        "defaults:\n  split:\n    - {provider: groq, weight_pct: 0.9}\n    - {provider: together, weight_pct: 0.1}\n",
        2,
        "defaults.split",
        "add up to 1, not 100",
    ),
    (
        "defaults:\n  split:\n    - {provider: groq, weight_pct: 50}\n    - {provider: groq, weight_pct: 50}\n",
        4,
        "defaults.split[1].provider",
        "'groq' appears twice in the split",
    ),
    (
        "rules:\n  - name: a\n    match: {teams: [x]}\n    deny: [together]\n    split:\n"
        "      - {provider: groq, weight_pct: 90}\n      - {provider: together, weight_pct: 10}\n",
        7,
        "rules[0].split[1].provider",
        "sends traffic to 'together', which allow/deny exclude",
    ),
    (
        "defaults:\n  objective:\n    weights: {cost: 0.7, latency: 0.2}\n",
        3,
        "defaults.objective.weights",
        "objective weights add up to 0.9, not 1",
    ),
    ("defaults:\n  max_price_usd: '0.00'\n", 2, "defaults.max_price_usd", "must be above 0"),
    (
        "rules:\n  - {name: a, match: {teams: [x]}, fallback: false}\n"
        "  - {name: a, match: {teams: [y]}, fallback: false}\n",
        3,
        "rules[1].name",
        "rule name 'a' is already used by rules[0] (line 2)",
    ),
    ("budgets:\n  - {team: a, key: k, limit_usd: 5, period: day}\n", 2, "budgets[0]", "exactly one of team or key"),
    ("budgets:\n  - {limit_usd: 5, period: day}\n", 2, "budgets[0]", "exactly one of team or key"),
    (
        "budgets:\n  - {team: a, limit_usd: 5, period: day}\n  - {team: a, limit_usd: 9, period: day}\n",
        3,
        "budgets[1]",
        "team 'a' already has a daily budget (budgets[0], line 2)",
    ),
    ("budgets:\n  - {team: a, limit_usd: '0', period: month}\n", 2, "budgets[0].limit_usd", "must be above 0"),
]


@pytest.mark.parametrize(("text", "line", "path", "fragment"), SEMANTIC_ERRORS)
def test_semantic_errors(text: str, line: int, path: str, fragment: str) -> None:
    errors, _ = report(text)
    assert found(errors, line, path, fragment), show(errors)


VALID = [
    "defaults:\n  split:\n    - {provider: groq, weight_pct: 33.3}\n    - {provider: together, weight_pct: 33.3}\n"
    "    - {provider: vllm, weight_pct: 33.4}\n",
    "defaults:\n  objective:\n    weights: {cost: 0.1, latency: 0.9}\n",
    "defaults:\n  allow: [vllm]\n",
    "budgets:\n  - {team: a, limit_usd: 5, period: day}\n  - {team: a, limit_usd: 90, period: month}\n"
    "  - {key: a, limit_usd: 5, period: day}\n",
    "rules:\n  - name: a\n    match: {features: [json_schema]}\n    allow: [together, deepinfra]\n",
    "defaults:\n  split:\n    - {provider: together, weight_pct: 10}\n    - {by_objective: true, weight_pct: 90}\n",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_policies_have_no_errors_or_warnings(text: str) -> None:
    assert report(text) == ([], [])


WARNINGS = [
    ("defaults:\n  allow: [groq]\n  order: [together, groq]\n", 3, "defaults.order[0]", "not in allow"),
    ("defaults:\n  deny: [groq]\n  order: [groq]\n", 3, "defaults.order[0]", "'groq' is in order but denied"),
    ("defaults:\n  allow: [groq, vllm]\n  deny: [vllm]\n", 3, "defaults.deny[0]", "both allowed and denied"),
    (
        "rules:\n  - name: a\n    match: {teams: [x]}\n    reject: no\n    order: [groq]\n",
        5,
        "rules[0].order",
        "ignored: a reject rule",
    ),
    ("rules:\n  - name: a\n    reject: closed\n", 3, "rules[0].reject", "refuses every request"),
    ("rules:\n  - name: a\n    match: {teams: [x]}\n", 2, "rules[0]", "sets nothing beyond the defaults"),
    (
        "rules:\n  - name: a\n    match: {teams: [x]}\n    breaker: {cooldown_s: 5}\n",
        4,
        "rules[0].breaker",
        "set defaults.breaker",
    ),
    ("defaults:\n  tool_calls: {mode: repair, reasks: 2}\n", 2, "defaults.tool_calls.reasks", "only apply with mode"),
    (
        "defaults:\n  objective: {prefer: cost, weights: {cost: 0.5, latency: 0.5}}\n",
        2,
        "defaults.objective.prefer",
        "weights only apply with prefer: balanced",
    ),
    (
        "rules:\n  - name: a\n    match: {features: [json_schema]}\n    split:\n"
        "      - {provider: together, weight_pct: 90}\n      - {provider: bedrock, weight_pct: 10}\n",
        6,
        "rules[0].split[1].provider",
        "'bedrock' has no deployment that can serve",
    ),
    (
        "defaults:\n  order: [groq]\n  split:\n    - {provider: together, weight_pct: 10}\n"
        "    - {by_objective: true, weight_pct: 90}\n",
        3,
        "defaults.split",
        "the split's pick goes first, order only ranks the rest",
    ),
    (
        "defaults:\n  objective: {prefer: latency}\n  pool: {prefer_pool: true}\n",
        3,
        "defaults.pool",
        "contradicting prefer: latency",
    ),
    ("defaults:\n  objective: {prefer: latency}\n  order: [groq]\n", 3, "defaults.order", "order overrides prefer"),
]


@pytest.mark.parametrize(("text", "line", "path", "fragment"), WARNINGS)
def test_warnings_are_separate_from_errors(text: str, line: int, path: str, fragment: str) -> None:
    errors, warnings = report(text)
    assert errors == [], show(errors)
    assert found(warnings, line, path, fragment), show(warnings)


# (earlier rule's match, later rule's match, later rule shadowed?)
SHADOWING = [
    ("{}", "{models: [scout]}", True),
    ("{models: [scout]}", "{}", False),
    ("{models: [scout, maverick]}", "{}", True),
    ("{models: [scout]}", "{models: [llama-4-scout]}", True),
    ("{models: [scout]}", "{models: [scout, maverick]}", False),
    ("{teams: [a, b]}", "{teams: [a]}", True),
    ("{teams: [a]}", "{teams: [a, b]}", False),
    ("{teams: [a]}", "{}", False),
    ("{keys: [k1]}", "{keys: [k1], tags: {x: y}}", True),
    ("{keys: [k1]}", "{keys: [k2]}", False),
    ("{tags: {region: eu}}", "{tags: {region: eu, tier: gold}}", True),
    ("{tags: {region: eu, tier: gold}}", "{tags: {region: eu}}", False),
    ("{tags: {region: eu}}", "{tags: {region: us}}", False),
    ("{features: [tools]}", "{features: [tools, images]}", True),
    ("{features: [tools, images]}", "{features: [tools]}", False),
    ("{features: [stream]}", "{features: [stream_tools]}", True),
    ("{features: [tools]}", "{features: [tool_choice]}", True),
    ("{features: [stream_tools]}", "{features: [stream, tools]}", True),
    ("{max_prompt_tokens: 8000}", "{max_prompt_tokens: 4000}", True),
    ("{max_prompt_tokens: 4000}", "{max_prompt_tokens: 8000}", False),
    ("{max_prompt_tokens: 4000}", "{}", False),
    ("{min_prompt_tokens: 1000}", "{min_prompt_tokens: 2000, max_prompt_tokens: 3000}", True),
    ("{min_prompt_tokens: 1000}", "{}", False),
    ("{models: [scout], tags: {region: eu}}", "{models: [scout], teams: [x], tags: {region: eu}}", True),
    ("{models: [scout], teams: [x]}", "{models: [scout], tags: {team: x}}", False),
]


@pytest.mark.parametrize(("earlier", "later", "shadowed"), SHADOWING)
def test_shadowed_rules(earlier: str, later: str, shadowed: bool) -> None:
    text = (
        f"rules:\n  - name: first\n    match: {earlier}\n    fallback: false\n"
        f"  - name: second\n    match: {later}\n    order: [groq]\n"
    )
    errors, _ = report(text)
    expected = "rule 'second' can never match: the earlier rule 'first' (line 2) matches every request it would"
    assert found(errors, 6, "rules[1].match", expected) is shadowed, show(errors)
    assert len(errors) == (1 if shadowed else 0), show(errors)


def test_a_rule_without_match_shadows_every_later_rule() -> None:
    errors, _ = report(
        """
        rules:
          - name: everything
            fallback: false
          - name: scout
            match: {models: [scout]}
            order: [groq]
          - name: ml
            match: {teams: [ml]}
            order: [vllm]
        """
    )
    assert [(e.line, e.path) for e in errors] == [(5, "rules[1].match"), (8, "rules[2].match")]


def test_a_rule_that_can_never_match_on_its_own_is_not_also_reported_as_shadowing() -> None:
    errors, _ = report(
        """
        rules:
          - name: bad
            match: {features: [vision]}
            fallback: false
          - name: after
            match: {features: [vision, tools]}
            fallback: false
        """
    )
    assert [e.path for e in errors] == ["rules[0].match.features[0]", "rules[1].match.features[0]"]
