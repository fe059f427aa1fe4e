"""Who may call: the static bootstrap keys, the key store's keys (cached in memory and
refreshed every few seconds, so the request path does no database I/O), the demo key,
and per-key rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError

from gateway.config import Settings
from gateway.keys.demo import DEMO_NAME, ensure_demo
from gateway.keys.limiter import RateLimiter
from gateway.keys.model import SCOPES, KeyRecord, hash_key, key_id_for
from gateway.keys.store import KeyStore
from gateway.routing.policy.model import Budget
from gateway.telemetry.refusals import Refusals

log = logging.getLogger("corral.keys")

REFRESH_S = 2.0


def static_keys(settings: Settings) -> dict[str, KeyRecord]:
    """CORRAL_API_KEYS: admin-scoped bootstrap keys with no team and no limits."""
    out = {}
    for secret in settings.api_keys:
        digest = hash_key(secret.get_secret_value())
        out[digest] = KeyRecord(
            key_id=key_id_for(digest), key_hash=digest, scopes=frozenset(SCOPES), name="static", static=True
        )
    return out


class Access:
    def __init__(self, settings: Settings, refresh_s: float = REFRESH_S) -> None:
        self.settings = settings
        #: Counts refused requests (the runtime swaps in the one /metrics exports).
        self.refusals = Refusals()
        self.enabled = settings.auth
        self.refresh_s = refresh_s
        self.static = static_keys(settings)
        #: key hash -> record, active store keys only (replaced whole on every refresh).
        self.keys: dict[str, KeyRecord] = {}
        #: Hashes of revoked store keys: only to tell "revoked" from "invalid" in the metrics.
        self.revoked: frozenset[str] = frozenset()
        #: The keys' own budgets, enforced beside the policy's by `gateway.metering.budgets`.
        self.budgets: tuple[Budget, ...] = ()
        self.limiter = RateLimiter(settings.redis_url)
        self.store: KeyStore | None = None
        self._open_store: Callable[[], KeyStore] = lambda: KeyStore.from_url(settings.database_url)
        self._owns_store = True
        self._task: asyncio.Task[None] | None = None
        self._refresh_failed = False
        #: Shown once in the startup log when this process created the demo key.
        self.demo_key: str | None = None
        #: The demo key's id when it is the only kind of key (whoever created it).
        self.demo_key_id: str | None = None

    def use_store(self, factory: Callable[[], KeyStore], owned: bool) -> None:
        """Where keys live (the runtime points this at the ledger's engine)."""
        self._open_store = factory
        self._owns_store = owned

    def key_store(self) -> KeyStore:
        if self.store is None:
            self.store = self._open_store()
        return self.store

    def lookup(self, token: str) -> KeyRecord | None:
        """The record of an active key, or None. The lookup is by the key's SHA-256: timing
        can at most reveal something about a hash an attacker already chose by picking the
        key, never about a stored key's bytes; the final compare_digest is belt and braces."""
        digest = hash_key(token)
        record = self.keys.get(digest) or self.static.get(digest)
        if record is None or not _same(record.key_hash, digest):
            return None
        return record

    def active(self, key_id: str) -> KeyRecord | None:
        """The record of an active key by its id (a browser session names its key so), or
        None once the key is revoked or unknown."""
        for record in (*self.keys.values(), *self.static.values()):
            if record.key_id == key_id:
                return record
        return None

    def is_revoked(self, token: str) -> bool:
        return hash_key(token) in self.revoked

    async def start(self) -> None:
        await self.limiter.start()
        if not self.enabled:
            log.warning("authentication is OFF (--no-auth / CORRAL_AUTH=off): every caller is an anonymous admin")
            return
        try:
            await asyncio.to_thread(self.key_store().ensure_schema)
            await self.refresh()
        except SQLAlchemyError as exc:
            log.warning("api keys: key store unreadable at start (%s); retrying in the background", type(exc).__name__)
        else:
            await self._demo_key()
        self._task = asyncio.create_task(self._refresh_forever(), name="corral-keys-refresh")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.limiter.close()
        if self.store is not None and self._owns_store:
            self.store.close()

    async def refresh(self) -> None:
        records = await asyncio.to_thread(self.key_store().list, True)
        self.revoked = frozenset(r.key_hash for r in records if r.revoked_at is not None)
        self._set({r.key_hash: r for r in records if r.revoked_at is None})

    def _set(self, keys: dict[str, KeyRecord]) -> None:
        self.keys = keys
        budgets = tuple(
            Budget(limit_usd=r.budget_usd, period="day" if r.budget_period == "day" else "month", key=r.key_id)
            for r in keys.values()
            if r.budget_usd is not None and r.key_id is not None
        )
        if budgets != self.budgets:
            self.budgets = budgets

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.refresh()
            except SQLAlchemyError as exc:
                if not self._refresh_failed:
                    log.warning("api keys: key store unreadable (%s); serving the cached keys", type(exc).__name__)
                self._refresh_failed = True
            else:
                self._refresh_failed = False

    async def _demo_key(self) -> None:
        """No keys at all and auth not turned off: create one demo key, once per database
        (replicas starting together agree on one), so that `make run` works out of the
        box; later starts, and replicas that lost the race, only say which key it is."""
        if self.static:
            return
        if self.keys:
            demos = [r for r in self.keys.values() if r.name == DEMO_NAME]
            if len(demos) == len(self.keys):
                self.demo_key_id = demos[0].key_id
                log.warning(
                    "demo key %s is active (printed when it was created); revoke it with "
                    "`corral keys revoke %s` once you have created your own keys",
                    demos[0].key_id,
                    demos[0].key_id,
                )
            return
        demo = await asyncio.to_thread(ensure_demo, self.key_store())
        if demo is None:  # keys were created meanwhile; the next refresh loads them
            return
        record = demo.record
        self.demo_key_id = record.key_id
        if record.revoked_at is not None:
            log.warning(
                "no active API keys: the demo key %s was revoked and is made only once; "
                "create a key with `corral keys create`",
                record.key_id,
            )
            return
        self._set({**self.keys, record.key_hash: record})
        if demo.key is None:
            log.warning(
                "demo key %s was created by another gateway process starting at the same time "
                "(its key is in that process's startup log); revoke it with `corral keys revoke %s`",
                record.key_id,
                record.key_id,
            )
            return
        self.demo_key = demo.key
        log.warning(
            "no API keys configured: created a DEMO key (scopes admin, chat, spend:read; stored hashed, "
            "shown only now; revoke with `corral keys revoke %s`, or disable auth explicitly with --no-auth)",
            record.key_id,
        )
        log.warning("demo key: %s", demo.key)

    async def create(
        self,
        *,
        team: str | None,
        scopes: str | list[str],
        rpm: int | None = None,
        tpm: int | None = None,
        budget_usd: str | float | Decimal | None = None,
        budget_period: str | None = None,
        name: str = "",
    ) -> tuple[str, KeyRecord]:
        store = self.key_store()

        def create() -> tuple[str, KeyRecord]:
            return store.create(
                team=team,
                scopes=scopes,
                rpm=rpm,
                tpm=tpm,
                budget_usd=budget_usd,
                budget_period=budget_period,
                name=name,
            )

        key, record = await asyncio.to_thread(create)
        self._set({**self.keys, record.key_hash: record})
        return key, record

    async def list(self, include_revoked: bool) -> list[KeyRecord]:
        return await asyncio.to_thread(self.key_store().list, include_revoked)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        record = await asyncio.to_thread(self.key_store().revoke, key_id)
        if record is not None:
            self.revoked = self.revoked | {record.key_hash}
            self._set({h: r for h, r in self.keys.items() if r.key_id != key_id})
        return record


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
