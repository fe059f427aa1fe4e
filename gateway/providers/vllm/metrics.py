"""Reading a vLLM replica's Prometheus `/metrics` into the few numbers a router needs.

Both the current and the pre-0.12 names are accepted (docs/providers.md#73-vllm-prometheus-metrics):
`vllm:kv_cache_usage_perc` / `vllm:gpu_cache_usage_perc` (a 0-1 fraction) and
`vllm:prefix_cache_{queries,hits}_total` / `vllm:gpu_prefix_cache_{queries,hits}_total`.
Gauges and counters are summed over label sets (one per engine or model); KV-cache
usage takes the fullest engine.

A vLLM `/metrics` page is mostly histograms (tens to hundreds of KB). Only lines of the
families we read are handed to `prometheus_client`'s parser, which keeps the parse to a
few hundred lines; it still runs on the event loop (move it to a thread if pages grow).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["LoadSample", "hit_rate", "parse_metrics"]

_SAMPLES: dict[str, str] = {
    "vllm:num_requests_running": "running",
    "vllm:num_requests_waiting": "waiting",
    "vllm:kv_cache_usage_perc": "kv",
    "vllm:gpu_cache_usage_perc": "kv",
    "vllm:prefix_cache_queries_total": "queries",
    "vllm:gpu_prefix_cache_queries_total": "queries",
    "vllm:prefix_cache_hits_total": "hits",
    "vllm:gpu_prefix_cache_hits_total": "hits",
}
_FAMILIES = frozenset(name.removesuffix("_total") for name in _SAMPLES) | frozenset(_SAMPLES)
_PREFIXES = tuple(sorted(_FAMILIES))


@dataclass(frozen=True, slots=True)
class LoadSample:
    """One scrape. None: the replica does not export that metric."""

    running: int = 0
    waiting: int = 0
    kv_cache_usage: float | None = None
    prefix_queries: float | None = None
    prefix_hits: float | None = None


def _relevant(text: str) -> str:
    keep = []
    for line in text.splitlines():
        if line.startswith(_PREFIXES) or (line.startswith("# TYPE ") and line[7:].split(" ", 1)[0] in _FAMILIES):
            keep.append(line)
    keep.append("")
    return "\n".join(keep)


def parse_metrics(text: str) -> LoadSample:
    """The load numbers in a Prometheus text page; raises ValueError if it is not one."""
    sums: dict[str, float] = {}
    kv: float | None = None
    for family in text_string_to_metric_families(_relevant(text)):
        for sample in family.samples:
            field = _SAMPLES.get(sample.name)
            if field is None:
                continue
            if field == "kv":
                kv = sample.value if kv is None else max(kv, sample.value)
            else:
                sums[field] = sums.get(field, 0.0) + sample.value
    return LoadSample(
        running=int(sums.get("running", 0)),
        waiting=int(sums.get("waiting", 0)),
        kv_cache_usage=kv,
        prefix_queries=sums.get("queries"),
        prefix_hits=sums.get("hits"),
    )


def hit_rate(previous: LoadSample | None, current: LoadSample) -> float | None:
    """Prefix-cache hit rate since the previous scrape (hits / queries, in tokens).

    Without a previous scrape, or after a counter reset, the lifetime ratio is used;
    None when there were no queries to judge by.
    """
    hits, queries = current.prefix_hits, current.prefix_queries
    if hits is None or queries is None:
        return None
    if previous is not None and previous.prefix_hits is not None and previous.prefix_queries is not None:
        d_hits, d_queries = hits - previous.prefix_hits, queries - previous.prefix_queries
        if d_queries > 0 and d_hits >= 0:
            return min(d_hits / d_queries, 1.0)
        if d_queries == 0 and d_hits == 0:
            return None
    return min(hits / queries, 1.0) if queries > 0 else None
