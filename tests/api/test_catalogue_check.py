"""The catalogue against the providers' own model listings: `corral catalogue check` reports
rows that are gone, new Llama 4 IDs and due lifecycle dates, and a running gateway takes a
vanished deployment out of rotation (and back) by itself, without waiting for requests to fail."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
from typer.testing import CliRunner

from gateway.catalogue.deployments import load_catalogue
from gateway.catalogue.drift import compare
from gateway.cli.main import app
from gateway.config import load_settings
from gateway.fakes.bedrock.server import TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY, BedrockFake
from gateway.fakes.deepinfra import DeepInfraFake
from gateway.fakes.server import running_in_thread
from tests.support import running_gateway

MAVERICK_ID = "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"
KEY = "deepinfra/llama-4-maverick"


def _env(deepinfra: DeepInfraFake, bedrock: BedrockFake | None = None) -> dict[str, str]:
    env = {"DEEPINFRA_API_KEY": "test-deepinfra-key", "CORRAL_DEEPINFRA_BASE_URL": deepinfra.base_url}
    if bedrock is not None:
        env |= {
            "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
            "CORRAL_BEDROCK_BASE_URL": bedrock.base_url,
        }
    return env


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_compare_finds_gone_new_and_due() -> None:
    catalogue = load_catalogue()
    listed = frozenset({"meta-llama/Llama-4-Scout-17B-16E-Instruct", "meta-llama/Llama-4-Behemoth-Preview"})
    drift = compare(catalogue, {"deepinfra": listed, "groq": None}, date(2026, 7, 1))
    assert [d.key for d in drift.gone] == [KEY]
    assert drift.new == {"deepinfra": ["meta-llama/Llama-4-Behemoth-Preview"]}
    assert "groq/llama-4-scout" in {d.key for d in drift.due}  # retired by Groq on 2026-07-17
    assert drift.unknown == ["groq"] and not drift.clean


def test_cli_reports_a_vanished_model_and_exits_1(monkeypatch: object) -> None:
    deepinfra, bedrock = DeepInfraFake(), BedrockFake()
    with running_in_thread(deepinfra), running_in_thread(bedrock):
        runner = CliRunner()
        for key, value in _env(deepinfra, bedrock).items():
            monkeypatch.setenv(key, value)  # type: ignore[attr-defined]
        monkeypatch.setenv("CORRAL_SIMULATE", "0")  # type: ignore[attr-defined]
        clean = runner.invoke(app, ["catalogue", "check"])
        assert clean.exit_code == 0, clean.output
        assert "no drift" in clean.output
        deepinfra.retired_models.add(MAVERICK_ID)
        bedrock.model_ids = frozenset(m for m in bedrock.model_ids if "scout" not in m)
        drifted = runner.invoke(app, ["catalogue", "check"])
        assert drifted.exit_code == 1, drifted.output
        lines = drifted.output.splitlines()
        assert any("gone" in line and "deepinfra" in line for line in lines)
        assert any("gone" in line and "bedrock" in line for line in lines)
        # Bedrock's row is found gone only because the fake accepted the listing's SigV4 signature.
        assert sum("gone" in line for line in lines) == 2


def test_a_running_gateway_takes_a_vanished_deployment_out_and_back(tmp_path: Path) -> None:
    deepinfra = DeepInfraFake()
    config = tmp_path / "corral.yaml"
    config.write_text("catalogue_check_interval_s: 0.2\n")
    with running_in_thread(deepinfra):
        settings = load_settings(config, env=_env(deepinfra))
        with running_gateway(settings) as (url, runtime), httpx.Client(base_url=url, timeout=10) as client:
            deepinfra.retired_models.add(MAVERICK_ID)
            eventually(lambda: KEY in runtime.state.out_of_rotation)
            assert (
                'corral_deployment_out_of_rotation{deployment="deepinfra/llama-4-maverick"} 1.0'
                in client.get("/metrics").text
            )
            body = {"model": "llama-4-maverick", "messages": [{"role": "user", "content": "hi"}]}
            plan = client.post("/v1/route/explain", json=body).json()
            reason = {d["provider"]: d["reason"] for d in plan["dropped"]}["deepinfra"]
            assert reason.startswith("out of rotation: gone from its provider's model list")
            served_before = len(deepinfra.requests)
            refused = client.post("/v1/chat/completions", json=body)
            assert refused.status_code == 503 and len(deepinfra.requests) == served_before
            deepinfra.retired_models.discard(MAVERICK_ID)
            eventually(lambda: KEY not in runtime.state.out_of_rotation)
            assert client.post("/v1/chat/completions", json=body).status_code == 200


def test_demo_mode_never_runs_the_check(tmp_path: Path) -> None:
    """The fakes list what they serve; checking them would only take the demo's deployments out."""
    config = tmp_path / "corral.yaml"
    config.write_text("catalogue_check_interval_s: 0.1\n")
    with running_gateway(load_settings(config, env={})) as (_, runtime):
        assert runtime.providers and all(p.simulated for p in runtime.providers.values())
        assert runtime._drift_watch is None
