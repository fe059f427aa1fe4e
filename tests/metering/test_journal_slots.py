"""Worker processes of one gateway each claim a usage journal of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.metering.journal import Journal, JournalBusy, claim_journal, slot_path
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
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
