"""Fixtures of the real-vLLM suite: two real vLLM replicas (CPU build, random weights of a
tiny Llama built here) and a Corral gateway whose only backend is that pool.

When it runs:

- `CORRAL_VLLM_REAL=1`: always; a missing vLLM virtual environment is an error (run
  `tests/vllm_real/install.sh`, which `make test-vllm` does).
- otherwise, when this folder (or a file in it) is named on pytest's command line: runs if
  the vLLM venv exists, else every test is skipped with the reason.
- otherwise (e.g. `pytest tests`, as `make test` runs it): not collected at all, so the
  ordinary run never starts vLLM and stays fast.

Settings (environment): `VLLM_VENV` (default `<repo>/.venv-vllm`), `CORRAL_REPO` (the repo
root, default two folders up), `CORRAL_GATEWAY_CMD` (default `<repo>/.venv/bin/corral`;
e.g. `"/path/python -m gateway.cli.main"`), `CORRAL_GATEWAY_PYTHONPATH` (prepended to the
gateway's PYTHONPATH: to test another checkout of the gateway with the same venv),
`VLLM_REAL_STARTUP_S` (bound on a replica's start, default 300).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ.get("CORRAL_REPO") or HERE.parents[1]).resolve()


def _asked() -> bool:
    return os.environ.get("CORRAL_VLLM_REAL", "").strip().lower() in {"1", "true", "yes", "on"}


def _vllm_python() -> Path:
    venv = Path(os.environ.get("VLLM_VENV") or REPO / ".venv-vllm")
    if not venv.is_absolute():
        venv = REPO / venv
    return venv / "bin" / "python"


def _named_on_command_line(config: pytest.Config) -> bool:
    """Whether pytest was pointed at this folder or a file in it (not just at a parent)."""
    base = Path(config.invocation_params.dir)
    for arg in config.invocation_params.args:
        if arg.startswith("-"):
            continue
        path = (base / arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave the suite out of runs that did not ask for it (keeps `make test` fast)."""
    ours = collection_path.parent == HERE and collection_path.name.startswith("test_")
    if ours and not _asked() and not _named_on_command_line(config):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Not asked for and no vLLM venv: skip cleanly, saying how to run it."""
    if _asked() or _vllm_python().exists():
        return
    skip = pytest.mark.skip(
        reason=f"no vLLM venv at {_vllm_python().parent.parent} (run tests/vllm_real/install.sh, "
        "or set CORRAL_VLLM_REAL=1 to make this an error)"
    )
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(skip)


# Imported after the hooks: the harness needs httpx, which the gateway's dev venv has.
from .harness import Gateway, Replica, free_port  # noqa: E402


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    python = _vllm_python()
    if not python.exists():
        pytest.fail(f"CORRAL_VLLM_REAL=1 but there is no vLLM venv at {python.parent.parent}: run install.sh")
    return python


@pytest.fixture(scope="session")
def model_dir(vllm_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random-weight Llama's directory, built now (tokenizer trained in ~1 s)."""
    out = tmp_path_factory.mktemp("tiny-llama")
    subprocess.run([str(vllm_python), str(HERE / "model.py"), str(out)], check=True, timeout=120, capture_output=True)
    return out


@pytest.fixture(scope="session")
def replicas(vllm_python: Path, model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    """Two replicas, started together, each engine bound to its own core."""
    logs = tmp_path_factory.mktemp("vllm-logs")
    cores = os.cpu_count() or 1
    pool = [
        Replica(f"replica-{i}", vllm_python, model_dir, free_port(), logs / f"replica-{i}.log", cpu=i % cores)
        for i in range(2)
    ]
    bound = float(os.environ.get("VLLM_REAL_STARTUP_S", "300"))
    try:
        for replica in pool:
            replica.start()
        for replica in pool:
            replica.wait_healthy(bound)
        yield pool
    finally:
        for replica in pool:
            replica.stop()
        sys.stderr.write(
            "\nvLLM replica start-up (s): "
            + ", ".join(f"{r.name}: {[round(s, 1) for s in r.startup_s]}" for r in pool)
            + f"\nvLLM logs: {logs}\n"
        )


def _gateway_command() -> list[str]:
    configured = os.environ.get("CORRAL_GATEWAY_CMD")
    if configured:
        return shlex.split(configured)
    corral = REPO / ".venv" / "bin" / "corral"
    if not corral.exists():
        pytest.fail(f"{corral} is missing: run `make install` first (or set CORRAL_GATEWAY_CMD)")
    return [str(corral)]


@pytest.fixture(scope="session")
def gateway(replicas: list[Replica], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gateway")
    gw = Gateway(
        _gateway_command(),
        workdir,
        replicas,
        free_port(),
        extra_pythonpath=os.environ.get("CORRAL_GATEWAY_PYTHONPATH"),
    )
    try:
        gw.start()
        # Both replicas adopted (health and /v1/models read) before any test runs.
        deadline = time.monotonic() + 30
        while gw.healthy_replicas() != {r.url for r in replicas}:
            assert time.monotonic() < deadline, f"pool never saw both replicas healthy:\n{gw.log_tail()}"
            time.sleep(0.25)
        yield gw
    finally:
        gw.stop()
        sys.stderr.write(f"\ngateway start-up: {gw.startup_s:.1f} s; log: {gw.log_path}\n")
