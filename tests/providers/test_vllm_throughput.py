"""`corral prices --measure-s`: the pool's throughput now, read from its replicas' own token
counters on the wire (the vLLM fake's `/metrics`), shown beside the stated figure and never
used for the price."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway.cli.main import app
from gateway.fakes.vllm import VllmFake
from gateway.providers.vllm.throughput import measure, token_counters
from tests.fakes import SCOUT

MAVERICK_ID = "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"

runner = CliRunner()


def test_token_counters_are_read_per_model() -> None:
    text = (
        "# TYPE vllm:generation_tokens counter\n"
        'vllm:generation_tokens_total{engine="0",model_name="a"} 10.0\n'
        'vllm:generation_tokens_total{engine="1",model_name="a"} 5.0\n'
        'vllm:generation_tokens_created{engine="0",model_name="a"} 1.7e9\n'
        "# TYPE vllm:prompt_tokens counter\n"
        'vllm:prompt_tokens_total{engine="0",model_name="a"} 40.0\n'
        'vllm:prompt_tokens_total{engine="0",model_name="b"} 2.0\n'
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0",model_name="a"} 3.0\n'
    )
    assert token_counters(text) == {"a": (40.0, 15.0), "b": (2.0, 0.0)}


async def test_measure_divides_the_counters_growth_by_the_time_between_reads() -> None:
    scout, maverick = VllmFake(model_id=SCOUT["vllm"]), VllmFake(model_id=MAVERICK_ID)
    await scout.start()
    await maverick.start()
    try:

        async def traffic(seconds: float) -> None:
            scout.generation_tokens_total += 900
            scout.prompt_tokens_total += 3600
            maverick.generation_tokens_total += 90
            await asyncio.sleep(seconds)

        rates = {r.model_id: r for r in await measure([scout.base_url, maverick.base_url], 0.5, sleep=traffic)}
    finally:
        await scout.stop()
        await maverick.stop()
    s, m = rates[SCOUT["vllm"]], rates[MAVERICK_ID]
    assert 0.5 <= s.over_s < 2.0 and s.replicas == 1
    assert s.output_tokens_per_s == pytest.approx(900 / s.over_s)
    assert s.input_tokens_per_s == pytest.approx(3600 / s.over_s)
    assert m.output_tokens_per_s == pytest.approx(90 / m.over_s) and m.input_tokens_per_s == 0


@pytest.fixture
def replica() -> Iterator[VllmFake]:
    """A vLLM fake on its own event loop in a thread, so the CLI can run its own loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = VllmFake(model_id=SCOUT["vllm"])
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_prices_shows_the_measured_figure_beside_the_stated_one_but_prices_by_the_stated(
    replica: VllmFake, tmp_path: Path
) -> None:
    config = tmp_path / "corral.yaml"
    config.write_text(yaml.safe_dump({"providers": {"vllm": {"vllm": {"urls": [replica.base_url]}}}}))
    replica.generation_tokens_total = 1_000_000  # what it had served before: a rate counts growth only
    args = ["prices", "--at", "2026-11-01", "--config", str(config), "--measure-s", "0.3"]
    result = runner.invoke(app, [*args, "--format", "json"], env={"CORRAL_CONFIG": ""})
    assert result.exit_code == 0, result.output
    rows = {(p["provider"], p["model"]): p for p in json.loads(result.output)["prices"]}
    scout = rows[("vllm", "llama-4-scout")]
    assert scout["measured_now"]["output_tokens_per_s"] == 0 and scout["measured_now"]["replicas"] == 1
    # The price is still the one derived from the stated throughput.
    assert scout["output"] == "0.617284" and scout["derived_from"]["output_tokens_per_s"] == "9000"
    assert "measured_now" not in rows[("vllm", "llama-4-maverick")]  # no replica serves it
    table = runner.invoke(app, args, env={"CORRAL_CONFIG": ""})
    assert "measured now: 0 input | 0 output tok/s" in " ".join(table.output.split())


def test_measuring_without_replicas_says_so() -> None:
    result = runner.invoke(app, ["prices", "--measure-s", "1"], env={"CORRAL_CONFIG": ""})
    assert result.exit_code != 0 and "no pool replicas are configured" in result.output
