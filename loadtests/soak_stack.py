"""What the soak runs against, started as real processes on loopback and torn down after:

- one fake per backend (`python -m gateway.fakes`) with its own latency profile, rate
  limits raised so the fakes' quotas never become the test (the vLLM fake keeps its batch
  limit: requests beyond it queue, as on a real replica);
- a throwaway PostgreSQL database for the ledger (dropped at the end);
- `replicas` gateways (`corral serve --workers N`), each in its own directory (its own
  usage journals), all sharing that database and one Redis database index.
"""

from __future__ import annotations

import os
import secrets
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psycopg

PG_HOST = os.environ.get("CORRAL_TEST_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CORRAL_TEST_PGPORT", "5432"))
PG_USER = os.environ.get("CORRAL_TEST_PGUSER", "postgres")
START_TIMEOUT_S = 180.0
INHERITED_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV"})
UNLIMITED = 10**9


@dataclass(frozen=True, slots=True)
class FakeProfile:
    provider: str
    #: Time to the first byte (status line) of every answer.
    latency_ms: float
    #: Output pacing; a 64-token answer takes 64 / tokens_per_s seconds more.
    tokens_per_s: float
    options: dict[str, object] = field(default_factory=dict)


#: Hosted backends as they feel from a data centre: Groq quick to answer and fast to
#: generate, Together and DeepInfra slower, Bedrock slowest; our own vLLM replica quick
#: while its batch (6 sequences) has room.
PROFILES = (
    FakeProfile("groq", 60, 500, {"tokens_per_minute": UNLIMITED, "requests_per_day": UNLIMITED}),
    FakeProfile("together", 250, 150, {"requests_per_second": UNLIMITED, "tokens_per_second": UNLIMITED}),
    FakeProfile("deepinfra", 300, 120, {"max_concurrency": 10_000}),
    FakeProfile("bedrock", 450, 90),
    FakeProfile("vllm", 120, 200, {"max_num_seqs": 6}),
)
FAKE_CREDENTIALS = {
    "GROQ_API_KEY": "test-groq-key",
    "TOGETHER_API_KEY": "test-together-key",
    "DEEPINFRA_API_KEY": "test-deepinfra-key",
    "AWS_ACCESS_KEY_ID": "AKIDCORRALTEST00000",
    "AWS_SECRET_ACCESS_KEY": "corral-test-secret",
    "AWS_REGION": "us-east-1",
}


def _first_line(stream: IO[bytes], proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The first line a child prints, or an error once it exits or the time is up."""
    ready, _, _ = select.select([stream], [], [], timeout_s)
    line = stream.readline() if ready else b""
    if not line:
        proc.kill()
        raise RuntimeError(f"{proc.args!r} printed nothing within {timeout_s:.0f} s (exit {proc.poll()})")
    return line.decode().strip()


def start_fake(profile: FakeProfile, log: IO[bytes]) -> tuple[subprocess.Popen[bytes], str]:
    """Start one fake; returns the process and its base URL."""
    command = [
        sys.executable, "-m", "gateway.fakes", profile.provider, "--port", "0", "--no-record",
        "--latency-ms", str(profile.latency_ms), "--tokens-per-s", str(profile.tokens_per_s),
        "--completion-tokens", "48",
    ]  # fmt: skip
    for key, value in profile.options.items():
        command += ["--set", f"{key}={value}"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log)
    assert proc.stdout is not None
    return proc, _first_line(proc.stdout, proc, START_TIMEOUT_S)


def write_config(path: Path) -> Path:
    """Groq has retired its Llama 4 deployments (the catalogue says so); the soak brings
    them back, as an operator may, to keep a fast backend in the mix."""
    path.write_text("catalogue:\n  groq/llama-4-scout: {reenabled: true}\n  groq/llama-4-maverick: {reenabled: true}\n")
    return path


def gateway_env(
    base_urls: dict[str, str], database_url: str, redis_url: str, api_key: str, config: Path
) -> dict[str, str]:
    # Only what a Python process needs from ours: a credential or CORRAL_* setting left in
    # the caller's environment must never point a soak gateway at a real backend.
    env = {k: v for k, v in os.environ.items() if k in INHERITED_ENV}
    env.update(FAKE_CREDENTIALS)
    env.update(
        {
            "CORRAL_GROQ_BASE_URL": base_urls["groq"],
            "CORRAL_TOGETHER_BASE_URL": base_urls["together"],
            "CORRAL_DEEPINFRA_BASE_URL": base_urls["deepinfra"],
            "CORRAL_BEDROCK_BASE_URL": base_urls["bedrock"],
            "CORRAL_VLLM_URLS": base_urls["vllm"],
            "CORRAL_SIMULATE": "0",
            "CORRAL_CONFIG": str(config),
            "CORRAL_API_KEYS": api_key,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
        }
    )
    return env


def start_gateway(port: int, workers: int, env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "gateway.cli.main", "serve", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--log-format", "json",
    ]  # fmt: skip
    with (workdir / "gateway.log").open("ab") as log:
        return subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=log)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float = START_TIMEOUT_S) -> None:
    """Until `url` answers 200 (bounded); fails early when the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} was not ready within {timeout_s:.0f} s")


def worker_pids(supervisor: int) -> list[int]:
    """The uvicorn worker processes under a `corral serve --workers N` supervisor
    (multiprocessing's resource tracker is a child too; it is not a worker)."""
    pids = []
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children")
    try:
        listed = children.read_text().split()
    except OSError:
        return []
    for pid in map(int, listed):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in cmdline:
            pids.append(pid)
    return sorted(pids)


def rss_mb(pid: int) -> float | None:
    """Resident set size from /proc/<pid>/status; None once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stop(proc: subprocess.Popen[bytes], timeout_s: float) -> int | None:
    """SIGTERM, then wait (bounded); kill if it does not exit. The exit status, None if killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return None


def pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="test", autocommit=True, connect_timeout=5)


def create_database() -> str:
    """A fresh database of our own (nothing else on the server is touched)."""
    name = f"corral_soak_{secrets.token_hex(5)}"
    with pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url(name: str) -> str:
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def connect(name: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=name, connect_timeout=5)
