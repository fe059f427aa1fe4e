"""The catalogue drift check against live providers: read every configured provider's model
listing, compare (`gateway.catalogue.drift`), and take vanished deployments out of rotation
(back in once listed again). Runs in the background, bounded, off the request path."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from gateway.catalogue.drift import Drift, compare

if TYPE_CHECKING:
    from gateway.runtime import Runtime

log = logging.getLogger("corral.catalogue")
#: One provider's listing may take this long; a slower one counts as unknown this round.
LISTING_TIMEOUT_S = 20.0
#: A pool's replicas are asked for their models by its health checks: wait this long for one.
POOL_FIRST_CHECK_S = 10.0
#: The reason's start marks deployments this check took out (it may put them back).
GONE = "gone from its provider's model list"


async def _listing(name: str, runtime: Runtime) -> frozenset[str] | None:
    provider = runtime.providers[name]
    try:
        async with asyncio.timeout(LISTING_TIMEOUT_S):
            served = await provider.served_models()
            waited = 0.0
            while served is None and provider.pool_state() and waited < POOL_FIRST_CHECK_S:
                await asyncio.sleep(0.1)
                waited += 0.1
                served = await provider.served_models()
            return served
    except TimeoutError:
        log.warning("catalogue check: %s did not list its models in %ss", name, LISTING_TIMEOUT_S)
        return None


async def check(runtime: Runtime) -> Drift:
    """Compare, and take out (or put back) deployments by what their providers list."""
    names = sorted(runtime.providers)
    listings = await asyncio.gather(*(_listing(name, runtime) for name in names))
    drift = compare(runtime.catalogue, dict(zip(names, listings, strict=True)), runtime.state.today())
    state = runtime.state
    gone = {d.key for d in drift.gone}
    # Out until a check finds it listed again (taken out again at every check meanwhile).
    keep_out_s = max(2 * runtime.settings.catalogue_check_interval_s, 600.0)
    for dep in drift.gone:
        if not state.out_of_rotation.get(dep.key, "").startswith(GONE):
            log.warning("catalogue check: %s (%s) is gone from %s's model list", dep.key, dep.model_id, dep.provider)
        state.take_out(dep.key, f"{GONE} (checked {state.today().isoformat()})", for_s=keep_out_s)
    listed = {n for n, served in zip(names, listings, strict=True) if served is not None}
    for key, reason in list(state.out_of_rotation.items()):
        if reason.startswith(GONE) and key not in gone and key.split("/", 1)[0] in listed:
            log.info("catalogue check: %s is listed again; back in rotation", key)
            del state.out_of_rotation[key]
            state.out_until.pop(key, None)
    runtime.metrics.catalogue_checked(drift)
    return drift


async def read_listings(runtime: Runtime) -> tuple[Drift, list[str]]:
    """For `corral catalogue check`: the configured providers only (never demo fakes)."""
    await runtime.start_providers(demo=False)
    try:
        return await check(runtime), sorted(runtime.providers)
    finally:
        for provider in runtime.providers.values():
            await provider.close()


async def watch(runtime: Runtime, interval_s: float) -> None:
    """Check every `interval_s` seconds until cancelled; a failed check is logged and retried."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await check(runtime)
        except Exception as exc:  # a check must never stop the watch
            log.warning("catalogue check failed: %s", type(exc).__name__)
