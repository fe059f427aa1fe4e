"""`make bench`: the gateway's own overhead, measured.

Starts a fast fake upstream (DeepInfra's dialect, no added latency), one gateway worker
and a bare FastAPI + aiohttp pass-through (loadtests/passthrough.py, the control) pointed
at it, then runs wrk against the fake directly, then through the control and through the
gateway in alternating rounds (control then gateway, gateway then control, ...), for
non-streamed and streamed chat at concurrency 1 and 32. It prints requests/s and p50 /
p99 / p99.9 / max latency for each, the gateway's added p50 over the upstream alone, and
the gateway's tail and throughput against the control's (the targets: p99 at most 2x the
control's at one connection and 1.5x at 32, throughput at least 90% of the control's).
Also reports the router's decision time and the gateway's RSS after the load.

Why rounds: on a shared 2-core VM the machine's speed drifts by tens of percent within a
minute (for the same code, chat at one connection: 82% in one 8 s run of each, 94-95% in
two more minutes later, 80% to 105% in 3 s rounds), so one run of each says more about
the drift than about the gateway. Each round pairs the two
back to back; a cell reports the medians over its rounds (rates, percentiles, CPU per
request, and the gateway-to-control ratios taken round by round) and the largest max.
Everything runs on loopback and every run is bounded in time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import free_port

HERE = Path(__file__).resolve().parent
MODEL_ID = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
FAKE_KEY = "test-deepinfra-key"
LUA = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  io.write(string.format("tail-us p999=%d max=%d\\n", latency:percentile(99.9), latency.max))
end
"""


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: int
    requests: int = 0
    #: CPU time the measured server process used per request during the run (None: not asked).
    cpu_us: float | None = None

    def tail(self) -> str:
        return f"{self.p50_ms:.2f} / {self.p99_ms:.2f} / {self.p999_ms:.2f} / {self.max_ms:.1f}"


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, body: str, key: str, connections: int, seconds: int, server_pid: int | None = None) -> WrkResult:
    """One wrk run; with `server_pid`, also that server's CPU time per request over the run."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(body=body, key=key))
    cpu_before = cpu_seconds(server_pid) if server_pid is not None else 0.0
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    cpu_used = cpu_seconds(server_pid) - cpu_before if server_pid is not None else None
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored to the "Latency Distribution" lines ("+/- Stdev" columns can end in "50%" too).
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    tail = re.search(r"tail-us p999=(\d+) max=(\d+)", out)
    p999, top = (int(tail.group(1)) / 1000, int(tail.group(2)) / 1000) if tail else (float("nan"), float("nan"))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    cpu_us = cpu_used / requests * 1e6 if cpu_used is not None and requests else None
    return WrkResult(rps, p50, p99, p999, top, errors, requests, cpu_us)


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def routing_decision_us() -> tuple[float, int]:
    """Median time of one routing decision (the pure planner) on a typical request, with
    every catalogued provider configured; also how many deployments it weighed."""
    from gateway.catalogue.deployments import load_catalogue
    from gateway.catalogue.prices import load_price_book
    from gateway.dispatch.loop import Dispatcher
    from gateway.live.state import LiveState
    from gateway.schema.chat import ChatRequest, CorralPrefs

    catalogue = load_catalogue()
    providers = dict.fromkeys(catalogue.providers)
    dispatcher = Dispatcher(providers, catalogue, load_price_book(), LiveState())  # type: ignore[arg-type]
    dispatcher._refusal = lambda req, dep: None  # type: ignore[method-assign]
    req = ChatRequest(
        body={},
        model="llama-4-scout",
        stream=False,
        include_usage=False,
        features=frozenset({"tools"}),
        prompt_tokens_estimate=900,
        max_output_tokens=256,
        prefs=CorralPrefs(),
    )
    samples = []
    for _ in range(50):
        start = time.perf_counter()
        for _ in range(200):
            dispatcher.plan(req)
        samples.append((time.perf_counter() - start) / 200 * 1e6)
    return statistics.median(samples), len(catalogue.deployments(req.model))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating control/gateway rounds per cell")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("make bench needs wrk (Debian package 'wrk'): apt-get install -y wrk")
    python = sys.executable
    decision_us, weighed = routing_decision_us()  # measured first, on a quiet machine
    fake_port, gw_port, bare_port = free_port(), free_port(), free_port()
    tmp = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    env = {
        **os.environ,
        "CORRAL_SIMULATE": "0",
        "CORRAL_AUTH": "off",  # measure the gateway, not key management
        "CORRAL_DEEPINFRA_BASE_URL": f"http://127.0.0.1:{fake_port}/v1/openai",
        "DEEPINFRA_API_KEY": FAKE_KEY,
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.db'}",
    }
    env.pop("REDIS_URL", None)
    fake = subprocess.Popen(
        [python, "-m", "gateway.fakes", "deepinfra", "--port", str(fake_port), "--no-record"], stdout=subprocess.DEVNULL
    )
    gateway_log = (tmp / "gateway.log").open("wb")
    gateway = subprocess.Popen(
        # All features on, the access log included: one JSON line per request, written to a
        # file as a log collector would read it.
        [python, "-m", "gateway.cli.main", "serve", "--port", str(gw_port), "--log-level", "info"],
        env=env,
        cwd=tmp,
        stdout=gateway_log,
        stderr=subprocess.STDOUT,
    )
    bare = subprocess.Popen(
        [
            python,
            "-m",
            "loadtests.passthrough",
            "--port",
            str(bare_port),
            "--upstream",
            f"http://127.0.0.1:{fake_port}/v1/openai",
        ]
    )
    try:
        wait_ready(f"http://127.0.0.1:{fake_port}/", fake)
        wait_ready(f"http://127.0.0.1:{gw_port}/healthz", gateway)
        wait_ready(f"http://127.0.0.1:{bare_port}/docs", bare)
        print(run_table(fake_port, gw_port, bare_port, args.seconds, pids=(bare.pid, gateway.pid), rounds=args.rounds))
        print(f"\nrouting decision (planner, {weighed} deployments): {decision_us:.1f} µs median")
        print(f"gateway RSS after the load: {rss_mb(gateway.pid):.0f} MB")
    finally:
        for proc in (gateway, bare, fake):
            proc.send_signal(signal.SIGTERM)
        for proc in (gateway, bare, fake):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        gateway_log.close()
        shutil.rmtree(tmp, ignore_errors=True)

    # --- Response cache: a hit's latency and throughput (loadtests/cache_bench.py owns it) ---
    from loadtests.cache_bench import cache_table

    print("\n" + cache_table(args.seconds))

    # --- Mixed traffic: a short run of the soak suite's scenario (loadtests/soak.py owns it) ---
    from loadtests.soak import bench_summary

    print("\n" + bench_summary())

    # --- The usage journal's durability settings (loadtests/journal_bench.py owns it) ---
    from loadtests.journal_bench import bench_summary as journal_summary

    print("\n" + journal_summary())


def median_of(runs: list[WrkResult]) -> WrkResult:
    """One cell's figures over its rounds: medians, except the largest max and the summed
    requests and errors."""

    def mid(values: list[float]) -> float:
        return statistics.median(values)

    cpu = [r.cpu_us for r in runs if r.cpu_us is not None]
    return WrkResult(
        rps=mid([r.rps for r in runs]),
        p50_ms=mid([r.p50_ms for r in runs]),
        p99_ms=mid([r.p99_ms for r in runs]),
        p999_ms=mid([r.p999_ms for r in runs]),
        max_ms=max(r.max_ms for r in runs),
        errors=sum(r.errors for r in runs),
        requests=sum(r.requests for r in runs),
        cpu_us=mid(cpu) if cpu else None,
    )


CONTROL, GATEWAY = 0, 1
#: The targets against the control: p99 at most this many times the control's, by connections
#: (one, or many), and a throughput share at least `MIN_SHARE`.
MAX_P99_RATIO = {1: 2.0, 32: 1.5}
MIN_SHARE = 0.90


def verdict(connections: int, share: float, p99_ratio: float) -> str:
    """`met`, or which target a cell missed and by how much (shown as rounded in the table)."""
    missed = []
    limit = MAX_P99_RATIO[1] if connections == 1 else MAX_P99_RATIO[32]
    if p99_ratio > limit:
        missed.append(f"p99 {p99_ratio:.2f}x > {limit:g}x")
    if share < MIN_SHARE:
        missed.append(f"throughput {share:.1%} < {MIN_SHARE:.0%}")
    return "met" if not missed else "missed: " + "; ".join(missed)


def round_order(round_: int) -> tuple[int, int]:
    """Who runs first in a round: the control in even rounds, the gateway in odd ones, so that
    a drift of the machine's speed within a round favours neither (ABBA)."""
    return (CONTROL, GATEWAY) if round_ % 2 == 0 else (GATEWAY, CONTROL)


