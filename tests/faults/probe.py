"""A /healthz prober run beside an attack: the slowest answer it saw while the attack ran.
An event loop held by one request shows here as a slow (or timed-out) health check."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

#: Each probe gives up after this; a timeout counts as this long.
PROBE_TIMEOUT_S = 5.0
#: At most this many probes (the loop is bounded even if the attack never ends).
MAX_PROBES = 2000


@dataclass
class Probe:
    slowest_s: float = 0.0
    answered: int = 0
    failed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)


@contextmanager
def probing_healthz(url: str, interval_s: float = 0.02, min_probes: int = 3) -> Iterator[Probe]:
    """Probe until the block ends and at least `min_probes` probes were made."""
    probe = Probe()

    def run() -> None:
        with httpx.Client(base_url=url, timeout=PROBE_TIMEOUT_S) as client:
            for _ in range(MAX_PROBES):
                if probe._stop.is_set():
                    return
                started = time.perf_counter()
                try:
                    ok = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    ok = False
                took = PROBE_TIMEOUT_S if not ok else time.perf_counter() - started
                probe.slowest_s = max(probe.slowest_s, took)
                probe.answered += ok
                probe.failed += not ok
                time.sleep(interval_s)

    thread = threading.Thread(target=run, name="healthz-probe", daemon=True)
    thread.start()
    try:
        yield probe
    finally:
        for _ in range(200):
            if probe.answered + probe.failed >= min_probes:
                break
            time.sleep(0.05)
        probe._stop.set()
        thread.join(PROBE_TIMEOUT_S * 2)


def rss_bytes() -> int:
    """This process's resident set size now (the gateway under test runs in it)."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass
class Peak:
    start: int
    highest: int

    @property
    def growth(self) -> int:
        return self.highest - self.start


@contextmanager
def peak_rss(interval_s: float = 0.01, max_samples: int = 100_000) -> Iterator[Peak]:
    """The highest RSS sampled while the block runs."""
    start = rss_bytes()
    peak = Peak(start, start)
    stop = threading.Event()

    def sample() -> None:
        for _ in range(max_samples):
            if stop.is_set():
                return
            peak.highest = max(peak.highest, rss_bytes())
            time.sleep(interval_s)

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join(5)
        peak.highest = max(peak.highest, rss_bytes())
