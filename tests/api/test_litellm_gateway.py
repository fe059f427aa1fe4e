"""A litellm deployment through the whole gateway: configured in the config file, routed
to, served by litellm against a loopback fake, metered with its configured prices. And
the other side: with no litellm deployment, litellm is never imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.config import load_settings
from gateway.fakes.script import Behaviour
from gateway.fakes.server import running_in_thread
from gateway.fakes.vllm import VllmFake
from gateway.metering.sink import MemorySink
from tests.support import running_gateway

MODEL_ID = "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"
KEY = "azure-looking-key-789"


def config_file(tmp_path: Path, api_base: str) -> Path:
    deployment = {
        "model": "llama-4-maverick",
        "litellm_model": f"openai/{MODEL_ID}",
        "api_base": api_base,
        "api_key_env": "TEST_AZURE_AI_KEY",
        "input_usd_per_1m": "0.25",
        "output_usd_per_1m": "1.00",
        "context_window": 131072,
        "capabilities": ["stream", "tools"],
    }
    path = tmp_path / "corral.yaml"
    path.write_text(yaml.safe_dump({"providers": {"litellm": {"deployments": [deployment]}}}))
    return path


def wait_for(sink: MemorySink, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(sink.events) < count:
        assert time.monotonic() < deadline, "usage event not recorded"
        time.sleep(0.01)


@contextmanager
def litellm_gateway(tmp_path: Path) -> Iterator[tuple[httpx.Client, VllmFake, MemorySink]]:
    """A gateway whose only backend is a litellm deployment pointed at a vLLM fake."""
    pytest.importorskip("litellm")
    upstream = VllmFake(model_id=MODEL_ID, api_key=KEY)
    with running_in_thread(upstream):
        settings = load_settings(config_file(tmp_path, upstream.url + "/v1"), env={"TEST_AZURE_AI_KEY": KEY})
        sink = MemorySink()
        with running_gateway(settings, sink) as (url, runtime), httpx.Client(base_url=url, timeout=30) as client:
            assert set(runtime.providers) == {"litellm"}
            yield client, upstream, sink


BODY = {"model": "maverick", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20}


def test_a_litellm_deployment_is_routed_served_and_metered(tmp_path: Path) -> None:
    with litellm_gateway(tmp_path) as (client, upstream, sink):
        answer = client.post("/v1/chat/completions", json=BODY)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-corral-provider"] == "litellm"
        assert answer.headers["x-corral-model"] == f"openai/{MODEL_ID}"
        usage = answer.json()["usage"]
        wait_for(sink, 1)
        event = sink.events[-1]
        assert (event.provider, event.model) == ("litellm", "llama-4-maverick")
        assert event.prompt_tokens == usage["prompt_tokens"] and event.completion_tokens == usage["completion_tokens"]
        expected = (Decimal("0.25") * usage["prompt_tokens"] + Decimal("1.00") * usage["completion_tokens"]) / 10**6
        assert event.cost_usd == expected > 0
        assert upstream.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
        models = client.get("/v1/models").json()["data"]
        maverick = next(m for m in models if m["id"] == "llama-4-maverick")
        assert {d["provider"]: d["status"] for d in maverick["deployments"]}["litellm"] == "active"


def test_litellm_streams_are_metered_and_its_errors_reach_the_client(tmp_path: Path) -> None:
    with litellm_gateway(tmp_path) as (client, upstream, sink):
        streamed = client.post("/v1/chat/completions", json={**BODY, "stream": True})
        assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
        wait_for(sink, 1)
        assert sink.events[-1].provider == "litellm" and sink.events[-1].cost_usd > 0
        assert not sink.events[-1].usage_estimated
        upstream.script.push(Behaviour(error="rate_limited", retry_after_s=7), 10)
        limited = client.post("/v1/chat/completions", json=BODY)
        assert limited.status_code == 429 and limited.json()["error"]["type"]
        assert KEY not in limited.text


NO_LITELLM = textwrap.dedent(
    """
    import asyncio, sys
    from gateway.config import load_settings
    from gateway.serve.app import create_app
    from gateway.runtime import Runtime

    async def main() -> None:
        runtime = Runtime.from_settings(load_settings(env={}))
        create_app(runtime)
        await runtime.start()
        try:
            assert "litellm" in runtime.settings.providers
            assert runtime.providers, "the simulated providers started"
        finally:
            await runtime.close()

    asyncio.run(main())
    print("litellm imported" if "litellm" in sys.modules else "litellm not imported")
    """
)


def test_without_a_litellm_deployment_litellm_is_never_imported(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_LITELLM], capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "litellm not imported"
