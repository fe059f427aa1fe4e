"""A vLLM replica disappearing from the pool of two (its listener closed), then coming
back: the pool keeps serving from the other replica and takes the returning one back."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from gateway.fakes.server import FakeServer
from gateway.runtime import Runtime
from tests.faults.conftest import open_rig
from tests.faults.harness import SCOUT, FakePark, fault_settings
from tests.faults.traffic import assert_all_served, chat_body, until

SCOUT_ID = "meta-llama/Llama-4-Scout-17B-16E-Instruct"


def _healthy(runtime: Runtime) -> set[str]:
    pool: Any = runtime.providers["vllm"]
    return {r.url for r in pool.pool_state() if r.healthy}


def _root(fake: FakeServer) -> str:
    return fake.base_url.rstrip("/")


def test_replica_gone_is_served_around_and_taken_back(park: FakePark, tmp_path: Path) -> None:
    """Availability and recovery: with one of two replicas refusing connections, every
    request of a burst is still served by the pool (a request whose replica refuses the
    connection goes to the other, and the refusing one leaves the rotation); once it
    listens again its health check puts it back and it serves again, without a restart.
    Ledger: exactly once."""
    replicas = [park.add("vllm", model_id=SCOUT_ID), park.add("vllm", model_id=SCOUT_ID)]
    backup = park.add("deepinfra")
    rig = open_rig(fault_settings(tmp_path, {"vllm": replicas, "deepinfra": backup}), {"deepinfra": backup})
    both = {_root(f) for f in replicas}
    until(lambda: _healthy(rig.runtime) == both, "both replicas healthy")
    prompts = itertools.count()  # distinct conversations: the pool keeps each one on one replica

    def ask() -> dict[str, object]:
        return chat_body(f"hello {next(prompts)}", model=SCOUT)

    assert_all_served(rig.traffic.burst(lambda _: ask(), n=16), by="vllm")
    gone, stays = replicas
    assert gone.requests and stays.requests, "both replicas served"
    park.stop(gone)
    assert_all_served(rig.traffic.burst(lambda _: ask(), n=40), by="vllm")
    until(lambda: _healthy(rig.runtime) == {_root(stays)}, "the gone replica out of rotation")
    served_before = len(gone.requests)
    park.restart(gone)
    until(lambda: _healthy(rig.runtime) == both, "the replica back in rotation")

    def gone_serves_again() -> bool:
        rig.traffic.send(ask())
        return len(gone.requests) > served_before

    until(gone_serves_again, "the returning replica serves")
    rig.finish()
