"""The Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`) against the running gateway on its
fakes, pinned to each backend that serves a forced tool call: generateText, streamText (with
usage) and a generateText whose tool the SDK runs. Its packages are installed with `npm ci`
from tests/clients/node/package-lock.json; skipped only where node is not installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import SimulatedGateway

HERE = Path(__file__).resolve().parents[1] / "clients" / "node"
BACKENDS = ["deepinfra", "fireworks", "vllm"]


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed")
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return node


def test_lock_names_no_registry() -> None:
    """The lock pins versions and integrity hashes only: no `resolved` URL to any host."""
    lock = json.loads((HERE / "package-lock.json").read_text())
    packages = lock["packages"]
    assert {"node_modules/ai", "node_modules/@ai-sdk/openai-compatible"} <= set(packages)
    assert all("resolved" not in entry for entry in packages.values())
    assert all(entry.get("integrity", "").startswith("sha512-") for name, entry in packages.items() if name)


def test_vercel_ai_sdk_generate_stream_and_tool_call(node: str, gateway: SimulatedGateway) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AI_GATEWAY"))}
    done = subprocess.run(
        [node, "client.mjs", gateway.url, *BACKENDS],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    for provider in BACKENDS:
        got = results[provider]
        assert got["text"] and got["usage"]["outputTokens"] > 0, provider
        assert got["stream"] and got["streamUsage"]["outputTokens"] > 0, provider
        assert got["finishReason"] in ("stop", "length"), provider
        assert got["toolCalls"][0]["name"] == "getWeather" and got["toolCalls"][0]["input"]["city"], provider
        assert got["toolResults"][0]["output"].startswith("18C and sunny in"), provider
        bodies = [r.json for r in gateway.requests(provider) if isinstance(r.json, dict)]
        assert len(bodies) == 3, provider
        plain, streamed, called = bodies
        assert plain["messages"] == [{"role": "user", "content": "Say hello"}]
        assert "corral" not in plain
        assert streamed["stream"] is True
        assert [t["function"]["name"] for t in called["tools"]] == ["getWeather"]
        assert called["tool_choice"] == "required"
