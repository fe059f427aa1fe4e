"""Running fakes outside a test's event loop: the `python -m gateway.fakes` CLI and `running_in_thread`."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from gateway.fakes.__main__ import parse_args
from gateway.fakes.registry import make_fake
from gateway.fakes.server import running_in_thread
from tests.fakes import chat


def test_cli_serves_until_sigterm() -> None:
    command = [sys.executable, "-m", "gateway.fakes", "together", "--completion-tokens", "3", "--no-record"]
    command += ["--set", "requests_per_second=7"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
            response = httpx.post(
                f"{base_url}/chat/completions",
                json=chat("together"),
                headers={"Authorization": "Bearer test-together-key"},
            )
            assert response.status_code == 200
            assert response.json()["usage"]["completion_tokens"] == 3
            assert response.headers["x-ratelimit-limit"] == "7"
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0


def test_cli_options() -> None:
    args = parse_args(["groq", "--port", "9001", "--latency-ms", "40", "--tokens-per-s", "300", "--set", "x=[1, 2]"])
    assert (args.provider, args.port, args.latency_ms, args.tokens_per_s) == ("groq", 9001, 40.0, 300.0)
    assert args.options == [("x", [1, 2])] and not args.no_record


def test_fakes_run_in_a_thread_for_sync_callers() -> None:
    groq, vllm = make_fake("groq"), make_fake("vllm")
    with running_in_thread(groq, vllm):
        answer = httpx.post(
            f"{groq.base_url}/chat/completions", json=chat("groq"), headers={"Authorization": "Bearer test-groq-key"}
        )
        health = httpx.get(f"{vllm.base_url}/health")
    assert answer.status_code == 200 and health.status_code == 200
