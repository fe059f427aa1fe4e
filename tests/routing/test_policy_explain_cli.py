"""`corral policy explain`: the plan a policy file gives a request, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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


def _only_deepinfra(monkeypatch: pytest.MonkeyPatch) -> None:
    """This environment's provider keys: DeepInfra's only (the gateway reads keys from it)."""
    from gateway.providers.registry import specs

    for spec in specs().values():
        if spec.key_env:
            monkeypatch.delenv(spec.key_env, raising=False)
    monkeypatch.setenv("DEEPINFRA_API_KEY", "test-key")


def test_with_config_the_plan_is_over_the_providers_that_gateway_would_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --config every provider is assumed configured; with it, only those the gateway
    with that file and this environment would start (here DeepInfra, the one with a key)."""
    _only_deepinfra(monkeypatch)
    config = tmp_path / "corral.yaml"
    config.write_text("simulate_missing: false\n")
    policy = str(EXAMPLES / "latency_first.yaml")
    code, assumed = explain(policy, "--model", "maverick")
    assert code == 0 and len(assumed["plan"]) > 1  # type: ignore[arg-type]
    code, configured = explain(policy, "--model", "maverick", "--config", str(config))
    assert code == 0, configured
    assert [c["provider"] for c in configured["plan"]] == ["deepinfra"]  # type: ignore[index, union-attr]
    reasons = {d["provider"]: d["reason"] for d in configured["dropped"]}  # type: ignore[union-attr]
    assert reasons["bedrock"] == "provider not configured"


def test_with_config_its_catalogue_overrides_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _only_deepinfra(monkeypatch)
    config = tmp_path / "corral.yaml"
    config.write_text("simulate_missing: false\ncatalogue:\n  deepinfra/llama-4-maverick:\n    context_window: 4096\n")
    code, plan = explain(
        str(EXAMPLES / "latency_first.yaml"), "--model", "maverick", "--prompt-tokens", "8000", "--config", str(config)
    )
    assert code == 0, plan
    assert plan["plan"] == []
    reasons = {d["provider"]: d["reason"] for d in plan["dropped"]}  # type: ignore[union-attr]
    assert reasons["deepinfra"].startswith("context window 4096")


def test_a_config_that_does_not_load_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "corral.yaml"
    config.write_text("catalogue:\n  nobody/llama-4-maverick:\n    context_window: 1\n")
    result = CliRunner().invoke(
        app, ["policy", "explain", str(EXAMPLES / "latency_first.yaml"), "--config", str(config)]
    )
    assert result.exit_code == 2
    assert "no such provider/model" in result.output
