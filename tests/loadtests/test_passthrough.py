"""The bench's control relays what the upstream said, whole and streamed: a figure measured
against it is a figure against a working pass-through, not an error page."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import orjson

from loadtests.bench import cpu_seconds, wait_ready
from tests.support import free_port

KEY = "test-deepinfra-key"
MODEL_ID = "meta-llama/Llama-4-Scout-17B-16E-Instruct"


def test_the_control_relays_whole_and_streamed_answers() -> None:
    fake_port, bare_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{fake_port}/v1/openai"
    fake = subprocess.Popen(
        [sys.executable, "-m", "gateway.fakes", "deepinfra", "--port", str(fake_port), "--no-record"],
        stdout=subprocess.DEVNULL,
    )
    bare = subprocess.Popen(
        [sys.executable, "-m", "loadtests.passthrough", "--port", str(bare_port), "--upstream", upstream]
    )
    try:
        wait_ready(f"http://127.0.0.1:{fake_port}/", fake)
        wait_ready(f"http://127.0.0.1:{bare_port}/docs", bare)
        body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
        headers = {"Authorization": f"Bearer {KEY}"}
        url = f"http://127.0.0.1:{bare_port}/v1/chat/completions"
        whole = httpx.post(url, json=body, headers=headers, timeout=10)
        assert whole.status_code == 200 and whole.json()["object"] == "chat.completion"
        streamed = httpx.post(url, json={**body, "stream": True}, headers=headers, timeout=10)
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        assert all(orjson.loads(e)["object"] == "chat.completion.chunk" for e in events[:-1])
    finally:
        for process in (bare, fake):
            process.terminate()
            process.wait(10)


def test_the_bench_reads_a_process_cpu_time() -> None:
    """`make bench`'s CPU-per-request column: a process's CPU time grows with the work it does."""
    before = cpu_seconds(os.getpid())
    total = 0
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        total += sum(range(1000))
    assert 0.1 < cpu_seconds(os.getpid()) - before < 5, total
