"""The demo key: made at most once per database, however many replicas start together.

`api_keys_demo` (migration 0003_demo_key) holds at most one row, keyed by a fixed
primary key. Creating the demo key inserts that row first and the key second, in one
transaction that is rolled back if any active key exists by then. A second replica's
insert of the same row waits for the first transaction (a row lock on PostgreSQL, the
write lock on SQLite) and then fails on the primary key: that replica loses gracefully
and reports the winner's key id, without the key, which only the winner ever held.
Blocking: call from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, DateTime, Integer, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.keys.model import SCOPES, KeyRecord
from gateway.keys.store import KeyStore, api_keys, metadata, new_row, record_of

DEMO_NAME = "demo"
SLOT = 1

api_keys_demo = Table(
    "api_keys_demo",
    metadata,
    Column("slot", Integer, primary_key=True, autoincrement=False),
    Column("key_id", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class DemoKey:
    record: KeyRecord
    #: The key itself, only in the process that created it (shown once, never stored).
    key: str | None


class _KeysExist(Exception):
    """Raised inside the transaction to roll the demo row back."""


def ensure_demo(store: KeyStore) -> DemoKey | None:
    """The database's demo key: made now (with its key) when no key is active and none
    was made before; the one made before, by this process or another (without its key);
    or None when other keys are active and no demo key was ever made."""
    store.ensure_schema()
    key, row = new_row(None, frozenset(SCOPES), DEMO_NAME)
    try:
        with store.engine.begin() as connection:
            connection.execute(
                insert(api_keys_demo), {"slot": SLOT, "key_id": row["id"], "created_at": row["created_at"]}
            )
            active = select(func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
            if connection.execute(active).scalar_one():
                raise _KeysExist
            connection.execute(insert(api_keys), row)
    except _KeysExist:
        return None
    except IntegrityError:
        return existing_demo(store)
    return DemoKey(record_of(row), key)


def existing_demo(store: KeyStore) -> DemoKey | None:
    """The demo key made before, if any (revoked or not), without its key."""
    query = select(api_keys).join(api_keys_demo, api_keys_demo.c.key_id == api_keys.c.id)
    with store.engine.connect() as connection:
        row = connection.execute(query).mappings().first()
    return None if row is None else DemoKey(record_of(row), None)
