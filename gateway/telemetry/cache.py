"""Counters for the response cache, counted as they happen (one increment of a cached
child per request that uses the cache). The hit ratio is
`corral_cache_hits_total / (corral_cache_hits_total + corral_cache_misses_total)`;
requests the cache does not apply to at all (no rule, not asked) are not counted."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge


class CacheCounters:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.hits = Counter("corral_cache_hits", "Answers served from the response cache", ["model"], registry=registry)
        self.misses = Counter(
            "corral_cache_misses", "Cacheable requests the response cache did not hold", ["model"], registry=registry
        )
        self.bypasses = Counter(
            "corral_cache_bypasses",
            "Requests under a cache rule (or asking for it) that did not use it, by reason: not_deterministic, "
            "tools, legacy_functions, no_cache, no_store, unavailable (the store could not be read)",
            ["reason"],
            registry=registry,
        )
        self.stored = Counter(
            "corral_cache_stores",
            "Answers written to the response cache, by result (kept, too_large, failed)",
            ["result"],
            registry=registry,
        )
        self.saved = Counter(
            "corral_cache_saved_usd",
            "What the answers served from the cache originally cost",
            ["model"],
            registry=registry,
        )
        self.bytes = Gauge(
            "corral_cache_memory_bytes",
            "Bytes held by the in-process cache (keys, values, per-entry overhead); 0 with Redis",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._children: dict[tuple[int, str], Any] = {}

    def _child(self, metric: Counter, label: str) -> Any:
        key = (id(metric), label)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(label)
        return child

    def hit(self, model: str, saved_usd: float) -> None:
        self._child(self.hits, model).inc()
        self._child(self.saved, model).inc(saved_usd)

    def miss(self, model: str) -> None:
        self._child(self.misses, model).inc()

    def bypass(self, reason: str) -> None:
        self._child(self.bypasses, reason).inc()

    def store(self, result: str) -> None:
        self._child(self.stored, result).inc()
