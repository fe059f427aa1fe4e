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

from tests.support import free_port, wait_ready

CHAT = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
PIXEL = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJ"
    "RU5ErkJggg=="
)
#: Refused by the default policy's rule (image input for EU tenants, the Llama 4 licence).
EU_IMAGE = {
    **CHAT,
    "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": PIXEL}}]}],
    "corral": {"tags": {"region": "eu"}},
}
SERVED, BAD_JSON, UNKNOWN_MODEL, POLICY = 30, 8, 4, 4


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
    wait_ready(url, process, seconds=90)
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


def _counting_workers(shared: Path) -> set[str]:
    return {m.group(1) for p in shared.glob("counter_*.db") if (m := re.match(r"counter_(\d+)\.db", p.name))}


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
    calls += [{"json": {**CHAT, "model": "no-such-model"}}] * UNKNOWN_MODEL + [{"json": EU_IMAGE}] * POLICY
    statuses: Counter[int] = Counter()
    rounds = 0
    # A worker may still be starting when /readyz first answers: repeat the mix (bounded)
    # until both workers have counted some of it; every request sent is expected.
    while rounds < 10 and len(_counting_workers(shared)) < 2:
        with ThreadPoolExecutor(8) as threads:
            statuses += Counter(threads.map(lambda kw: _post(url, **kw), calls))
        rounds += 1
    assert len(_counting_workers(shared)) == 2, "both workers counted requests"
    sent = {200: SERVED, 400: BAD_JSON, 404: UNKNOWN_MODEL, 403: POLICY}
    assert statuses == {status: n * rounds for status, n in sent.items()}
    per_round = {"ok": SERVED, "bad_request": BAD_JSON + UNKNOWN_MODEL, "policy": POLICY}
    expected = Counter({reason: n * rounds for reason, n in per_round.items()})
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
