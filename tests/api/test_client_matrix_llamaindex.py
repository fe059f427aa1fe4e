"""LlamaIndex's OpenAILike against the running gateway on its fakes, pinned to each backend that
serves a forced tool call: chat, streamed chat and a tool call through `predict_and_call`.

LlamaIndex pins its own openai (it would move the gateway venv's), so it runs in a venv of its
own, built on demand from tests/clients/llamaindex/requirements.txt (every package pinned) by
tests/clients/llamaindex/install.sh (once; a stamp skips it afterwards)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.api.conftest import SimulatedGateway

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "tests" / "clients" / "llamaindex"
VENV = Path(os.environ.get("LLAMAINDEX_VENV", ".venv-llamaindex"))
#: Backends that serve Maverick with a forced tool choice (`tool_required=True` sends `required`).
BACKENDS = ["deepinfra", "fireworks", "vllm"]


@pytest.fixture(scope="module")
def python() -> Path:
    venv = VENV if VENV.is_absolute() else ROOT / VENV
    done = subprocess.run(
        ["bash", str(HERE / "install.sh")],
        env={**os.environ, "LLAMAINDEX_VENV": str(venv)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"the LlamaIndex venv did not install:\n{done.stdout}\n{done.stderr}"
    return venv / "bin" / "python"


def test_llamaindex_openai_like_chat_stream_and_tool_call(python: Path, gateway: SimulatedGateway) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENAI_API_KEY", "OPENAI_BASE_URL")}
    done = subprocess.run(
        [str(python), str(HERE / "client.py"), gateway.url, *BACKENDS],
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
        assert got["chat"] and got["stream"], provider
        (call,) = got["tool"]
        assert call["tool"] == "get_weather" and call["kwargs"]["city"], provider
        assert call["output"].startswith("18C and sunny in"), provider
        bodies = [r.json for r in gateway.requests(provider) if isinstance(r.json, dict)]
        assert len(bodies) == 3, provider
        chat, streamed, tool = bodies
        assert chat["messages"] == [{"role": "user", "content": "Say hello"}] and not chat.get("stream")
        assert streamed["stream"] is True
        assert [t["function"]["name"] for t in tool["tools"]] == ["get_weather"]
        assert tool["tool_choice"] == "required"
        # LlamaIndex sends parallel_tool_calls: false with every tool call: the pool takes the
        # flag; DeepInfra and Fireworks are not sent it (the gateway's validator enforces it,
        # README "OpenAI parameters: one policy"), and still served the call.
        if provider == "vllm":
            assert tool["parallel_tool_calls"] is False
        else:
            assert "parallel_tool_calls" not in tool
