"""`make soak`: sustained mixed traffic through two gateway replicas, then the books checked.

    python -m loadtests.soak --minutes 10 --concurrency 32

Starts a fake of every backend with its own latency profile (see `soak_stack.PROFILES`),
a throwaway PostgreSQL database, and `--replicas` gateways of `--workers` worker
processes each, sharing that database and Redis (`--redis-url`, its own DB index). The
load generator spreads its connections over the replicas and sends the mix in
`soak_mix` (short chats, ~4k-token prompts, streams, tool calls, tool calls the fake
answers with broken arguments so repair and re-ask run, and a few deliberately broken
requests). Every few seconds it samples each worker's RSS from /proc. At the end it
SIGTERMs the gateways (they drain in-flight requests and the ledger queue), then matches
the ledger against the answers it got, by request id.

Prints throughput, errors by status, added latency (method in `soak_report`), RSS per
worker after warm-up and at the end, and ledger rows expected/found/missing/duplicated.
Exits 1 when rows are missing or duplicated, a request that should have succeeded did
not, a worker's RSS grew more than `--max-rss-growth-pct` after warm-up, or a gateway
did not drain cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtests import soak_stack as stack
from loadtests.soak_client import Result, generate
from loadtests.soak_report import Report, RssSample, check_ledger, judge, read_ledger, render, summary
from tests.support import free_port

#: The gateway's SIGTERM grace (30 s) plus time for the ledger queue to drain.
DRAIN_TIMEOUT_S = 90.0
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"


@dataclass(frozen=True, slots=True)
class SoakOptions:
    seconds: float
    concurrency: int = 32
    replicas: int = 2
    workers: int = 2
    warmup_s: float = 60.0
    rss_interval_s: float = 5.0
    max_rss_growth_pct: float = 10.0
    redis_url: str = DEFAULT_REDIS_URL
    keep: bool = False
    quiet: bool = False


class RssSampler(threading.Thread):
    """Every `interval_s`, the RSS of every worker of every replica (found afresh each
    time, so a replaced worker shows up as a new pid); prints progress now and then."""

    def __init__(self, supervisors: list[int], interval_s: float, answers: list[Result], quiet: bool) -> None:
        super().__init__(name="soak-rss", daemon=True)
        self.supervisors = supervisors
        self.interval_s = interval_s
        self.answers = answers
        self.quiet = quiet
        self.samples: list[RssSample] = []
        self.started_at = time.monotonic()
        self.halt = threading.Event()

    def sample(self) -> None:
        at = time.monotonic() - self.started_at
        for replica, supervisor in enumerate(self.supervisors):
            for pid in stack.worker_pids(supervisor):
                mb = stack.rss_mb(pid)
                if mb is not None:
                    self.samples.append(RssSample(at, replica, pid, mb))

    def run(self) -> None:
        last_print = 0.0
        while not self.halt.wait(self.interval_s):
            self.sample()
            at = time.monotonic() - self.started_at
            if not self.quiet and at - last_print >= 30:
                last_print = at
                total = sum(s.mb for s in self.samples if s.at_s == self.samples[-1].at_s) if self.samples else 0
                print(f"  {at:5.0f} s: {len(self.answers)} answers, workers' RSS {total:.0f} MB", flush=True)


@contextlib.contextmanager
def _fakes(log: Path) -> Iterator[dict[str, str]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with log.open("ab") as out:
            urls = {}
            for profile in stack.PROFILES:
                proc, url = stack.start_fake(profile, out)
                procs.append(proc)
                urls[profile.provider] = url
        yield urls
    finally:
        for proc in procs:
            stack.stop(proc, 10)


@contextlib.contextmanager
def _database(keep: bool) -> Iterator[str]:
    name = stack.create_database()
    try:
        yield name
    finally:
        if not keep:
            stack.drop_database(name)


def _start_gateways(opts: SoakOptions, env: dict[str, str], workdir: Path) -> list[tuple[subprocess.Popen[bytes], int]]:
    gateways = []
    for replica in range(opts.replicas):
        port = free_port()
        gateways.append((stack.start_gateway(port, opts.workers, env, workdir / f"replica{replica}"), port))
    for proc, port in gateways:
        stack.wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        _wait_workers(proc, opts.workers)
    return gateways


def _wait_workers(proc: subprocess.Popen[bytes], workers: int, timeout_s: float = stack.START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while len(stack.worker_pids(proc.pid)) < workers:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"gateway {proc.pid}: {workers} workers did not start")
        time.sleep(0.2)


def run_soak(opts: SoakOptions) -> Report:
    """Start everything, load it for `opts.seconds`, drain, check; never leaves processes behind."""
    workdir = Path(tempfile.mkdtemp(prefix="corral-soak-"))
    api_key = "soak-" + secrets.token_hex(12)
    keep_logs = opts.keep
    db = ""
    try:
        with _fakes(workdir / "fakes.log") as urls, _database(opts.keep) as db:
            config = stack.write_config(workdir / "soak-config.yaml")
            env = stack.gateway_env(urls, stack.database_url(db), opts.redis_url, api_key, config)
            gateways = _start_gateways(opts, env, workdir)
            try:
                report = _load(opts, gateways, api_key)
            finally:
                drained = [stack.stop(proc, DRAIN_TIMEOUT_S) for proc, _ in gateways]
            with stack.connect(db) as conn:
                rows, duplicated = read_ledger(conn)
        report.drain_status = drained
        report.rows = rows
        report.ledger = check_ledger(report.results, rows, duplicated)
        judge(report)
        keep_logs = keep_logs or bool(report.failures)
        return report
    except BaseException:
        keep_logs = True
        raise
    finally:
        if keep_logs:
            print(f"soak: logs kept in {workdir}" + (f", ledger database {db}" if opts.keep else ""), file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _load(opts: SoakOptions, gateways: list[tuple[subprocess.Popen[bytes], int]], api_key: str) -> Report:
    urls = [f"http://127.0.0.1:{port}/v1/chat/completions" for _, port in gateways]
    answers: list[Result] = []
    sampler = RssSampler([proc.pid for proc, _ in gateways], opts.rss_interval_s, answers, opts.quiet)
    sampler.sample()
    sampler.start()
    started = time.monotonic()
    try:
        asyncio.run(generate(urls, api_key, concurrency=opts.concurrency, seconds=opts.seconds,
                             on_result=answers.append))  # fmt: skip
    finally:
        elapsed = time.monotonic() - started
        sampler.halt.set()
        sampler.join(opts.rss_interval_s + 5)
        sampler.sample()
    return Report(
        seconds=elapsed,
        concurrency=opts.concurrency,
        replicas=opts.replicas,
        workers=opts.workers,
        warmup_s=opts.warmup_s,
        results=answers,
        ledger=check_ledger([], {}, []),
        rows={},
        rss=sampler.samples,
        drain_status=[],
        max_rss_growth_pct=opts.max_rss_growth_pct,
    )


def bench_summary(seconds: float = 25.0) -> str:
    """The short mixed run `make bench` ends with (RSS is not judged in so short a run)."""
    opts = SoakOptions(seconds=seconds, concurrency=16, warmup_s=seconds, max_rss_growth_pct=1000, quiet=True)
    return summary(run_soak(opts))


def parse_args(argv: list[str] | None = None) -> SoakOptions:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the load (default 10)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="worker processes per replica")
    parser.add_argument("--warmup-s", type=float, default=None, help="default: 10%% of the run, at most 60 s")
    parser.add_argument("--rss-interval-s", type=float, default=5.0)
    parser.add_argument("--max-rss-growth-pct", type=float, default=10.0)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--keep", action="store_true", help="keep the ledger database and the logs")
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    warmup = args.warmup_s if args.warmup_s is not None else min(60.0, seconds * 0.1)
    return SoakOptions(
        seconds=seconds,
        concurrency=args.concurrency,
        replicas=args.replicas,
        workers=args.workers,
        warmup_s=warmup,
        rss_interval_s=args.rss_interval_s,
        max_rss_growth_pct=args.max_rss_growth_pct,
        redis_url=args.redis_url,
        keep=args.keep,
    )


def main(argv: list[str] | None = None) -> None:
    opts = parse_args(argv)
    print(f"soak: {opts.seconds:.0f} s at concurrency {opts.concurrency}, warm-up {opts.warmup_s:.0f} s", flush=True)
    report = run_soak(opts)
    print(render(report))
    sys.exit(1 if report.failures else 0)


if __name__ == "__main__":
    main()
