"""`corral policy explain`: the plan a policy file gives a request, offline."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gateway.cli.main import app

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"


def explain(*args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(app, ["policy", "explain", "--json", *args])
    return result.exit_code, json.loads(result.output) if result.exit_code == 0 else {"output": result.output}


def test_phi_is_pinned_to_the_pool() -> None:
    code, plan = explain(str(EXAMPLES / "regulated_phi.yaml"), "--model", "maverick", "--tag", "data_class=phi")
    assert code == 0
    assert plan["rule"] == "phi-on-premises"
    assert [c["provider"] for c in plan["plan"]] == ["vllm"]  # type: ignore[index, union-attr]
    reasons = {d["provider"]: d["reason"] for d in plan["dropped"]}  # type: ignore[union-attr]
    assert reasons["deepinfra"] == "not allowed by policy"


def test_eu_images_are_refused_with_the_licence_message() -> None:
    code, plan = explain(
        str(EXAMPLES / "eu_tenants.yaml"), "--model", "maverick", "--feature", "images", "--tag", "region=eu"
    )
    assert code == 0
    assert plan["plan"] == [] and "License" in str(plan["rejected"])


def test_a_huge_prompt_drops_small_context_windows() -> None:
    code, plan = explain(str(EXAMPLES / "latency_first.yaml"), "--model", "maverick", "--prompt-tokens", "600000")
    assert code == 0
    reasons = {d["provider"]: d["reason"] for d in plan["dropped"]}  # type: ignore[union-attr]
    assert reasons["together"].startswith("context window 524288")
    assert reasons["vllm"].startswith("context window 430000")
    assert reasons["sglang"].startswith("context window 131072")
    assert {c["provider"] for c in plan["plan"]} == {"deepinfra", "bedrock", "fireworks"}  # type: ignore[union-attr]


def test_unknown_model_is_exit_2() -> None:
    code, _ = explain(str(EXAMPLES / "latency_first.yaml"), "--model", "gpt-4o")
    assert code == 2


def test_the_default_output_is_a_table_an_sre_reads() -> None:
    result = CliRunner().invoke(
        app, ["policy", "explain", str(EXAMPLES / "regulated_phi.yaml"), "--tag", "data_class=phi"]
    )
    assert result.exit_code == 0, result.output
    assert "rule" in result.output and "provider" in result.output and "dropped" in result.output
    assert not result.output.lstrip().startswith("{")
