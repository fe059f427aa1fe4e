"""Processes and probes for the real-vLLM suite: vLLM replicas and a Corral gateway run as
subprocesses on 127.0.0.1, Prometheus pages read as numbers, SSE streams read as events.

Nothing here imports the gateway: the suite is black-box, over HTTP only.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

#: The catalogue's vLLM model id for llama-4-scout (gateway/catalogue/deployments.yaml):
#: the replicas serve the tiny model under this name so the pool adopts them.
SCOUT_ID = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
MAVERICK_ID = "meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8"
MAX_MODEL_LEN = 2048
LOOPBACK = "127.0.0.1"

#: Variables that would switch on other backends (or point the gateway elsewhere): never
#: passed to the gateway, so the vLLM pool is its only backend.
_FOREIGN_ENV = re.compile(
    r"^(GROQ_|TOGETHER_|DEEPINFRA_|FIREWORKS_|SGLANG_|OLLAMA_|AWS_|VLLM_API_KEY$|REDIS_URL$|DATABASE_URL$"
    r"|CORRAL_|OTEL_|VERTEX_|AZURE_)"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (httpx.HTTPError, OSError, ValueError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last: {last!r})" if last else "")
            )
        time.sleep(interval)


# -- Prometheus text ---------------------------------------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def prom_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match.group(2) or ""))
        with contextlib.suppress(ValueError):
            out.append((match.group(1), labels, float(match.group(3))))
    return out


def prom_sum(text: str, name: str, **labels: str) -> float:
    """Sum of every sample of `name` whose labels include `labels`."""
    return sum(
        value
        for sample, have, value in prom_samples(text)
        if sample == name and all(have.get(k) == v for k, v in labels.items())
    )


def prom_value(text: str, name: str, **labels: str) -> float | None:
    for sample, have, value in prom_samples(text):
        if sample == name and all(have.get(k) == v for k, v in labels.items()):
            return value
    return None


# -- processes -----------------------------------------------------------------------------------


def _stop_group(proc: subprocess.Popen[bytes], *, grace: float) -> None:
    """SIGTERM the process group we started (the child leads it), then SIGKILL it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # vLLM's engine and worker processes share the group: make sure none is left behind.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@dataclass
class Replica:
    """One real vLLM OpenAI server (`python -m vllm.entrypoints.openai.api_server`)."""

    name: str
    python: Path
    model_dir: Path
    port: int
    log_path: Path
    #: Core the engine's OpenMP threads are bound to (each replica gets its own).
    cpu: int | None = None
    served_model_name: str = SCOUT_ID
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    #: Seconds from start to the first 200 on /health, per start.
    startup_s: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def command(self) -> list[str]:
        return [
            str(self.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.model_dir),
            "--load-format",
            "dummy",
            "--served-model-name",
            self.served_model_name,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--max-model-len",
            str(MAX_MODEL_LEN),
            "--dtype",
            "float32",
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            "llama4_pythonic",
            # One INFO line per request with its SamplingParams (structured_outputs included):
            # the evidence of what the gateway actually sent.
            "--enable-log-requests",
        ]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            VLLM_CPU_KVCACHE_SPACE="1",
            HF_HUB_OFFLINE="1",
            TRANSFORMERS_OFFLINE="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            # No usage statistics: this machine reaches no host but the package registries.
            VLLM_NO_USAGE_STATS="1",
            VLLM_DO_NOT_TRACK="1",
            DO_NOT_TRACK="1",
            OMP_NUM_THREADS="1",
            PYTHONUNBUFFERED="1",
        )
        if self.cpu is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = str(self.cpu)
        return env

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        log = self.log_path.open("ab")
        log.write(f"\n===== start {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
            cwd=self.log_path.parent,
            start_new_session=True,
        )
        log.close()

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float) -> float:
        """Wait for /health 200; returns the start-up time in seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}; log tail:\n{self.log_tail()}")
            if self.healthy():
                elapsed = time.monotonic() - self.started_at
                self.startup_s.append(elapsed)
                return elapsed
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not healthy after {timeout:.0f} s; log tail:\n{self.log_tail()}")
            time.sleep(1.0)

    def kill(self) -> None:
        """SIGKILL the whole replica (API server, engine core, worker) at once: a crash."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, grace=15)

    def metrics(self) -> str:
        response = httpx.get(f"{self.url}/metrics", timeout=5)
        response.raise_for_status()
        return response.text

    def finished_requests(self) -> float:
        """Requests this replica has finished (any reason): who served what, black-box."""
        return prom_sum(self.metrics(), "vllm:request_success_total")

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def received_since(self, offset: int) -> list[str]:
        """vLLM's `Received request ... params: SamplingParams(...)` lines logged after `offset`."""
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if "Received request" in line]

    def chat_posts_since(self, offset: int) -> list[str]:
        """The access-log lines of chat requests answered after `offset` (any status)."""
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
        return [line for line in text.splitlines() if '"POST /v1/chat/completions HTTP/1.1"' in line]

    def engine_threads(self) -> list[int]:
        """Thread ids of the replica's engine-core and worker processes (its process group,
        less the API server that leads it)."""
        assert self.proc is not None
        tids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                pid = int(stat.parent.name)
                if int(fields[2]) == self.proc.pid and pid != self.proc.pid:
                    tids += [int(task.name) for task in (stat.parent / "task").iterdir()]
        return tids

    @contextlib.contextmanager
    def engine_niced(self, niceness: int = 19) -> Iterator[None]:
        """Run the engine at the lowest CPU priority inside the block. On a 2-core machine a
        generating replica takes ~1.5 cores, which starves its own API server: /health and
        /metrics then answer in seconds and every probe times out. Niced, the engine only
        gets what the rest leaves, and the API server keeps answering probes promptly."""
        tids = self.engine_threads()
        for tid in tids:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, niceness)
        try:
            yield
        finally:
            for tid in tids:
                with contextlib.suppress(OSError):
                    os.setpriority(os.PRIO_PROCESS, tid, 0)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])


