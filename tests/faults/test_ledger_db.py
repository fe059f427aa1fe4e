"""PostgreSQL going away under traffic and coming back, through a loopback proxy we cut
(the machine's shared server is never stopped): requests never notice, usage spills to
the journal, and the journal is replayed into the ledger once the database is back, with
the gateway still running. The process-level variant (`corral serve`, SIGKILL, restart)
is tests/metering/test_gateway_crash.py."""

from __future__ import annotations

from pathlib import Path

from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.faults.conftest import open_rig
from tests.faults.harness import FakePark, fault_settings
from tests.faults.traffic import assert_all_served, assert_ledger_exactly_once, chat_body, until
from tests.metering.pg import PORT, pg_url
from tests.metering.proxy import CuttableProxy


def _rows(url: str) -> int:
    store = SqlStore(url)
    try:
        return store.count()
    finally:
        store.close()


def test_postgres_down_and_back_loses_and_duplicates_no_row(
    park: FakePark, tmp_path: Path, pg_database: str, pg_schema_url: str
) -> None:
    """Availability, ledger exactly-once and recovery: with the ledger's database cut off
    every request is still served; the writer journals, and when the database returns it
    replays the journal without a restart, so every request has exactly one row."""
    proxy = CuttableProxy(PORT)
    proxy.start()
    schema = pg_schema_url.rsplit("%3D", 1)[1]
    fakes = {"deepinfra": park.add("deepinfra"), "together": park.add("together")}
    settings = fault_settings(tmp_path, fakes, database_url=pg_url(pg_database, schema, port=proxy.port))
    rig = open_rig(settings, fakes)
    try:
        sink = rig.runtime.sink
        assert isinstance(sink, QueueSink)
        assert_all_served(rig.traffic.burst(chat_body(), n=30))
        proxy.cut()
        assert_all_served(rig.traffic.burst(chat_body(stream=True), n=20))
        until(lambda: not sink.healthy, "the writer saw the database go")
        assert_all_served(rig.traffic.burst(chat_body(), n=30))
        assert sink.backlog_bytes > 0, "usage waits in the journal"
        proxy.start()
        until(lambda: sink.healthy and sink.backlog_bytes == 0, "the journal replayed")
        until(lambda: _rows(pg_schema_url) == len(rig.traffic.replies), "every row in the ledger, gateway running")
        assert_all_served(rig.traffic.burst(chat_body(), n=20))
        rig.stack.close()
    finally:
        rig.stack.close()
        proxy.cut()
    assert_ledger_exactly_once(rig.traffic, pg_schema_url)
