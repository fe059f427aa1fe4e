"""`corral prices --measure-s N`: the pool's generation throughput as its replicas measure it
now, by logical model, shown beside the stated figure its prices are derived from (never
used to derive them)."""

from __future__ import annotations

import asyncio

from gateway.catalogue.deployments import load_catalogue
from gateway.config import Settings
from gateway.providers.vllm.throughput import Measured, measure


class NoPool(ValueError):
    """There is no configured pool replica to measure."""


def measured_by_model(settings: Settings, seconds: float) -> tuple[str, dict[str, Measured]]:
    """The pool provider's name and, per logical model it serves, what it generated over `seconds`."""
    found = settings.pool()
    if found is None or not found[1].urls:
        raise NoPool("--measure-s: no pool replicas are configured (providers.vllm.vllm.urls)")
    name, pool = found
    catalogue = load_catalogue()
    logical = {d.model_id: d.model for m in catalogue.models for d in catalogue.deployments(m) if d.provider == name}
    key = pool.api_key.get_secret_value() if pool.api_key is not None else None
    rates = asyncio.run(measure(list(pool.urls), seconds, key))
    return name, {logical[r.model_id]: r for r in rates if r.model_id in logical}
