"""The ledger's figures, measured against the local PostgreSQL (loopback only, bounded):

1. writer throughput: events recorded as fast as the loop allows, until every request
   row is in PostgreSQL (request rows/s, each with one attempt row);
2. metering's added latency on the request path: the time `QueueSink.record` takes
   (journal append + queue put) while the writer runs;
3. report time: one month of 1M requests generated in SQL, then the provider x day
   report (and provider x model x team) timed.

Runs in a throwaway database `corral_bench_<hex>` that it drops at the end.

    .venv/bin/python -m loadtests.ledger_bench [--events 50000] [--month-rows 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import psycopg

from gateway.metering.reports import SpendQuery, spend
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.metering.factory import event
from tests.metering.pg import admin_connection, pg_url

MONTH_SQL = """
INSERT INTO ledger_requests
SELECT 'b' || g, ts, ts::date, ts, 'key_' || (g % 40), 'team_' || (g % 12), 'p' || (g % 30), '{}',
       m, p, 'model-' || p, 'ok', false, 120.0, 40.0, 1, NULL, 1200, 300, 0, false, 0.000178, NULL, ''
FROM (SELECT g, timestamptz '2026-11-01' + (g % 2592000) * interval '1 second' AS ts,
             (ARRAY['groq','together','deepinfra','bedrock','vllm'])[1 + g % 5] AS p,
             (ARRAY['llama-4-scout','llama-4-maverick'])[1 + (g / 7) % 2] AS m
      FROM generate_series(1, %(rows)s) g) s;
INSERT INTO ledger_attempts
SELECT request_id, 0, at, day, provider, model, model_id, api_key_id, team, project, 'ok', 200, NULL,
       prompt_tokens, completion_tokens, cached_tokens, false, cost_usd, latency_ms, true, false
FROM ledger_requests;
ANALYZE ledger_requests; ANALYZE ledger_attempts;
"""


@contextmanager
def throwaway_database() -> Iterator[str]:
    name = f"corral_bench_{secrets.token_hex(6)}"
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def writer_throughput(url: str, events: int) -> tuple[float, list[int]]:
    store = SqlStore(url)
    store.ensure_schema()
    batch = [event(f"w{i}") for i in range(events)]
    record_ns: list[int] = []
    with tempfile.TemporaryDirectory() as directory:
        sink = QueueSink(store, Path(directory) / "usage.journal", max_queue=20_000)
        await sink.start()
        started = time.perf_counter()
        for index, item in enumerate(batch):
            before = time.perf_counter_ns()
            sink.record(item)
            record_ns.append(time.perf_counter_ns() - before)
            if index % 500 == 499:
                await asyncio.sleep(0)
        for _ in range(6000):
            if await asyncio.to_thread(store.count) >= events:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        await sink.close()
    return events / elapsed, record_ns


def report_times(database: str, rows: int) -> dict[str, float]:
    store = SqlStore(pg_url(database))
    store.ensure_schema()
    with psycopg.connect(pg_url(database, driver=False), autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(MONTH_SQL.replace("%(rows)s", str(rows)))
        load_s = time.perf_counter() - started
    out = {"generate_month_s": load_s}
    for by in (("provider", "day"), ("provider", "model", "team")):
        query = SpendQuery(date(2026, 11, 1), date(2026, 11, 30), by=by)
        spend(store.engine, query)
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            report = spend(store.engine, query)
            timings.append(time.perf_counter() - started)
        assert report.total.requests == rows
        out["x".join(by)] = min(timings)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--month-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with throwaway_database() as database:
        rate, record_ns = asyncio.run(writer_throughput(pg_url(database), args.events))
        ordered = sorted(record_ns)
        print(f"writer throughput to PostgreSQL: {rate:,.0f} request rows/s ({args.events:,} events, 1 attempt each)")
        print(
            "metering on the request path (QueueSink.record): "
            f"p50 {statistics.median(ordered) / 1000:.1f} us, p99 {ordered[int(len(ordered) * 0.99)] / 1000:.1f} us"
        )
    with throwaway_database() as database:
        times = report_times(database, args.month_rows)
        print(f"generated {args.month_rows:,} requests for 2026-11 in {times.pop('generate_month_s'):.1f} s")
        for name, seconds in times.items():
            print(f"report {name} over the month on PostgreSQL: {seconds:.3f} s")


if __name__ == "__main__":
    main()
