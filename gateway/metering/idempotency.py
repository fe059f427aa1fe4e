"""Idempotency keys, the way payment APIs use them: a request carrying `Idempotency-Key`
runs at most once per API key within the retention window.

The first request with a key claims it (one row in the ledger database, or in memory when
there is no SQL ledger); a successful answer is kept with the claim — status, headers,
body, or a completed stream's bytes — and replayed to every repeat with the same body.
A repeat while the first still runs gets 409 with `retry-after`; the same key with a
different body gets 422. An answer that is not kept (an error, a stream that did not
complete) gives the claim back, so a retry runs anew.

Claims are decided by the store's primary key (INSERT ... ON CONFLICT DO NOTHING), so
replicas sharing a database agree on who runs a request. A claim left `running` by a
process that died is taken over once it is older than the lease. With `REDIS_URL`, kept
answers are also cached in Redis for replays (idempotency_redis.py); the database still
decides every claim.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Literal, Protocol, TypeVar

from gateway.errors import Code, error

log = logging.getLogger("corral.idempotency")

#: Longest Idempotency-Key accepted (the column's width).
MAX_KEY_LENGTH = 255
#: What a repeat that arrives while the first request still runs is told to wait (seconds).
RETRY_AFTER_S = 1
#: Sent on every replayed answer (as Stripe's `Idempotent-Replayed`).
REPLAYED_HEADER = "x-corral-idempotent-replayed"

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Answer:
    """A kept answer: what the first request sent, to send again byte for byte."""

    status: int
    headers: dict[str, str]
    body: bytes
    stream: bool


@dataclass(frozen=True, slots=True)
class Claim:
    """A request's hold on its key, written before it runs."""

    scope: str
    key: str
    body_sha256: str
    request_id: str
    created_at: datetime
    expires_at: datetime
    stream: bool


@dataclass(frozen=True, slots=True)
class Held:
    """Someone else's claim on a key: still running (answer None) or finished."""

    body_sha256: str
    request_id: str
    answer: Answer | None
    #: When the claim expires (a cache of the answer must not outlive it).
    expires_at: datetime | None = None


class IdempotencyStore(Protocol):
    """Blocking calls (the SQL store's run in a worker thread)."""

    def claim(self, claim: Claim, stale_before: datetime) -> Held | None:
        """Take the key (None), or the claim that holds it. An expired claim, or one still
        running that was made before `stale_before`, is taken over."""

    def keep(self, claim: Claim, answer: Answer) -> bool:
        """Store the answer with the claim (the key is now done); False when the claim is no
        longer this request's (taken over after its lease), and nothing was stored."""

    def release(self, claim: Claim) -> None:
        """Give the key back (only this claim's: a takeover's row is left alone)."""

    def purge(self, now: datetime) -> int:
        """Delete expired claims; returns how many."""


@dataclass(slots=True)
class MemoryStore:
    """Claims in this process only: used when the gateway has no SQL ledger."""

    rows: dict[tuple[str, str], tuple[Claim, Answer | None]] = field(default_factory=dict)

    def claim(self, claim: Claim, stale_before: datetime) -> Held | None:
        held = self.rows.get((claim.scope, claim.key))
        if held is not None:
            old, answer = held
            if not (old.expires_at < claim.created_at or (answer is None and old.created_at < stale_before)):
                return Held(old.body_sha256, old.request_id, answer, old.expires_at)
        self.rows[(claim.scope, claim.key)] = (claim, None)
        return None

    def keep(self, claim: Claim, answer: Answer) -> bool:
        held = self.rows.get((claim.scope, claim.key))
        if held is not None and held[0].request_id == claim.request_id:
            self.rows[(claim.scope, claim.key)] = (claim, answer)
            return True
        return False

    def release(self, claim: Claim) -> None:
        held = self.rows.get((claim.scope, claim.key))
        if held is not None and held[0].request_id == claim.request_id:
            del self.rows[(claim.scope, claim.key)]

    def purge(self, now: datetime) -> int:
        expired = [k for k, (c, _a) in self.rows.items() if c.expires_at < now]
        for k in expired:
            del self.rows[k]
        return len(expired)


