"""Cache hits in the ledger on SQLite and PostgreSQL (PostgreSQL's COPY path included): a
hit's own row kind, written and reported exactly, and through the journal unchanged."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from gateway.catalogue.prices import load_price_book
from gateway.metering.events import UsageEvent
from gateway.metering.journal import decode, encode
from gateway.metering.money import quantize
from gateway.metering.reports import SpendQuery, spend
from gateway.metering.reprice import as_provider, repriced
from gateway.metering.sql import SqlStore
from gateway.metering.tables import attempt_table, request_table
from gateway.schema.usage import Usage
from tests.metering.factory import DAY1, event

PAID = Decimal("0.000178")


def _hit(request_id: str) -> UsageEvent:
    return event(
        request_id,
        status="cache_hit",
        prompt_tokens=0,
        completion_tokens=0,
        cost_usd=Decimal(0),
        attempts=(),
        saved_usd=PAID,
        cache_of="req_paid",
    )


def test_a_hit_is_its_own_row_kind_and_reports_count_it_apart(store: SqlStore) -> None:
    store.write([event("req_paid"), _hit("req_hit_1"), _hit("req_hit_2")])
    with store.engine.connect() as connection:
        rows = {r.request_id: r for r in connection.execute(select(request_table()))}
        attempts = {r.request_id: r for r in connection.execute(select(attempt_table()))}
    assert rows["req_hit_1"].status == "cache_hit" and rows["req_hit_1"].cost_usd == 0
    assert rows["req_hit_1"].saved_usd == PAID and rows["req_hit_1"].cache_of == "req_paid"
    assert rows["req_hit_1"].attempts == 0
    assert rows["req_paid"].saved_usd == 0 and rows["req_paid"].cache_of is None
    assert attempts["req_hit_1"].outcome == "cache_hit" and attempts["req_hit_1"].final
    assert attempts["req_hit_1"].saved_usd == PAID and attempts["req_hit_1"].provider == "groq"
    (row,) = spend(store.engine, SpendQuery(DAY1.date(), DAY1.date(), by=("team", "model", "provider"))).rows
    f = row.figures
    assert (f.requests, f.attempts, f.cache_hits) == (1, 1, 2)
    assert f.cost_usd == PAID and f.saved_usd == 2 * PAID
    assert (f.prompt_tokens, f.completion_tokens) == (1000, 200)


def test_the_journal_keeps_what_a_hit_saved() -> None:
    hit = _hit("req_hit")
    back = decode(encode(hit))
    assert back == hit
    older = encode(event("req_old")).replace(b',"saved_usd":"0","cache_of":null', b"")
    assert b"saved_usd" not in older
    assert decode(older).saved_usd == 0 and decode(older).cache_of is None


def test_what_ifs_leave_hits_at_zero_and_what_they_saved_as_recorded(store: SqlStore) -> None:
    store.write([event("req_paid"), _hit("req_hit_1"), _hit("req_hit_2")])
    book = load_price_book()
    query = SpendQuery(DAY1.date(), DAY1.date(), by=("provider",))
    only_paid = repriced(store.engine, query, as_provider(book, "deepinfra"), "as-provider: deepinfra")
    (row,) = only_paid.rows
    price = book.at("deepinfra", "llama-4-scout", DAY1.date())
    assert price is not None
    assert row.figures.cost_usd == quantize(price.cost(Usage(1000, 200, 0)))
    assert row.figures.cache_hits == 2 and row.figures.saved_usd == 2 * PAID