def run_table(
    fake_port: int, gw_port: int, bare_port: int, seconds: int, pids: tuple[int, int], rounds: int = 3
) -> str:
    """`pids`: the bare pass-through's and the gateway's processes, whose CPU time per
    request is reported beside the rates: at 32 connections each server is held to one
    core, so its rate is the inverse of that figure, and the figure moves much less than
    the rate when the machine's other tenants take CPU between two runs. Each cell is
    `rounds` pairs of runs (`round_order`)."""
    direct_url = f"http://127.0.0.1:{fake_port}/v1/openai/chat/completions"
    bare_url = f"http://127.0.0.1:{bare_port}/v1/chat/completions"
    gw_url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
    messages = '[{"role": "user", "content": "Give me one short sentence about llamas."}]'
    lines = [
        "| mode | c | direct req/s | bare pass-through req/s | Corral req/s (of bare) "
        "| bare p50 / p99 / p99.9 / max ms | Corral p50 / p99 / p99.9 / max ms "
        "| added p50 ms | Corral p99 / bare p99 | server CPU µs per request: bare / Corral (bare ÷ Corral) "
        "| rounds: Corral ÷ bare req/s | errors | targets |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for stream in (False, True):
        flag = "true" if stream else "false"
        direct_body = f'{{"model": "{MODEL_ID}", "messages": {messages}, "max_tokens": 32, "stream": {flag}}}'
        gw_body = f'{{"model": "llama-4-scout", "messages": {messages}, "max_tokens": 32, "stream": {flag}}}'
        wrk(gw_url, gw_body, FAKE_KEY, 8, 2)  # warm-up
        wrk(bare_url, direct_body, FAKE_KEY, 8, 2)
        for connections in (1, 32):
            direct = wrk(direct_url, direct_body, FAKE_KEY, connections, seconds)
            bares: list[WrkResult] = []
            throughs: list[WrkResult] = []
            for round_ in range(rounds):
                for server in round_order(round_):
                    if server == CONTROL:
                        bares.append(wrk(bare_url, direct_body, FAKE_KEY, connections, seconds, server_pid=pids[0]))
                    else:
                        throughs.append(wrk(gw_url, gw_body, FAKE_KEY, connections, seconds, server_pid=pids[1]))
            bare, through = median_of(bares), median_of(throughs)
            shares = [t.rps / b.rps for b, t in zip(bares, throughs, strict=True)]
            p99_ratio = statistics.median(t.p99_ms / b.p99_ms for b, t in zip(bares, throughs, strict=True))
            cpu_ratio = statistics.median(
                (b.cpu_us or 0.0) / t.cpu_us for b, t in zip(bares, throughs, strict=True) if t.cpu_us
            )
            lines.append(
                f"| {'stream' if stream else 'chat'} | {connections} | {direct.rps:,.0f} | {bare.rps:,.0f} | "
                f"{through.rps:,.0f} ({statistics.median(shares):.0%}) | {bare.tail()} | {through.tail()} | "
                f"{through.p50_ms - direct.p50_ms:.2f} | {p99_ratio:.2f}x | "
                f"{bare.cpu_us or 0.0:.0f} / {through.cpu_us or 0.0:.0f} ({cpu_ratio:.0%}) | "
                f"{' '.join(f'{s:.0%}' for s in shares)} | "
                f"{direct.errors + bare.errors + through.errors} | "
                f"{verdict(connections, statistics.median(shares), p99_ratio)} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
