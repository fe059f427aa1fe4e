"""The soak's report: what the load generator saw, checked against the ledger and the
workers' memory, and the verdict (`Report.failures` empty means the soak passed).

Added latency is measured per request as the client's time minus the upstream time the
gateway itself recorded in the ledger (the sum of `ledger_attempts.latency_ms`, which
spans sending the upstream request to having its answer, or for a stream its first
chunk). So it is what Corral costs a caller on top of the backends, including the
loopback hops and the load generator's own scheduling on this machine; the part spent
inside the gateway process (ledger row latency minus upstream) is shown beside it.
Non-streamed requests compare whole answers, streams the time to the first content chunk.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

import psycopg

from loadtests.soak_client import Result
from loadtests.soak_mix import MIX, failing_share

INVALID_TOOL_CALLS = "tool_calls_invalid"


@dataclass(frozen=True, slots=True)
class RssSample:
    at_s: float
    replica: int
    pid: int
    mb: float


@dataclass(frozen=True, slots=True)
class LedgerRow:
    status: str
    provider: str
    gateway_ms: float
    upstream_ms: float
    attempts: int


@dataclass(slots=True)
class LedgerCheck:
    expected: int
    found: int
    missing: list[str]
    duplicated: list[str]
    #: Rows whose request id the load generator never got an answer for.
    unexpected: int


@dataclass(slots=True)
class Report:
    seconds: float
    concurrency: int
    replicas: int
    workers: int
    warmup_s: float
    results: list[Result]
    ledger: LedgerCheck
    rows: dict[str, LedgerRow]
    rss: list[RssSample]
    drain_status: list[int | None]
    max_rss_growth_pct: float
    failures: list[str] = field(default_factory=list)


def read_ledger(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[dict[str, LedgerRow], list[str]]:
    """Every request row with its upstream time; and request ids stored more than once."""
    attempts: dict[str, list[tuple[str, str | None, float]]] = {}
    query = "SELECT request_id, provider || '/' || model_id, error_kind, latency_ms FROM ledger_attempts ORDER BY seq"
    for request_id, deployment, error_kind, latency_ms in conn.execute(query):
        kind = None if error_kind is None else str(error_kind)
        attempts.setdefault(str(request_id), []).append((str(deployment), kind, float(cast(float, latency_ms))))
    rows: dict[str, LedgerRow] = {}
    query = "SELECT request_id, status, provider, stream, latency_ms, ttft_ms FROM ledger_requests"
    for request_id, status, provider, stream, latency_ms, ttft_ms in conn.execute(query):
        mine = attempts.get(str(request_id), [])
        # A stream's row latency covers the whole stream; its upstream time ends at the first chunk.
        gateway_ms = float(cast(float, ttft_ms if stream and ttft_ms is not None else latency_ms))
        rows[str(request_id)] = LedgerRow(str(status), str(provider), gateway_ms, upstream_ms(mine), len(mine))
    dup_query = "SELECT request_id FROM ledger_requests GROUP BY request_id HAVING COUNT(*) > 1"
    duplicated = [str(r[0]) for r in conn.execute(dup_query)]
    return rows, duplicated


def upstream_ms(attempts: list[tuple[str, str | None, float]]) -> float:
    """Upstream time of one request from its attempts (deployment, error kind, ms), in order.
    An invalid tool-call answer that was re-asked on the same deployment is already inside
    the latency of the attempt that follows it there, so it is not counted twice."""
    total = 0.0
    for index, (deployment, kind, latency) in enumerate(attempts):
        later = attempts[index + 1 :]
        covered = kind == INVALID_TOOL_CALLS and any(d == deployment and k != INVALID_TOOL_CALLS for d, k, _ in later)
        if not covered:
            total += latency
    return total


def check_ledger(results: list[Result], rows: dict[str, LedgerRow], duplicated_rows: list[str]) -> LedgerCheck:
    expected_ids = [r.request_id for r in results if r.expects_row and r.request_id]
    seen = Counter(expected_ids)
    duplicated = sorted(set(duplicated_rows) | {rid for rid, n in seen.items() if n > 1})
    expected = set(expected_ids)
    answered = {r.request_id for r in results if r.request_id}
    return LedgerCheck(
        expected=len(expected),
        found=len(expected & rows.keys()),
        missing=sorted(expected - rows.keys()),
        duplicated=duplicated,
        unexpected=len(rows.keys() - answered),
    )


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _added(results: Iterable[Result], rows: dict[str, LedgerRow]) -> tuple[list[float], list[float]]:
    """(client-side added ms, in-gateway ms) for successful requests with a ledger row."""
    client, inside = [], []
    for r in results:
        row = rows.get(r.request_id or "")
        if r.ok and row is not None and row.attempts:
            client.append(r.first_ms - row.upstream_ms)
            inside.append(row.gateway_ms - row.upstream_ms)
    return client, inside


def rss_by_worker(report: Report) -> list[tuple[int, int, float, float]]:
    """(replica, pid, MB at the end of warm-up, MB at the end) per worker process."""
    out = []
    for replica, pid in sorted({(s.replica, s.pid) for s in report.rss}):
        mine = [s for s in report.rss if s.pid == pid]
        after = [s for s in mine if s.at_s >= report.warmup_s] or mine[-1:]
        out.append((replica, pid, after[0].mb, mine[-1].mb))
    return out


def judge(report: Report) -> None:
    """Fill `report.failures`: incomplete ledger, unexpected errors, memory growth, a bad drain."""
    ledger = report.ledger
    if ledger.missing:
        report.failures.append(f"{len(ledger.missing)} answered requests have no ledger row")
    if ledger.duplicated:
        report.failures.append(f"{len(ledger.duplicated)} request ids appear more than once")
    wrong = [r for r in report.results if not r.correct]
    if wrong:
        report.failures.append(f"{len(wrong)} requests got a wrong answer (unexpected errors)")
    for replica, pid, start, end in rss_by_worker(report):
        growth = (end - start) / start * 100 if start else 0.0
        if growth > report.max_rss_growth_pct:
            report.failures.append(f"replica {replica} worker {pid}: RSS grew {growth:.1f}% after warm-up")
    if len({s.pid for s in report.rss}) > report.replicas * report.workers:
        report.failures.append("a gateway worker was replaced during the run (it died)")
    if any(status != 0 for status in report.drain_status):
        report.failures.append(f"gateway exit statuses after SIGTERM: {report.drain_status}")
    if not report.results:
        report.failures.append("no requests were answered")


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1f}"


def _latency_lines(report: Report) -> list[str]:
    lines = ["added latency, ms (client time minus upstream time from the ledger; streams: first chunk):"]
    lines.append(f"  {'class':<18} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7}   in-gateway p50/p99")
    for kind in [*MIX, "all"]:
        chosen = [r for r in report.results if kind in {"all", r.kind}]
        client, inside = _added(chosen, report.rows)
        if not client:
            continue
        p = [_fmt(percentile(client, q)) for q in (50, 95, 99)]
        lines.append(
            f"  {kind:<18} {len(client):>6} {p[0]:>7} {p[1]:>7} {p[2]:>7}   "
            f"{_fmt(percentile(inside, 50))} / {_fmt(percentile(inside, 99))}"
        )
    return lines


def _status_lines(report: Report) -> list[str]:
    total = len(report.results)
    statuses = Counter(f"{r.status} {r.error}" for r in report.results if not r.ok)
    errors = sum(statuses.values())
    lines = [
        f"errors: {errors} of {total} ({errors / total * 100 if total else 0:.2f}%; "
        f"requests allowed to fail are {failing_share() * 100:.0f}% of the mix)"
    ]
    lines += [f"  {status}: {count}" for status, count in sorted(statuses.items())]
    unexpected = Counter(f"{r.kind} -> {r.status} {r.error}" for r in report.results if not r.correct)
    lines += [f"  unexpected: {what}: {count}" for what, count in sorted(unexpected.items())]
    return lines


def _rss_lines(report: Report) -> list[str]:
    lines = [f"RSS per gateway worker (warm-up: first {report.warmup_s:.0f} s):"]
    for replica, pid, start, end in rss_by_worker(report):
        growth = (end - start) / start * 100 if start else 0.0
        lines.append(
            f"  replica {replica} pid {pid}: {start:.1f} MB after warm-up -> {end:.1f} MB at the end "
            f"({end - start:+.1f} MB, {growth:+.1f}%)"
        )
    lines.append("  over time (sum of all workers, MB): " + _rss_series(report))
    return lines


def _rss_series(report: Report, points: int = 12) -> str:
    times = sorted({s.at_s for s in report.rss})
    if not times:
        return "no samples"
    step = max(1, len(times) // points)
    picked = [*times[::step], times[-1]] if times[::step][-1] != times[-1] else times[::step]
    parts = []
    for at in picked:
        total = sum(s.mb for s in report.rss if s.at_s == at)
        parts.append(f"{at:.0f}s {total:.0f}")
    return ", ".join(parts)


def summary(report: Report) -> str:
    """A few lines for `make bench`: throughput, added latency, errors, ledger, verdict."""
    client, _ = _added(report.results, report.rows)
    wrong = sum(not r.correct for r in report.results)
    ledger = report.ledger
    p50, p95, p99 = (_fmt(percentile(client, q)) for q in (50, 95, 99))
    return "\n".join(
        [
            f"mixed traffic ({report.seconds:.0f} s, {report.replicas} replicas x {report.workers} workers, "
            f"c={report.concurrency}, fakes with realistic latency; loadtests/soak.py):",
            f"  {len(report.results) / report.seconds:.1f} answers/s; "
            f"added latency p50/p95/p99 {p50} / {p95} / {p99} ms",
            f"  wrong answers {wrong} of {len(report.results)}; ledger rows {ledger.found} of {ledger.expected} "
            f"(missing {len(ledger.missing)}, duplicated {len(ledger.duplicated)}); "
            + ("PASS" if not report.failures else "FAIL: " + "; ".join(report.failures)),
        ]
    )


def _served_by(rows: dict[str, LedgerRow]) -> str:
    counts = Counter(row.provider or "(none: failed)" for row in rows.values())
    return ", ".join(f"{provider} {count}" for provider, count in counts.most_common())


def render(report: Report) -> str:
    results = report.results
    ok = sum(r.ok for r in results)
    ledger = report.ledger
    lines = [
        f"soak: {report.replicas} replicas x {report.workers} workers, concurrency {report.concurrency}, "
        f"{report.seconds:.0f} s of load",
        f"throughput: {len(results) / report.seconds:.1f} answers/s ({ok / report.seconds:.1f} successful/s), "
        f"{len(results)} requests",
        "mix: " + ", ".join(f"{kind} {sum(r.kind == kind for r in results)}" for kind in MIX),
        "served by (ledger): " + _served_by(report.rows),
        *_status_lines(report),
        *_latency_lines(report),
        *_rss_lines(report),
        f"ledger (after SIGTERM drained the gateways): expected {ledger.expected}, found {ledger.found}, "
        f"missing {len(ledger.missing)}, duplicated {len(ledger.duplicated)}, rows without an answer "
        f"{ledger.unexpected}",
    ]
    if ledger.missing:
        lines.append("  missing ids (first 5): " + ", ".join(ledger.missing[:5]))
    lines.append("verdict: " + ("PASS" if not report.failures else "FAIL: " + "; ".join(report.failures)))
    return "\n".join(lines)
