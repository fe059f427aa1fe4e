"""Worker processes of one gateway each claim a usage journal of their own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.metering.journal import Journal, JournalBusy, claim_journal, orphan_slots, slot_path
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.runtime import ledger_sink
from tests.metering.factory import event


def test_workers_claim_distinct_slots_and_slot_zero_is_the_configured_path(tmp_path: Path) -> None:
    path = tmp_path / "usage.journal"
    first, second = claim_journal(path, 2), claim_journal(path, 2)
    try:
        assert first.path == path
        assert second.path == tmp_path / "usage.journal-w1"
        with pytest.raises(JournalBusy, match="all 2 usage journal slots"):
            claim_journal(path, 2)
    finally:
        first.close()
        second.close()


def test_slot_segments_are_not_mistaken_for_the_base_journal(tmp_path: Path) -> None:
    path = tmp_path / "usage.journal"
    slot = Journal(slot_path(path, 1))
    slot.append([event("req_slot")])
    slot.close()
    base = Journal(path)
    try:
        assert base.closed() == []
    finally:
        base.close()


async def test_a_replacement_worker_takes_the_free_slot_and_replays_it(tmp_path: Path) -> None:
    """A worker that died left events in its slot; the worker that replaces it claims that
    slot (the others are held) and puts the events into the ledger."""
    path = tmp_path / "usage.journal"
    survivor = claim_journal(path, 2)
    dead = claim_journal(path, 2)
    dead.append([event("req_left_1"), event("req_left_2")])
    dead.close()  # what the kernel does when the process dies
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        sink = QueueSink(store, claim_journal(path, 2))
        assert sink.journal.path == dead.path
        await sink.start()
        await sink.close()
        assert store.count() == 2
    finally:
        survivor.close()
        store.close()


async def test_slots_no_worker_of_this_run_claims_are_replayed_at_start(tmp_path: Path) -> None:
    """An earlier run had three workers, this one has two: the third slot's events would
    otherwise wait for a worker that never comes."""
    path = tmp_path / "usage.journal"
    earlier = [claim_journal(path, 3) for _ in range(3)]
    earlier[2].append([event("req_orphan_1"), event("req_orphan_2")])
    for journal in earlier:
        journal.close()
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    other = claim_journal(path, 2)
    try:
        sink = QueueSink(store, claim_journal(path, 2))
        assert orphan_slots(path, 2) == [slot_path(path, 2)]
        await sink.start()
        await sink.close()
        assert store.count() == 2
        left = Journal(slot_path(path, 2))
        assert left.closed() == []
        left.close()
    finally:
        other.close()
        store.close()


async def test_an_orphan_slot_a_live_process_holds_is_left_to_it(tmp_path: Path) -> None:
    path = tmp_path / "usage.journal"
    live = Journal(slot_path(path, 3))
    live.append([event("req_live")])
    store = SqlStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        sink = QueueSink(store, claim_journal(path, 1))
        await sink.start()
        await sink.close()
        assert store.count() == 0
    finally:
        live.close()
        store.close()


def test_fsync_durability_groups_many_appends_into_few_fsyncs(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "usage.journal", "fsync", fsync_ms=50)
    try:
        for number in range(200):
            journal.append([event(f"req_{number}")])
        deadline = time.monotonic() + 10
        while journal.unsynced_bytes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert journal.unsynced_bytes == 0
        assert 1 <= journal.fsyncs < 50
    finally:
        journal.close()


def test_process_durability_never_fsyncs(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "usage.journal")
    journal.append([event("req_1")])
    journal.close()
    assert journal.fsyncs == 0


def test_the_durability_setting_reaches_the_journal(tmp_path: Path) -> None:
    env = {"CORRAL_JOURNAL_DURABILITY": "fsync", "DATABASE_URL": f"sqlite:///{tmp_path / 'l.db'}"}
    settings = load_settings(env=env).model_copy(update={"journal_path": str(tmp_path / "usage.journal")})
    sink = ledger_sink(settings.model_copy(update={"ledger_writer": "thread"}))
    try:
        assert sink.journal.durability == "fsync"
    finally:
        sink.journal.close()
