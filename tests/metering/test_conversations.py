"""The store behind `previous_response_id` on SQLite, PostgreSQL and in memory: a
conversation is readable only under the scope (API key) that stored it, until it expires;
expired ones are purged; memory keeps at most its bound."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import GatewayError
from gateway.metering.conversations import Conversations, ConversationStore, MemoryConversations
from gateway.metering.responses_sql import SqlConversations
from gateway.metering.sql import SqlStore
from tests.support import free_port

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TALK = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConversationStore]:
    if request.param == "memory":
        yield MemoryConversations()
        return
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_schema_url")
    ledger = SqlStore(url)
    yield SqlConversations(ledger.engine, ledger.ensure_schema)
    ledger.close()


def test_a_conversation_is_read_back_by_its_own_key_only(store: ConversationStore) -> None:
    store.put("key_a", "resp_1", TALK, NOW, NOW + DAY)
    assert store.get("key_a", "resp_1", NOW) == TALK
    assert store.get("key_b", "resp_1", NOW) is None
    assert store.get("", "resp_1", NOW) is None
    assert store.get("key_a", "resp_2", NOW) is None


def test_an_expired_conversation_is_never_served_and_is_purged(store: ConversationStore) -> None:
    store.put("key_a", "resp_1", TALK, NOW, NOW + DAY)
    store.put("key_a", "resp_2", TALK, NOW + DAY, NOW + 2 * DAY)
    assert store.get("key_a", "resp_1", NOW + DAY - timedelta(seconds=1)) == TALK
    assert store.get("key_a", "resp_1", NOW + DAY) is None
    assert store.purge(NOW + DAY) == 1
    assert store.get("key_a", "resp_2", NOW + DAY) == TALK


def test_memory_keeps_at_most_its_bound() -> None:
    memory = MemoryConversations(max_items=3)
    for i in range(5):
        memory.put("k", f"resp_{i}", TALK, NOW, NOW + DAY)
    assert len(memory) == 3
    assert memory.get("k", "resp_0", NOW) is None and memory.get("k", "resp_4", NOW) == TALK


async def test_retention_is_applied_from_the_clock() -> None:
    now = [NOW]
    conversations = Conversations(MemoryConversations(), retention_s=3600, threaded=False, clock=lambda: now[0])
    assert await conversations.put("k", "resp_1", TALK)
    now[0] = NOW + timedelta(seconds=3599)
    assert await conversations.get("k", "resp_1") == TALK
    now[0] = NOW + timedelta(seconds=3600)
    assert await conversations.get("k", "resp_1") is None


async def test_a_later_write_deletes_expired_conversations_once_the_interval_has_passed() -> None:
    now = [NOW]
    memory = MemoryConversations()
    conversations = Conversations(memory, retention_s=60, threaded=False, clock=lambda: now[0], purge_interval_s=0)
    assert await conversations.put("k", "resp_1", TALK)
    now[0] = NOW + timedelta(seconds=61)
    assert await conversations.put("k", "resp_2", TALK)
    assert len(memory) == 1 and memory.get("k", "resp_2", now[0]) == TALK
    hourly = Conversations(memory, retention_s=60, threaded=False, clock=lambda: now[0], purge_interval_s=3600)
    now[0] = NOW + timedelta(seconds=200)
    assert await hourly.put("k", "resp_3", TALK)
    assert len(memory) == 2, "not purged before the interval has passed"


async def test_an_unreachable_database_is_a_retryable_503_on_read_and_no_failure_on_write(tmp_path: Path) -> None:
    ledger = SqlStore(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=1")
    conversations = Conversations(SqlConversations(ledger.engine, ledger.ensure_schema), retention_s=60, threaded=True)
    with pytest.raises(GatewayError) as caught:
        await conversations.get("k", "resp_1")
    assert caught.value.status == 503 and caught.value.headers["retry-after"] == "1"
    assert await conversations.put("k", "resp_1", TALK) is False
    ledger.close()