@dataclass
class Gateway:
    """`corral serve` as a subprocess, with the vLLM pool as its only backend."""

    command: Sequence[str]
    workdir: Path
    replicas: Sequence[Replica]
    port: int
    extra_pythonpath: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "gateway.log"

    def write_files(self) -> tuple[Path, Path]:
        """The routing policy (vLLM only, validate and re-ask once) and the config file
        (fast pool probes so the tests need not wait long for health and load to show)."""
        policy = self.workdir / "policy.yaml"
        policy.write_text(
            "version: 1\n"
            "name: vllm-real\n"
            "description: Only the self-hosted vLLM pool may serve (real vLLM test suite).\n"
            "defaults:\n"
            "  allow: [vllm]\n"
            "  retry: {attempts: 3, deadline_ms: 90000}\n"
            "  tool_calls: {mode: retry, reasks: 1}\n"
        )
        config = self.workdir / "corral.yaml"
        config.write_text(
            "providers:\n"
            "  vllm:\n"
            "    timeouts: {connect_s: 2, first_byte_s: 60, total_s: 120}\n"
            "    vllm: {health_interval_s: 2, metrics_interval_s: 0.5}\n"
        )
        return policy, config

    def env(self, policy: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not _FOREIGN_ENV.match(k)}
        env.update(
            CORRAL_VLLM_URLS=",".join(r.url for r in self.replicas),
            CORRAL_AUTH="off",
            CORRAL_SIMULATE="0",
            DATABASE_URL=f"sqlite:///{self.workdir / 'corral.db'}",
            CORRAL_POLICY=str(policy),
            PYTHONUNBUFFERED="1",
        )
        if self.extra_pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.extra_pythonpath, env.get("PYTHONPATH")) if p)
        return env

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        policy, config = self.write_files()
        argv = [*self.command, "serve", "--host", LOOPBACK, "--port", str(self.port), "--config", str(config)]
        argv += ["--log-format", "text"]
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env(policy),
                cwd=self.workdir,
                start_new_session=True,
            )

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200

        wait_until(ready, timeout=timeout, what="the gateway's /readyz")
        self.startup_s = time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc, grace=20)

    def metrics(self) -> str:
        response = httpx.get(f"{self.url}/metrics", timeout=5)
        response.raise_for_status()
        return response.text

    def replica_gauge(self, name: str, replica: Replica) -> float | None:
        return prom_value(self.metrics(), name, replica=replica.url)

    def healthy_replicas(self) -> set[str]:
        return {
            labels["replica"]
            for sample, labels, value in prom_samples(self.metrics())
            if sample == "corral_pool_replica_healthy" and value == 1.0
        }

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])


# -- traffic -------------------------------------------------------------------------------------


def chat_body(prompt: str, *, system: str | None = None, max_tokens: int = 24, **extra: Any) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    return {"model": "llama-4-scout", "messages": messages, "max_tokens": max_tokens, **extra}


@dataclass
class Counts:
    """Requests each replica finished while a block ran (from each replica's own /metrics)."""

    before: dict[str, float]
    after: dict[str, float] = field(default_factory=dict)

    def delta(self, replica: Replica) -> int:
        return round(self.after.get(replica.name, 0.0) - self.before.get(replica.name, 0.0))

    def as_dict(self) -> dict[str, int]:
        return {name: round(self.after.get(name, 0.0) - self.before[name]) for name in self.before}


@contextlib.contextmanager
def counting(replicas: Sequence[Replica], *, expect_total: int | None = None) -> Iterator[Counts]:
    """Count the requests each replica finishes inside the block. With `expect_total`,
    wait (bounded) until the counters add up to it, since a replica updates its metrics
    just after it answers."""
    live = [r for r in replicas if r.proc is not None and r.proc.poll() is None]
    counts = Counts({r.name: r.finished_requests() for r in live})
    yield counts

    def read() -> bool:
        counts.after = {r.name: r.finished_requests() for r in live}
        return expect_total is None or sum(counts.as_dict().values()) >= expect_total

    if expect_total is None:
        read()
    else:
        with contextlib.suppress(AssertionError):
            wait_until(read, timeout=5, what="replica counters", interval=0.1)


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any] | str]:
    """The `data:` payloads of an SSE response: dicts, and the final "[DONE]"."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            yield data
        elif data:
            yield json.loads(data)


def gather_tool_calls(chunks: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Streamed tool-call deltas put back together: [{id, name, arguments}]."""
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or ():
            for delta in (choice.get("delta") or {}).get("tool_calls") or ():
                call = calls.setdefault(delta["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] = delta.get("id") or call["id"]
                function = delta.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
    return [calls[i] for i in sorted(calls)]
