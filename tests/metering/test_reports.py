"""Spend reports on both databases: hand-checked figures, totals equal to the sum of
their rows, the same report from SQLite and PostgreSQL, what-ifs and the pool."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from gateway.catalogue.prices import load_price_book, parse_price_book
from gateway.metering.drill import requests
from gateway.metering.pool import PoolConfig, economics, pool_provider
from gateway.metering.render import records, report_csv, report_json, totals_csv
from gateway.metering.reports import Figures, ReportError, SpendQuery, spend
from gateway.metering.reprice import as_provider, repriced, with_book
from gateway.metering.sql import SqlStore
from tests.metering.seed import TOTAL, seed

NOV1, NOV2 = date(2026, 11, 1), date(2026, 11, 2)


@pytest.fixture
def seeded(store: SqlStore) -> SqlStore:
    store.write(seed())
    return store


def _sum(rows: list[Figures]) -> Figures:
    total = Figures()
    for figures in rows:
        total.add(figures)
    return total


@pytest.mark.parametrize("by", [("provider",), ("provider", "day"), ("team",), ("model", "key"), ("day",), ()])
def test_totals_equal_the_sum_of_their_rows(seeded: SqlStore, by: tuple[str, ...]) -> None:
    report = spend(seeded.engine, SpendQuery(NOV1, NOV2, by=by))
    assert report.total == _sum([row.figures for row in report.rows])
    assert report.total.cost_usd == TOTAL
    assert (report.total.requests, report.total.attempts) == (6, 9)


def test_costs_go_to_the_provider_that_billed_them(seeded: SqlStore) -> None:
    report = spend(seeded.engine, SpendQuery(NOV1, NOV2, by=("provider",)))
    rows = {row.group["provider"]: row.figures for row in report.rows}
    assert rows["groq"].cost_usd == Decimal("0.001322")
    assert rows["together"].cost_usd == Decimal("0.000298")
    assert rows["vllm"].cost_usd == Decimal("0.25")
    assert (rows["groq"].requests, rows["together"].requests, rows["vllm"].requests) == (3, 2, 1)
    assert rows["groq"].reask_cost_usd == Decimal("0.000468")
    assert (rows["groq"].failed_attempts, rows["groq"].estimated_attempts) == (3, 1)


def test_filters_and_the_day_key(seeded: SqlStore) -> None:
    query = SpendQuery(NOV1, NOV2, by=("day",), filters=(("team", "search"),))
    rows = [(row.group["day"], row.figures.cost_usd) for row in spend(seeded.engine, query).rows]
    assert rows == [("2026-11-01", Decimal("0.250178")), ("2026-11-02", Decimal("0.000928"))]
    nov2 = spend(seeded.engine, SpendQuery(NOV2, NOV2, by=("key",)))
    assert {row.group["key"]: row.figures.cost_usd for row in nov2.rows} == {
        "key_a": Decimal("0.000928"),
        None: Decimal("0.000127"),
    }


def test_json_and_csv_carry_the_same_figures(seeded: SqlStore) -> None:
    report = spend(seeded.engine, SpendQuery(NOV1, NOV2, by=("provider", "day")))
    data = report_json(report)
    lines = report_csv(report).splitlines()
    assert data["total_cost_usd"] == "0.25162" and data["rows"] == records(report)
    assert lines[0].startswith("provider,day,requests,attempts")
    # Data rows only; the totals have their own CSV.
    assert len(lines) == len(data["rows"]) + 1 and not any(line.startswith("total") for line in lines)
    totals = totals_csv(report).splitlines()
    assert totals[1].startswith("2026-11-01,2026-11-02,ledger,6,9,") and ",0.25162," in totals[1]
    groq_day1 = next(r for r in data["rows"] if r["provider"] == "groq" and r["day"] == "2026-11-01")
    assert groq_day1["cost_usd"] == "0.000267" and groq_day1["cost_per_1k_requests_usd"] == "0.267"


def test_the_same_report_from_sqlite_and_postgresql(tmp_path: Path, pg_schema_url: str) -> None:
    reports = []
    for url in (f"sqlite:///{tmp_path / 'same.db'}", pg_schema_url):
        ledger = SqlStore(url)
        ledger.write(seed())
        for by in (("provider", "model", "team", "key", "day"), ("provider",)):
            reports.append(report_json(spend(ledger.engine, SpendQuery(NOV1, NOV2, by=by))))
        ledger.close()
    assert reports[:2] == reports[2:]


def test_reprice_with_a_price_change_mid_period(seeded: SqlStore) -> None:
    book = parse_price_book(
        {
            "prices": [
                {"provider": p, "model": m, "effective": "2026-01-01", "input": "1", "output": "1"}
                for p in ("groq", "together", "vllm")
                for m in ("llama-4-scout", "llama-4-maverick")
            ]
            + [{"provider": "groq", "model": "llama-4-scout", "effective": "2026-11-02", "input": "2", "output": "2"}]
        }
    )
    report = repriced(seeded.engine, SpendQuery(NOV1, NOV2, by=("provider", "day")), with_book(book), "test")
    rows = {(r.group["provider"], r.group["day"]): r.figures.cost_usd for r in report.rows}
    # groq 11-01: r1 1,200 tokens + r2's billed try 600 at $1/1M; 11-02: r4 4,280 at $1 + r5 1,050 at $2
    assert rows[("groq", "2026-11-01")] == Decimal("0.0018")
    assert rows[("groq", "2026-11-02")] == Decimal("0.00638")
    assert rows[("vllm", "2026-11-01")] == Decimal("2")
    assert report.total.cost_usd == sum(rows.values())
    assert report.rows[0].figures.reask_cost_usd == Decimal(0)


def test_as_provider_prices_everything_at_one_provider(seeded: SqlStore) -> None:
    report = repriced(seeded.engine, SpendQuery(NOV1, NOV1, by=()), as_provider(load_price_book(), "groq"), "x")
    # Nov 1, all Scout: 1,002,500 prompt x 0.11 + 1,000,500 completion x 0.34, per 1M
    assert report.total.cost_usd == Decimal("0.450445")


def test_a_what_if_without_a_price_says_which(seeded: SqlStore) -> None:
    empty = parse_price_book({"prices": []})
    expected = "no price for groq/llama-4-maverick on 2026-11-02, groq/llama-4-scout on 2026-11-01"
    with pytest.raises(ReportError, match=expected):
        repriced(seeded.engine, SpendQuery(NOV1, NOV2), with_book(empty), "empty")


def test_pool_economics_against_hosted_list_prices(seeded: SqlStore) -> None:
    later = datetime(2026, 12, 1, tzinfo=UTC)
    pool = economics(seeded.engine, load_price_book(), PoolConfig(8, Decimal("2.50"), "vllm"), NOV1, NOV1, later)
    assert pool is not None and pool.provider == "vllm"
    # 8 GPUs x $2.50 x 24 h; 2M tokens served -> $240 per 1M
    assert (pool.hours, pool.fixed_cost_usd, pool.effective_per_1m_usd) == (24, Decimal(480), Decimal(240))
    groq = next(h for h in pool.hosted if h.provider == "groq")
    assert (groq.same_tokens_cost_usd, groq.effective_per_1m_usd) == (Decimal("0.45"), Decimal("0.225"))
    assert pool.cheapest_hosted is not None and pool.cheapest_hosted.provider == "deepinfra"
    halfway = datetime(2026, 11, 1, 6, tzinfo=UTC)
    partial = economics(seeded.engine, load_price_book(), PoolConfig(8, Decimal("2.50"), "vllm"), NOV1, NOV1, halfway)
    assert partial is not None and partial.fixed_cost_usd == Decimal(120)


def test_drill_down_lists_the_requests_behind_a_line(seeded: SqlStore) -> None:
    found = requests(seeded.engine, SpendQuery(NOV1, NOV2, filters=(("provider", "together"),)))
    assert [r["request_id"] for r in found] == ["r6", "r2"]
    r2 = found[1]
    assert r2["cost_usd"] == "0.000387" and [a["provider"] for a in r2["attempt_rows"]] == ["groq", "together"]
    assert r2["attempt_rows"][0]["cost_usd"] == "0.000089"


def test_bad_queries_are_refused() -> None:
    with pytest.raises(ReportError, match="before"):
        SpendQuery(NOV2, NOV1)
    with pytest.raises(ReportError, match="choose distinct keys"):
        SpendQuery(NOV1, NOV2, by=("colour",))
    with pytest.raises(ReportError, match="unknown filter"):
        SpendQuery(NOV1, NOV2, filters=(("day", "x"),))


def test_the_pool_is_vllm_and_free_backends_are_not_compared(seeded: SqlStore) -> None:
    book = load_price_book()
    assert pool_provider(book, NOV1, "vllm") == "vllm"  # SGLang is priced on GPU-hours too, but is not the pool
    later = datetime(2026, 12, 1, tzinfo=UTC)
    pool = economics(seeded.engine, book, PoolConfig(8, Decimal("2.50"), "vllm"), NOV1, NOV1, later)
    assert pool is not None
    hosted = {h.provider for h in pool.hosted}
    assert "fireworks" in hosted and not hosted & {"ollama", "sglang", "vllm"}
