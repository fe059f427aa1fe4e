"""The idempotency store on SQLite and PostgreSQL (and in memory): keys are per API key,
expire after the retention window, and a claim left running past its lease is taken over."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.errors import Code, GatewayError
from gateway.metering.idempotency import Answer, Claim, IdempotencyStore, MemoryStore
from gateway.metering.idempotency_sql import SqlIdempotencyStore
from gateway.metering.sql import SqlStore
from tests.support import free_port

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
LEASE = timedelta(minutes=15)


@pytest.fixture(params=["sqlite", "postgresql", "memory"])
def idem(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IdempotencyStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_schema_url")
    store = SqlStore(url)
    yield SqlIdempotencyStore(store.engine, store.ensure_schema)
    store.close()


def _claim(request_id: str, scope: str = "key_a", at: datetime = NOW, body: str = "h") -> Claim:
    return Claim(scope, "order-42", body, request_id, at, at + DAY, stream=False)


def test_a_key_is_per_api_key(idem: IdempotencyStore) -> None:
    assert idem.claim(_claim("r1", "key_a"), NOW - LEASE) is None
    assert idem.claim(_claim("r2", "key_b"), NOW - LEASE) is None
    held = idem.claim(_claim("r3", "key_a"), NOW - LEASE)
    assert held is not None and held.request_id == "r1" and held.answer is None


def test_a_kept_answer_is_held_until_it_expires(idem: IdempotencyStore) -> None:
    first = _claim("r1")
    assert idem.claim(first, NOW - LEASE) is None
    idem.keep(first, Answer(200, {"x-corral-request-id": "r1"}, b'{"id":1}', stream=False))
    later = NOW + timedelta(hours=23)
    held = idem.claim(_claim("r2", at=later), later - LEASE)
    assert held is not None and held.answer == Answer(200, {"x-corral-request-id": "r1"}, b'{"id":1}', False)
    expired = NOW + DAY + timedelta(seconds=1)
    assert idem.claim(_claim("r3", at=expired, body="other"), expired - LEASE) is None
    assert idem.purge(expired + DAY + timedelta(seconds=1)) == 1


def test_a_claim_running_past_its_lease_is_taken_over(idem: IdempotencyStore) -> None:
    dead = _claim("r1")
    assert idem.claim(dead, NOW - LEASE) is None
    soon = NOW + timedelta(minutes=1)
    assert idem.claim(_claim("r2", at=soon), soon - LEASE) is not None
    late = NOW + LEASE + timedelta(seconds=1)
    assert idem.claim(_claim("r3", at=late), late - LEASE) is None
    # The dead claim's late end changes nothing: the key is r3's now.
    idem.keep(dead, Answer(200, {}, b"stale", stream=False))
    idem.release(dead)
    held = idem.claim(_claim("r4", at=late), late - LEASE)
    assert held is not None and held.request_id == "r3" and held.answer is None


def test_a_released_key_can_be_claimed_again(idem: IdempotencyStore) -> None:
    first = _claim("r1")
    assert idem.claim(first, NOW - LEASE) is None
    idem.release(first)
    assert idem.claim(_claim("r2"), NOW - LEASE) is None


def test_an_unreachable_database_refuses_the_request_with_503() -> None:
    """Without its claim a request could run twice: it is not run at all."""
    store = SqlStore(f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere", connect_timeout_s=1)
    try:
        with pytest.raises(GatewayError) as refused:
            SqlIdempotencyStore(store.engine, store.ensure_schema).claim(_claim("r1"), NOW - LEASE)
    finally:
        store.close()
    assert refused.value.status == 503 and refused.value.code == Code.LEDGER_UNAVAILABLE
    assert refused.value.headers["retry-after"] == "1"
