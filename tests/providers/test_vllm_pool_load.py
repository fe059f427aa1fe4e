"""Pool load from current facts: a replica never scraped, or scraped too long ago, has an
unknown load (not an empty one); a known load is the last scrape plus our own requests
since then; the router judges replicas one by one."""

from __future__ import annotations

import aiohttp

from gateway.providers.vllm.metrics import LoadSample
from gateway.providers.vllm.pool import STALE_SCRAPES, Replica, VllmPool
from gateway.routing.policy.model import Policy, PoolSpill, RouteSettings
from gateway.routing.types import PoolLoad, ReplicaLoad
from tests.routing.test_planner import order, reason, request, run, view

from .conftest import deployment, start_fake

MODEL = deployment("vllm").model_id


async def test_a_replica_is_unknown_until_scraped_and_again_once_its_scrape_is_stale() -> None:
    fake = await start_fake("vllm")
    now = [100.0]
    pool = VllmPool([fake.url], health_interval_s=1.0, metrics_interval_s=1.0, clock=lambda: now[0])
    try:
        assert pool.state()[0].load_known is False  # never scraped: unknown, not empty
        async with aiohttp.ClientSession() as session:
            pool._session = session
            await pool.scrape(pool.replicas[0])
        assert pool.state()[0].load_known is True
        now[0] += STALE_SCRAPES * 1.0 + 0.5  # no good scrape since
        assert pool.state()[0].load_known is False
        assert pool.state()[0].queued == 0
    finally:
        await fake.stop()


def test_queued_counts_our_requests_since_the_scrape_when_the_replica_was_queueing() -> None:
    busy, idle = Replica("http://a"), Replica("http://b")
    busy.sample, idle.sample = LoadSample(running=8, waiting=2), LoadSample(running=3, waiting=0)
    for replica in (busy, idle):
        replica.scraped_at = 0.0
        replica.inflight_at_scrape = 1
        replica.inflight = 4  # three more of ours since the scrape
    assert busy.queued() == 5
    assert idle.queued() == 0  # not queueing at the scrape: ours most likely run


SPILL = Policy("t", RouteSettings(pool=PoolSpill(prefer_pool=True, max_queue_depth=4, max_kv_cache_usage=0.9)))


def judged(*replicas: ReplicaLoad | None) -> str | None:
    """Why the planner drops the pool for this load (None: it keeps it, first)."""
    known = [r for r in replicas if r is not None]
    load = PoolLoad(len(replicas), sum(r.queue_depth for r in known), 0, 0.0, replicas)
    p = run(request(), view(pool={"llama-4-scout": load}), SPILL)
    if order(p)[:1] == ["vllm"]:
        return None
    return reason(p, "vllm")


def test_replicas_are_judged_one_by_one() -> None:
    full, roomy = ReplicaLoad(queue_depth=6, kv_cache_usage=0.5), ReplicaLoad(queue_depth=1, kv_cache_usage=0.4)
    full_kv = ReplicaLoad(queue_depth=0, kv_cache_usage=0.95)
    assert judged(full, roomy) is None
    # Summed over replicas the queue (7) is over the bound, yet one replica has room.
    assert "every replica with a known load is full" in (judged(full, full_kv) or "")
    # A replica whose load is unknown is not room: with the only known one full, spill over.
    assert "1 unknown" in (judged(full, None) or "")
    assert "pool load unknown" in (judged(None, None) or "")
