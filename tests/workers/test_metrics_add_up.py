"""`corral serve --workers 2`: whichever worker answers a scrape, `/metrics` counts the
requests both workers served, and live gauges are still there (a real subprocess on loopback)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import free_port

CHAT = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
SERVED, BAD_JSON, UNKNOWN_MODEL = 30, 8, 4


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes]]]:
    port = free_port()
    shared = tmp_path / "metrics"
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "CORRAL_CONFIG": "",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    command = [sys.executable, "-m", "gateway.cli.main", "serve", "--workers", "2", "--port", str(port)]
    process = subprocess.Popen([*command, "--no-auth", "--log-level", "warning"], cwd=tmp_path, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the gateway did not start")
        time.sleep(0.2)
    try:
        yield url, shared, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def _post(url: str, **kw: object) -> int:
    """A fresh connection per request, so the kernel hands requests to both workers."""
    with httpx.Client(base_url=url, timeout=30) as client:
        return client.post("/v1/chat/completions", **kw).status_code  # type: ignore[arg-type]


def _scrape(url: str) -> tuple[Counter[str], set[str]]:
    with httpx.Client(base_url=url, timeout=30) as client:
        text = client.get("/metrics").text
    requests: Counter[str] = Counter()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for sample in family.samples:
            if sample.name == "corral_requests_total":
                requests[sample.labels["reason"]] += int(sample.value)
    return requests, names


def test_counters_add_up_across_two_workers(two_workers: tuple[str, Path, subprocess.Popen[bytes]]) -> None:
    url, shared, process = two_workers
    calls = [{"json": CHAT}] * SERVED + [{"content": b"{nope"}] * BAD_JSON
    calls += [{"json": {**CHAT, "model": "no-such-model"}}] * UNKNOWN_MODEL
    with ThreadPoolExecutor(8) as threads:
        statuses = Counter(threads.map(lambda kw: _post(url, **kw), calls))
    assert statuses == {200: SERVED, 400: BAD_JSON, 404: UNKNOWN_MODEL}
    counters = {m.group(1) for p in shared.glob("counter_*.db") if (m := re.match(r"counter_(\d+)\.db", p.name))}
    assert len(counters) == 2, "both workers counted requests"
    expected = Counter({"ok": SERVED, "bad_request": BAD_JSON + UNKNOWN_MODEL})
    deadline = time.monotonic() + 20  # the other worker folds its counts in on its 1 s tick
    seen, names = _scrape(url)
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        seen, names = _scrape(url)
    assert seen == expected
    for _ in range(6):
        seen, names = _scrape(url)
        assert seen == expected, "every scrape, whichever worker answers it, sums both"
        assert {"corral_breaker_state", "corral_ledger_queue_depth", "corral_pool_replica_healthy"} <= names
    assert list(shared.glob("gauge_livesum_*.db")), "each worker publishes its ledger backlog"
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    assert not list(shared.glob("gauge_livesum_*.db")), "stopped workers' backlogs no longer count"
