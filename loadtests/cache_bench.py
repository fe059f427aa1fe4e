"""The response cache's figures for `make bench`: what a hit costs and how many the gateway
serves. The same setup as the overhead table (`loadtests/bench.py`): a fast fake upstream
(DeepInfra's dialect, no added latency) and one gateway worker, here under a policy whose
one rule caches requests tagged `cache: on`. wrk runs back to back: the fake directly,
the gateway on a request the cache does not apply to, and the gateway on a request it
holds (one warm-up request stores it), at 1 and 32 connections.

A hit never goes upstream, so its whole latency is the gateway's: the figure to compare
with is the uncached request's *added* latency (through the gateway minus direct)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from loadtests.bench import FAKE_KEY, MODEL_ID, WrkResult, wait_ready, wrk
from tests.support import free_port

POLICY = """\
version: 1
name: cache-bench
rules:
  - name: cached
    match: {tags: {cache: "on"}}
    cache: {ttl_s: 3600}
"""
MESSAGES = '[{"role": "user", "content": "Give me one short sentence about llamas."}]'


def _bodies() -> tuple[str, str, str]:
    """The direct body, the gateway's uncached body and its cached one (same request)."""
    direct = f'{{"model": "{MODEL_ID}", "messages": {MESSAGES}, "max_tokens": 32, "temperature": 0}}'
    plain = f'{{"model": "llama-4-scout", "messages": {MESSAGES}, "max_tokens": 32, "temperature": 0}}'
    cached = plain[:-1] + ', "corral": {"tags": {"cache": "on"}}}'
    return direct, plain, cached


def _row(name: str, connections: int, result: WrkResult) -> str:
    latency = f"{result.p50_ms:.2f} / {result.p99_ms:.2f}"
    return f"| {name} | {connections} | {result.rps:,.0f} | {latency} | {result.errors} |"


def measure(fake_port: int, gw_port: int, seconds: int) -> str:
    direct_url = f"http://127.0.0.1:{fake_port}/v1/openai/chat/completions"
    gw_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    direct_body, plain_body, cached_body = _bodies()
    stored = httpx.post(gw_url, content=cached_body, headers={"content-type": "application/json"}, timeout=10)
    again = httpx.post(gw_url, content=cached_body, headers={"content-type": "application/json"}, timeout=10)
    if again.headers.get("x-corral-cache") != "hit":
        seen = again.headers.get("x-corral-cache")
        raise RuntimeError(f"cache bench: expected a hit, got {seen} (first answer {stored.status_code})")
    wrk(gw_url, plain_body, FAKE_KEY, 8, 2)  # warm-up
    wrk(gw_url, cached_body, FAKE_KEY, 8, 2)
    lines = [
        "| request | c | req/s | p50 / p99 ms | errors |",
        "| --- | --- | --- | --- | --- |",
    ]
    results: dict[tuple[str, int], WrkResult] = {}
    for connections in (1, 32):
        for name, url, body in (
            ("direct (fake)", direct_url, direct_body),
            ("Corral, not cached", gw_url, plain_body),
            ("Corral, cache hit", gw_url, cached_body),
        ):
            results[name, connections] = result = wrk(url, body, FAKE_KEY, connections, seconds)
            lines.append(_row(name, connections, result))
    added = results["Corral, not cached", 1].p50_ms - results["direct (fake)", 1].p50_ms
    hit = results["Corral, cache hit", 1]
    lines.append("")
    lines.append(
        f"cache hit at c=1: p50 {hit.p50_ms:.2f} ms, p99 {hit.p99_ms:.2f} ms (all of it the gateway's); "
        f"uncached added p50 {added:.2f} ms (target: the hit's p50 below it); "
        f"hits at c=32: {results['Corral, cache hit', 32].rps:,.0f} req/s"
    )
    return "\n".join(lines)


def cache_table(seconds: int = 8) -> str:
    """Start the fake and a gateway with the cache policy, measure, stop them; the table."""
    python = sys.executable
    fake_port, gw_port = free_port(), free_port()
    tmp = Path(tempfile.mkdtemp(prefix="corral-cache-bench-"))
    policy = tmp / "cache-bench.yaml"
    policy.write_text(POLICY)
    env = {
        **os.environ,
        "CORRAL_SIMULATE": "0",
        "CORRAL_AUTH": "off",
        "CORRAL_DEEPINFRA_BASE_URL": f"http://127.0.0.1:{fake_port}/v1/openai",
        "DEEPINFRA_API_KEY": FAKE_KEY,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
        "CORRAL_POLICY": str(policy),
    }
    env.pop("REDIS_URL", None)
    fake = subprocess.Popen(
        [python, "-m", "gateway.fakes", "deepinfra", "--port", str(fake_port), "--no-record"], stdout=subprocess.DEVNULL
    )
    gateway = subprocess.Popen(
        [python, "-m", "gateway.cli.main", "serve", "--port", str(gw_port), "--log-level", "warning"], env=env, cwd=tmp
    )
    try:
        wait_ready(f"http://127.0.0.1:{fake_port}/", fake)
        wait_ready(f"http://127.0.0.1:{gw_port}/healthz", gateway)
        return "Response cache (in-process LRU, one worker):\n\n" + measure(fake_port, gw_port, seconds)
    finally:
        for proc in (gateway, fake):
            proc.send_signal(signal.SIGTERM)
        for proc in (gateway, fake):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(cache_table(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
