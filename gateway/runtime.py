"""Everything long-lived the gateway owns: adapters (one HTTP client each), simulated
backends when no credentials are set, the dispatcher and the usage sink."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.trace import Tracer
from sqlalchemy.exc import SQLAlchemyError

from gateway.cache.service import ResponseCache
from gateway.cache.stores import CacheStore, LruStore, RedisStore
from gateway.catalogue.deployments import Catalogue, load_catalogue
from gateway.catalogue.prices import DEFAULT_PATH as DEFAULT_PRICES
from gateway.catalogue.prices import PriceBook, load_price_book
from gateway.config import ProviderConfig, Settings
from gateway.dispatch.accounting import Accounting
from gateway.dispatch.loop import Dispatcher
from gateway.fakes.demo import pointed_at, start_fakes
from gateway.fakes.server import FakeServer
from gateway.keys.access import Access
from gateway.keys.sessions import Sessions
from gateway.keys.store import KeyStore
from gateway.live import drift
from gateway.live.policy import PolicyHolder, default_policy_path
from gateway.live.shared import SharedState
from gateway.live.state import LiveState
from gateway.metering.budgets import Budgets
from gateway.metering.conversations import Conversations, ConversationStore, MemoryConversations
from gateway.metering.events import UsageEvent
from gateway.metering.idempotency import Idempotency, IdempotencyStore, MemoryStore
from gateway.metering.idempotency_redis import RedisFastPath
from gateway.metering.idempotency_sql import SqlIdempotencyStore
from gateway.metering.journal import Journal
from gateway.metering.process_store import ProcessStore
from gateway.metering.responses_sql import SqlConversations
from gateway.metering.sink import MemorySink, QueueSink, UsageSink
from gateway.metering.sql import SqlStore
from gateway.providers.base import Provider
from gateway.providers.registry import provider_class, specs
from gateway.routing.policy.model import Policy
from gateway.routing.types import PoolLoad, ReplicaLoad
from gateway.telemetry.cache import CacheCounters
from gateway.telemetry.logs import AccessLog
from gateway.telemetry.metrics import LiveGauges, Metrics
from gateway.telemetry.tracing import make_tracer
from gateway.toolcalls import fence
from gateway.toolcalls.fence import FenceLimits

log = logging.getLogger("corral")


def routing_tables(settings: Settings) -> tuple[Catalogue, PriceBook, frozenset[str]]:
    """What a gateway with `settings` routes over: the catalogue with the enabled providers'
    own rows and the configuration's overrides, the price book (its file, the pool's basis,
    prices the configuration sets) and the enabled providers. The runtime, `corral policy
    explain --config` and `corral simulate --config` take them from here alike."""
    enabled = [(name, provider_class(name), c) for name, c in settings.providers.items() if c.enabled]
    extra_rows = {k: v for _, kind, config in enabled for k, v in kind.catalogue_rows(config).items()}
    catalogue = load_catalogue().with_overrides({**extra_rows, **settings.catalogue})
    book_path = Path(settings.price_book_path) if settings.price_book_path else DEFAULT_PRICES
    prices = load_price_book(book_path, settings.pool_basis())
    configured = [p for _, kind, config in enabled for p in kind.configured_prices(config)]
    if configured:
        prices = prices.with_prices(configured)
    return catalogue, prices, frozenset(serving_providers(settings))


def serving_providers(settings: Settings, demo: bool = True) -> dict[str, bool]:
    """The providers a gateway with `settings` serves, each with whether Corral's own fake
    stands in for it: every enabled provider with credentials; with none of them holding
    any, `simulate_missing` and `demo`, the ones a fake can stand in for (simulated
    providers are a demo mode, never mixed in beside real backends)."""
    enabled = {name: config for name, config in settings.providers.items() if config.enabled}
    simulate = demo and settings.simulate_missing and not any(c.has_credentials() for c in enabled.values())
    return {
        name: not config.has_credentials()
        for name, config in enabled.items()
        if config.has_credentials() or (simulate and specs()[name].demo)
    }


@dataclass
class Runtime:
    settings: Settings
    catalogue: Catalogue
    prices: PriceBook
    providers: dict[str, Provider] = field(default_factory=dict)
    fakes: list[FakeServer] = field(default_factory=list)
    state: LiveState = field(default_factory=LiveState)
    sink: UsageSink = field(default_factory=MemorySink)
    policy: PolicyHolder = field(default_factory=lambda: PolicyHolder(None))
    shared: SharedState | None = None
    tracer: Tracer = field(default_factory=make_tracer)
    access: AccessLog = field(default_factory=AccessLog)
    metrics: Metrics = field(init=False)
    budgets: Budgets = field(init=False)
    keys: Access = field(init=False)
    dispatcher: Dispatcher = field(init=False)
    accounting: Accounting = field(init=False)
    sessions: Sessions = field(init=False)
    idempotency: Idempotency = field(init=False)
    cache: ResponseCache = field(init=False)
    responses: Conversations = field(init=False)
    _merged: tuple[Policy, tuple[object, ...], Policy] | None = field(init=False, default=None)
    _drift_watch: asyncio.Task[None] | None = field(init=False, default=None)
    _idempotency_cache: RedisFastPath | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.keys = Access(self.settings)
        self.budgets = Budgets(self._budget_policy)
        self.metrics = Metrics(self._live_gauges(), also_drain=self.access.drain)
        self.cache = ResponseCache(self._cache_store(), CacheCounters(self.metrics.registry))
        self.keys.refusals = self.metrics.refusals
        secret = self.settings.session_secret
        self.sessions = Sessions(
            secret.get_secret_value().encode() if secret is not None else secrets.token_bytes(32),
            self.settings.session_ttl_s,
        )

    def _cache_store(self) -> CacheStore:
        """Redis when REDIS_URL is set (shared by replicas), else this process's bounded LRU."""
        s = self.settings
        if s.redis_url:
            return RedisStore(s.redis_url, s.cache_redis_prefix, s.cache_max_entry_bytes)
        return LruStore(s.cache_max_bytes, s.cache_max_entry_bytes)

    def _budget_policy(self) -> Policy:
        """The policy with the API keys' own budgets added (merged once per change)."""
        policy = self.policy()
        keyed = self.keys.budgets
        if not keyed:
            return policy
        merged = self._merged
        if merged is None or merged[0] is not policy or merged[1] is not keyed:
            merged = (policy, keyed, dataclasses.replace(policy, budgets=policy.budgets + keyed))
            self._merged = merged
        return merged[2]

    def tally(self, event: UsageEvent) -> None:
        """Feed a finished request's usage to the metrics, budgets and the access log (the
        ledger has it from the journal, `sink.record`)."""
        self.metrics.record(event)
        self.budgets.record(event)
        self.access.record(event)

    def _live_gauges(self) -> LiveGauges:
        def breakers() -> list[tuple[str, str]]:
            now = self.state.clock()
            return [(key, b.status(now)) for key, b in self.state.breakers.items()]

        def cooldowns() -> list[tuple[str, float]]:
            now = self.state.clock()
            return [(key, until - now) for key, until in self.state.cooldowns.items() if until > now]

        def capability_misses() -> list[tuple[str, str, float]]:
            now = self.state.clock()
            misses = self.state.capability_misses.items()
            return [(key, f, until - now) for key, by in misses for f, until in by.items() if until > now]

        def pool() -> list[tuple[str, bool, int, int, float]]:
            replicas = [r for provider in self.providers.values() for r in provider.pool_state()]
            return [(r.url, r.healthy, r.running, r.waiting, r.kv_cache_usage) for r in replicas]

        def queue() -> int:
            return self.sink.depth

        def journal() -> int:
            return self.sink.backlog_bytes

        return LiveGauges(
            breakers,
            cooldowns,
            pool,
            queue,
            journal,
            lambda: (self.policy.reloads, self.policy.rejected_reloads),
            self.budgets.usage,
            capability_misses,
            lambda: list(self.state.out_of_rotation),
            fence.runs,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        """Build from settings; an invalid catalogue, price book or policy fails here, before serving."""
        catalogue, prices, _ = routing_tables(settings)
        policy = PolicyHolder(Path(settings.policy_path) if settings.policy_path else default_policy_path())
        policy.load_initial()
        return cls(settings=settings, catalogue=catalogue, prices=prices, policy=policy)

    async def start(self) -> None:
        limits = self.settings.validation
        fence.configure(FenceLimits(limits.cpu_budget_s, limits.workers, limits.max_memory_mb))
        await self.start_providers()
        self.dispatcher = Dispatcher(
            self.providers,
            self.catalogue,
            self.prices,
            self.state,
            self.policy,
            tracer=self.tracer,
            on_hedge=lambda event, dep: self.metrics.hedge(event, dep.provider, dep.model_id),
            on_wait=self.metrics.waiting,
        )
        self.accounting = Accounting(
            self.dispatcher,
            self.sink.record,
            self.tally,
            self.keys.limiter,
            self.budgets,
            self.metrics.refusals,
            self.metrics.ended,
            asyncio.get_running_loop().call_soon,
        )
        if any(specs()[name].pooled for name in self.providers):
            self.state.pool_source = self._pool_loads
        await self.sink.start()
        self.policy.start_watching()
        self.metrics.start()
        self._bind_key_store()
        await self._start_idempotency()
        await self._start_responses()
        await self.keys.start()
        await self._seed_budgets()
        if self.settings.redis_url:
            self.shared = SharedState(self.state, self.settings.redis_url)
            await self.shared.start()
            await self.budgets.share(self.settings.redis_url)
        interval = self.settings.catalogue_check_interval_s
        if interval > 0 and not all(p.simulated for p in self.providers.values()):
            self._drift_watch = asyncio.create_task(drift.watch(self, interval), name="corral-catalogue-check")

    async def start_providers(self, demo: bool = True) -> None:
        """An adapter for every configured provider (with `demo`, and no credentials at all,
        Corral's own fakes stand in for the providers that allow it)."""
        serving = serving_providers(self.settings, demo)
        for name, configured in self.settings.providers.items():
            if not configured.enabled:
                continue
            if name not in serving:
                log.info("provider %s: no credentials, not used", name)
                continue
            config = configured.model_copy(update={"streams": self.settings.streams})
            if serving[name]:
                config = await self._simulate(name, config)
            provider = provider_class(name)(config)
            await provider.start()
            self.providers[name] = provider
            mode = "SIMULATED (built-in fake)" if config.simulated else "live"
            log.info("provider %s: %s at %s", name, mode, config.base_url or "(pool)")

    def _bind_key_store(self) -> None:
        """API keys live in the ledger database: share the ledger's engine when there is one."""
        ledger = self.sink.ledger
        if ledger is not None:
            self.keys.use_store(lambda: KeyStore(ledger.engine, ledger.ensure_schema), owned=False)

    async def _start_idempotency(self) -> None:
        """Idempotency keys live in the ledger database (shared by replicas); in memory without one."""
        ledger = self.sink.ledger
        store: IdempotencyStore = MemoryStore()
        settings = self.settings
        if ledger is not None:
            store = SqlIdempotencyStore(ledger.engine, ledger.ensure_schema)
            if settings.redis_url:
                store = self._idempotency_cache = RedisFastPath(store, settings.redis_url)
        self.idempotency = Idempotency(
            store,
            retention_s=settings.idempotency_retention_s,
            lease_s=settings.idempotency_lease_s,
            threaded=ledger is not None,
        )
        try:
            await self.idempotency.purge()
        except SQLAlchemyError as exc:
            log.warning("idempotency: expired keys not purged at start (%s)", type(exc).__name__)

    async def _start_responses(self) -> None:
        """Responses API conversations live in the ledger database (shared by replicas); in memory without one."""
        ledger = self.sink.ledger
        store: ConversationStore = MemoryConversations()
        if ledger is not None:
            store = SqlConversations(ledger.engine, ledger.ensure_schema)
        self.responses = Conversations(
            store, retention_s=self.settings.responses_retention_s, threaded=ledger is not None
        )
        try:
            await self.responses.purge()
        except SQLAlchemyError as exc:
            log.warning("responses: expired conversations not purged at start (%s)", type(exc).__name__)

    async def _seed_budgets(self) -> None:
        """Budgets start from what the ledger already holds for their period."""
        store = self.sink.ledger
        if not self._budget_policy().budgets or store is None:
            return
        try:
            await asyncio.to_thread(self.budgets.seed_from_ledger, store.engine)
        except SQLAlchemyError as exc:
            log.warning("budgets: ledger unreadable at start (%s); counting from zero", type(exc).__name__)

    def _pool_loads(self) -> dict[str, PoolLoad]:
        """The pool's load per logical model, from the pool adapter's latest scrape."""
        loads: dict[str, PoolLoad] = {}
        for dep in (d for m in self.catalogue.models for d in self.catalogue.deployments(m) if d.pooled):
            provider = self.providers.get(dep.provider)
            replicas = provider.pool_state() if provider is not None else ()
            serving = [r for r in replicas if dep.model_id in r.models]
            healthy = [r for r in serving if r.healthy]
            known = [r for r in healthy if r.load_known]
            loads[dep.model] = PoolLoad(
                healthy_replicas=len(healthy),
                queue_depth=sum(r.queued for r in known),
                running=sum(r.running for r in known),
                kv_cache_usage=min((r.kv_cache_usage for r in known), default=0.0),
                replicas=tuple(ReplicaLoad(r.queued, r.kv_cache_usage) if r.load_known else None for r in healthy),
            )
        return loads

    async def _simulate(self, name: str, config: ProviderConfig) -> ProviderConfig:
        """Start this provider's fakes in-process and point the adapter at them."""
        spec = specs()[name]
        fakes = await start_fakes(spec, config, self.catalogue)
        self.fakes.extend(fakes)
        return pointed_at(spec, config, fakes)

    async def close(self) -> None:
        if self._drift_watch is not None:
            self._drift_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drift_watch
        await self.keys.close()
        await self.policy.stop()
        await self.budgets.close()
        await self.metrics.stop()
        await self.cache.close()
        if self.shared is not None:
            await self.shared.close()
        await self.sink.close()
        for provider in self.providers.values():
            await provider.close()
        for fake in self.fakes:
            await fake.stop()
        fence.close()
        if self._idempotency_cache is not None:
            self._idempotency_cache.close()


def ledger_store(settings: Settings) -> SqlStore:
    """The ledger as configured: inserts in a child process (default) or in-process."""
    if settings.ledger_writer == "process":
        return ProcessStore(settings.database_url, priority=settings.ledger_writer_priority)
    return SqlStore(settings.database_url)


def ledger_sink(settings: Settings) -> QueueSink:
    journal = Journal(Path(settings.journal_path), settings.journal_durability, settings.journal_fsync_ms)
    return QueueSink(ledger_store(settings), journal)