Outcome = Literal["kept", "released"]


class Ticket:
    """The running request's claim: keep its answer or give the key back, exactly once."""

    def __init__(self, guard: Idempotency, claim: Claim) -> None:
        self.guard = guard
        self.claim = claim
        self.outcome: Outcome | None = None

    async def keep(self, answer: Answer) -> None:
        if self.outcome is None:
            self.outcome = "kept"
            await self._settle(partial(self.guard.store.keep, self.claim, answer))

    async def release(self) -> None:
        if self.outcome is None:
            self.outcome = "released"
            await self._settle(partial(self.guard.store.release, self.claim))

    async def _settle(self, call: Callable[[], object]) -> None:
        """The answer goes out whatever the store says; a claim the store did not settle stays
        running until its lease ends (repeats get 409 until then, never a second run)."""
        try:
            await asyncio.shield(self.guard.run(call))
        except Exception as exc:
            log.warning("idempotency: key %r not settled (%s)", self.claim.key, type(exc).__name__)

    async def recorded(
        self, body: AsyncIterator[bytes], headers: dict[str, str], completed: Callable[[], bool], last: bytes
    ) -> AsyncIterator[bytes]:
        """Relay a stream's frames while keeping a copy; when `completed()` says it ended well
        and its `last` frame went out, keep it for replay, otherwise give the key back."""
        frames: list[bytes] = []
        try:
            async for data in body:
                frames.append(data)
                yield data
        finally:
            try:
                if completed() and frames and frames[-1].endswith(last):
                    await self.keep(Answer(200, headers, b"".join(frames), stream=True))
                else:
                    await self.release()
            finally:
                if hasattr(body, "aclose"):
                    await body.aclose()


class Idempotency:
    """Usage:
    guard = Idempotency(store, retention_s=86400, lease_s=900, threaded=True)
    begun = await guard.begin(scope, key, raw_body, request_id, stream)
    if isinstance(begun, Answer): replay it, else run and `begun.keep(...)` or `begun.release()`
    """

    def __init__(self, store: IdempotencyStore, *, retention_s: float, lease_s: float, threaded: bool) -> None:
        self.store = store
        self.retention = timedelta(seconds=retention_s)
        self.lease = timedelta(seconds=lease_s)
        self.threaded = threaded

    async def run(self, call: Callable[[], R]) -> R:
        """A store call: in a worker thread for a database, inline for memory."""
        if self.threaded:
            return await asyncio.to_thread(call)
        return call()

    async def begin(self, scope: str, key: str, body: bytes, request_id: str, stream: bool) -> Ticket | Answer:
        """Claim the key for this request (a Ticket), or the kept answer to replay; raises
        409 while the key's first request still runs and 422 when its body differs."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            raise error(
                Code.INVALID_VALUE,
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
                param="Idempotency-Key",
            )
        now = datetime.now(UTC)
        digest = hashlib.sha256(body).hexdigest()
        claim = Claim(scope, key, digest, request_id, now, now + self.retention, stream)
        held = await self.run(partial(self.store.claim, claim, now - self.lease))
        if held is None:
            return Ticket(self, claim)
        if held.body_sha256 != digest:
            raise error(
                Code.IDEMPOTENCY_KEY_REUSED,
                f"Idempotency-Key {key!r} was used by request {held.request_id} with a different body; "
                "use a new key for a new request",
            )
        if held.answer is None:
            raise error(
                Code.IDEMPOTENCY_KEY_IN_USE,
                f"request {held.request_id} with this Idempotency-Key is still running; retry after it ends",
                headers={"retry-after": str(RETRY_AFTER_S)},
            )
        return held.answer

    async def purge(self) -> int:
        return await self.run(partial(self.store.purge, datetime.now(UTC)))
