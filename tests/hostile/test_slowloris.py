"""Issue 18, reproduction 4: slow clients against `corral serve` on loopback. 1,100 slow
connections under a 1,024-fd limit used to make every legitimate request fail (no header
or body timeout, no connection cap). Here the gateway runs with a 256-fd limit, a 1 s
header and body timeout and at most 100 connections; 300 connections that never finish
their headers are opened, and legitimate requests must keep being served."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support import free_port, wait_ready

SLOW_CONNECTIONS = 300
FD_LIMIT = 256
CHAT = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "corral.yaml"
    config.write_text(yaml.safe_dump({"header_timeout_s": 1.0, "body_timeout_s": 1.0, "max_connections": 100}))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'ledger.db'}", "CORRAL_AUTH": "off"}
    env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--config", str(config)]
    proc = subprocess.Popen(
        [*command, "--log-level", "error"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Lowered right after the spawn, while the gateway is still importing (Linux prlimit).
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))
    try:
        wait_ready(url, proc, seconds=30)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _slow(port: int) -> socket.socket:
    """A connection that starts a request and never finishes its headers."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return sock


def _closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_slowloris_leaves_legitimate_requests_served(gateway: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    slow: list[socket.socket] = []
    try:
        for _ in range(SLOW_CONNECTIONS):
            try:
                slow.append(_slow(port))
            except OSError:
                break
        with httpx.Client(base_url=gateway, timeout=5) as client:
            for _ in range(10):
                assert client.get("/healthz").status_code == 200
                assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        time.sleep(1.5)  # past the header timeout: every slow connection is gone
        assert all(_closed_by_server(sock) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


def test_a_slow_body_gets_408(gateway: str) -> None:
    port = int(gateway.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b"Content-Length: 100\r\n\r\n" + b'{"model": ')
        started = time.monotonic()
        answer = b""
        while b"\r\n\r\n" not in answer and time.monotonic() - started < 5:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 4
