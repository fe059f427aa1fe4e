"""SIGTERM under load: the gateway stops accepting, finishes every in-flight request and
stream, drains the ledger queue, and exits 0 — no request and no ledger row lost: the
ledger holds exactly the requests the clients were answered, each once, with one final
attempt."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy import func, select

from gateway.metering.sql import SqlStore
from gateway.metering.tables import attempt_table, request_table
from tests.support import free_port, wait_ready

SLOW = '[[fake: {"latency_ms": 1500}]] hello'


def _ask(url: str, stream: bool) -> tuple[int, str]:
    """(status, request id); a stream counts as 200 only if it reached [DONE]."""
    body = {
        "model": "llama-4-maverick",
        "messages": [{"role": "user", "content": SLOW}],
        "stream": stream,
        "corral": {"providers": {"only": ["deepinfra"]}},
    }
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as response:
        text = "".join(response.iter_text())
        status = response.status_code if (not stream or "[DONE]" in text) else -1
        return status, response.headers["x-corral-request-id"]


def _ledger(url: str) -> tuple[list[str], int]:
    """Request ids in the ledger (with repeats, if any) and how many attempts are final."""
    store = SqlStore(url)
    try:
        with store.engine.connect() as conn:
            ids = list(conn.execute(select(request_table().c.request_id)).scalars())
            finals = attempt_table().c.final
            final = conn.execute(select(func.count()).select_from(attempt_table()).where(finals)).scalar_one()
    finally:
        store.close()
    return ids, int(final)


def test_sigterm_finishes_in_flight_requests_and_keeps_every_row(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}", "CORRAL_AUTH": "off"}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(url, proc)
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(_ask, url, i % 2 == 1) for i in range(8)]
            time.sleep(0.6)  # the requests are in flight upstream (each takes 1.5 s)
            proc.send_signal(signal.SIGTERM)
            answers = [f.result() for f in futures]
        assert [status for status, _ in answers] == [200] * 8, "every in-flight request and stream finished"
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    ids, final_attempts = _ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    assert sorted(ids) == sorted(rid for _, rid in answers), "the ledger queue was drained before exit, once"
    assert final_attempts == 8
