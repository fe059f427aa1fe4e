"""Metrics that add up across `corral serve --workers N`: prometheus-client's multiprocess
mode. The supervisor gives the workers one fresh directory (`PROMETHEUS_MULTIPROC_DIR`,
exported before they are spawned, so their prometheus-client writes every counter and
histogram value to a memory-mapped file of its own); any worker's scrape sums the files of
every worker, the dead ones' included, so counters never go backwards when a worker is
replaced. Gauges that are per worker (the ledger backlog) are summed over live workers
only: a worker marks its files dead when it stops, and a scrape sweeps the files of
workers that died without stopping (killed), so a dead worker's backlog is not counted.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def directory() -> str | None:
    """The shared directory when this process is one of several workers (else None)."""
    return os.environ.get(ENV) or None


def prepare() -> Path:
    """In the supervisor, before the workers start: the operator's directory emptied of a
    previous run's files (prometheus-client requires it), or a fresh temporary one."""
    given = directory()
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="corral-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[ENV] = str(path)
    return path


def registry(path: str) -> CollectorRegistry:
    """A registry that reads every worker's files (add the live collector to it)."""
    Path(path).mkdir(parents=True, exist_ok=True)
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]
    return merged


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead(path: str) -> None:
    """Drop the live-gauge files of workers that are gone (a directory listing per scrape)."""
    pids = {int(m.group(1)) for name in os.listdir(path) if (m := _LIVE_FILE.match(name))}
    for pid in pids:
        if not _alive(pid):
            mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def stopped(path: str) -> None:
    """This worker is stopping: its live gauges no longer count."""
    mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
