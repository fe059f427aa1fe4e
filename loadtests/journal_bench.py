"""What the usage journal's durability costs (gateway/metering/journal.py), measured.

For each setting, one thread appends real usage events (the journal's own encoding, one
event per append, as `QueueSink.record` does on the request path) as fast as it can, and
the time of every append is taken:

- `process` (the default): one `write()` into the kernel per event, no fsync;
- `fsync` (group commit): the same writes, and a background thread fsyncs at most every
  `journal_fsync_ms` (10 ms by default) whatever was written since;
- fsync after every append: not a setting, the reference group commit is measured against
  (the cost a request would pay if it waited for its own fsync).

Prints appends/s, per-append latency p50 / p99 / max and the fsyncs made, and the file
system the journal was on (fsync's cost depends on it: a tmpfs makes it free). Bounded:
`EVENTS` appends per setting (fewer for the per-append fsync), in a throwaway directory.

    .venv/bin/python -m loadtests.journal_bench [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.metering.journal import Journal, encode
from tests.metering.factory import event

#: Appends per setting (the per-append fsync reference makes `EVENTS // 50`).
EVENTS = 100_000
#: Distinct encoded events, appended in turn (the journal does not read them).
_DISTINCT = 1_000


@dataclass(frozen=True)
class Figures:
    label: str
    appends: int
    seconds: float
    latencies_us: list[float]
    fsyncs: int

    @property
    def per_second(self) -> float:
        return self.appends / self.seconds

    def row(self) -> str:
        ordered = sorted(self.latencies_us)
        p50 = statistics.median(ordered)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"{self.label:34s} {self.per_second:>11,.0f} {p50:>9.1f} {p99:>9.1f} {ordered[-1]:>10.1f} {self.fsyncs:>8,}"
        )


def _run(label: str, journal: Journal, appends: int, after: Callable[[], None] | None = None) -> Figures:
    lines = [encode(event(request_id=f"bench-{i}")) + b"\n" for i in range(min(appends, _DISTINCT))]
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(appends):
        begun = time.perf_counter()
        journal.append_encoded(lines[i % len(lines)])
        if after is not None:
            after()
        latencies.append((time.perf_counter() - begun) * 1e6)
    seconds = time.perf_counter() - started
    journal.close()
    return Figures(label, appends, seconds, latencies, journal.fsyncs)


def _filesystem(path: Path) -> str:
    """The mount point and type holding `path` (from /proc/mounts; "unknown" elsewhere)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    target = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) >= 3 and target.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return f"{kind} at {best}" if best else kind


def measure(directory: Path, events: int = EVENTS, fsync_ms: int = 10) -> list[Figures]:
    """The three rows, each in its own fresh journal under `directory`."""
    rows = [_run("process (default)", Journal(directory / "process" / "j", "process"), events)]
    grouped = Journal(directory / "group" / "j", "fsync", fsync_ms)
    rows.append(_run(f"fsync, group commit every {fsync_ms} ms", grouped, events))
    each = Journal(directory / "each" / "j", "process")
    rows.append(_run("fsync after every append (reference)", each, max(events // 50, 1), each.sync))
    return rows


def bench_summary(directory: Path | None = None) -> str:
    """The journal's durability costs as a table (`make bench` prints it last)."""
    base = Path(tempfile.mkdtemp(prefix="corral-journal-bench-", dir=directory))
    try:
        rows = measure(base)
        where = _filesystem(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    columns = f"{'appends/s':>11s} {'p50 µs':>9s} {'p99 µs':>9s} {'max µs':>10s} {'fsyncs':>8s}"
    head = f"{'usage journal durability':34s} {columns}"
    cpus = os.cpu_count() or 0
    notes = f"one thread, one event per append, on {where} ({cpus} CPUs)"
    return "\n".join([head, "-" * len(head), *(row.row() for row in rows), notes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the throwaway journals go (default: the temp dir)"
    )
    args = parser.parse_args()
    print(bench_summary(args.dir))


if __name__ == "__main__":
    main()
