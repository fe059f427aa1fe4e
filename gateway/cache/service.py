"""The response cache as the HTTP edge uses it: decide, look up, keep. The store's
trouble (Redis down, a damaged entry) is never a request error: a lookup that fails is a
bypass (`unavailable`) and the request goes upstream; a write that fails is logged."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from gateway.cache.decide import Decision, decide
from gateway.cache.entry import BadEntry, Entry
from gateway.cache.stores import CacheStore, LruStore
from gateway.routing.policy.model import Policy
from gateway.schema.chat import ChatRequest
from gateway.telemetry.cache import CacheCounters

log = logging.getLogger("corral.cache")
#: Errors of a store that is away; anything else is a bug and propagates.
STORE_ERRORS = (RedisError, OSError, TimeoutError)


class ResponseCache:
    def __init__(self, store: CacheStore, counters: CacheCounters) -> None:
        self.store = store
        self.counters = counters

    def decide(
        self, policy: Policy, req: ChatRequest, key_id: str | None, cache_control: str | None
    ) -> Decision | None:
        decision = decide(policy, req, key_id, cache_control)
        if decision is not None and not decision.read:
            self.counters.bypass(decision.reason)
        return decision

    async def lookup(self, decision: Decision, model: str) -> tuple[Entry | None, Decision]:
        """The entry for a decision that reads (None on a miss), and the decision as it
        stands (a store that could not be read turns it into a bypass)."""
        assert decision.key is not None
        try:
            data = await self.store.get(decision.key)
            entry = Entry.decode(data) if data is not None else None
        except (*STORE_ERRORS, BadEntry) as exc:
            log.warning("cache: lookup failed (%s); asking upstream", type(exc).__name__)
            self.counters.bypass("unavailable")
            return None, Decision(decision.key, "unavailable", decision.ttl_s, read=False, store=True)
        if entry is None:
            self.counters.miss(model)
        else:
            self.counters.hit(model, float(entry.cost_usd))
        return entry, decision

    async def keep(self, decision: Decision, entry: Entry) -> None:
        if not decision.store or decision.key is None:
            return
        try:
            kept = await self.store.put(decision.key, entry.encode(), decision.ttl_s)
        except STORE_ERRORS as exc:
            log.warning("cache: answer not kept (%s)", type(exc).__name__)
            self.counters.store("failed")
            return
        self.counters.store("kept" if kept else "too_large")
        if isinstance(self.store, LruStore):
            self.counters.bytes.set(self.store.bytes)

    async def close(self) -> None:
        await self.store.close()
