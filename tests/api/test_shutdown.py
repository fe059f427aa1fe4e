"""SIGTERM under load: the gateway stops accepting, finishes every in-flight request and
stream, drains the ledger queue, and exits 0 — no request and no ledger row lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from gateway.metering.sql import SqlStore
from tests.support import free_port

SLOW = '[[fake: {"latency_ms": 1500}]] hello'


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gateway exited during start"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("gateway did not become ready")


def _ask(url: str, stream: bool) -> int:
    body = {
        "model": "llama-4-maverick",
        "messages": [{"role": "user", "content": SLOW}],
        "stream": stream,
        "corral": {"providers": {"only": ["deepinfra"]}},
    }
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
        text = "".join(response.iter_text())
        return response.status_code if (not stream or "[DONE]" in text) else -1


def test_sigterm_finishes_in_flight_requests_and_keeps_every_row(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}", "CORRAL_AUTH": "off"}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(url, proc)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(_ask, url, i % 2 == 1) for i in range(8)]
            time.sleep(0.6)  # the requests are in flight upstream (each takes 1.5 s)
            proc.send_signal(signal.SIGTERM)
            statuses = [f.result() for f in futures]
        assert statuses == [200] * 8, "every in-flight request and stream finished"
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert store.count() == 8, "the ledger queue was drained before exit"
