"""The SQL ledger on SQLite and PostgreSQL: migrations, rows, idempotency, exact money,
append-only."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import DBAPIError

from gateway.metering.idempotency_sql import idempotency_keys
from gateway.metering.migrate import current, head
from gateway.metering.responses_sql import responses
from gateway.metering.sql import SqlStore, normalise_url
from gateway.metering.tables import attempt_table, request_table
from tests.metering.factory import event, failed


def _requests(store: SqlStore) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(request_table()).order_by("request_id")).mappings()]


def _attempts(store: SqlStore) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        stmt = select(attempt_table()).order_by("request_id", "seq")
        return [dict(r) for r in conn.execute(stmt).mappings()]


def test_migrations_bring_the_schema_to_head_with_its_indexes(store: SqlStore) -> None:
    store.ensure_schema()
    assert current(store.engine) == head() == "0007_responses"
    found = inspect(store.engine)
    for table in (request_table(), attempt_table()):
        assert {c["name"] for c in found.get_columns(table.name)} == set(table.c.keys())
    tables = {"ledger_requests", "ledger_attempts", "api_keys", "api_keys_demo", "idempotency_keys", "responses"}
    assert tables | {"alembic_version"} <= set(found.get_table_names())
    assert {c["name"] for c in found.get_columns("idempotency_keys")} == set(idempotency_keys.c.keys())
    assert {c["name"] for c in found.get_columns("responses")} == set(responses.c.keys())
    assert "ix_responses_expires_at" in {i["name"] for i in found.get_indexes("responses")}
    indexes = {i["name"] for i in found.get_indexes("ledger_attempts")}
    assert "ix_ledger_attempts_day_provider_model" in indexes
    SqlStore(str(store.engine.url.render_as_string(hide_password=False))).ensure_schema()
    assert current(store.engine) == head()


def test_one_request_row_and_one_row_per_attempt(store: SqlStore) -> None:
    billed = failed("together", prompt_tokens=1000, completion_tokens=50, cost_usd=Decimal("0.0002095"))
    unbilled = failed("deepinfra")
    store.write([event("req_a", attempts=(billed, unbilled, event("x").attempts[0]))])
    (request,) = _requests(store)
    assert request["attempts"] == 3 and request["team"] == "search" and request["project"] == "web"
    assert request["prompt_tokens"] == 2000 and request["completion_tokens"] == 250
    assert request["cost_usd"] == Decimal("0.0003875")
    rows = _attempts(store)
    assert [(r["provider"], r["outcome"], r["final"], r["cost_usd"]) for r in rows] == [
        ("together", "error", False, Decimal("0.0002095")),
        ("deepinfra", "error", False, Decimal(0)),
        ("groq", "ok", True, Decimal("0.000178")),
    ]


def test_replaying_a_batch_inserts_nothing_twice(store: SqlStore) -> None:
    batch = [event(f"req_{i}") for i in range(50)]
    store.write(batch)
    store.write([*batch, batch[0], event("req_new")])
    assert store.count() == 51
    assert len(_attempts(store)) == 51


def test_money_round_trips_exactly(store: SqlStore) -> None:
    amounts = ["0.0000000001", "123456.7890123456", "0.1", "0.2"]
    store.write([event(f"req_{i}", cost_usd=Decimal(a)) for i, a in enumerate(amounts)])
    assert [r["cost_usd"] for r in _requests(store)] == [Decimal(a) for a in amounts]
    with store.engine.connect() as conn:
        total = conn.execute(select(func.sum(request_table().c.cost_usd))).scalar_one()
    assert total == Decimal("123457.0890123457")


def test_the_ledger_refuses_updates_and_deletes(store: SqlStore) -> None:
    store.write([event("req_a")])
    for statement in ("UPDATE ledger_requests SET status = 'x'", "DELETE FROM ledger_attempts"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(statement))
    assert store.count() == 1


def test_a_correction_is_a_new_row_that_references_the_old(store: SqlStore) -> None:
    store.write([event("req_a")])
    correction = event(
        "corr_1",
        status="correction",
        corrects="req_a",
        prompt_tokens=0,
        completion_tokens=-100,
        cost_usd=Decimal("-0.000034"),
        note="provider re-counted",
        attempts=(),
    )
    store.write([correction])
    rows = {r["request_id"]: r for r in _requests(store)}
    assert rows["corr_1"]["corrects"] == "req_a" and rows["req_a"]["cost_usd"] == Decimal("0.000178")
    (fix,) = [a for a in _attempts(store) if a["request_id"] == "corr_1"]
    assert fix["final"] is False and fix["outcome"] == "correction" and fix["completion_tokens"] == -100


def test_a_bare_postgres_url_uses_psycopg() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"
