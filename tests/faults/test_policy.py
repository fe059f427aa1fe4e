"""The policy file replaced with a broken one (or removed) while traffic flows: the broken
file is refused, the last good policy keeps routing every request, and a good file is
picked up again without a restart. tests/api/test_routing_live.py checks the refusal
message and the admin endpoint; this adds traffic, every broken kind and the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import Rig
from tests.faults.harness import policy_text
from tests.faults.traffic import assert_all_served, chat_body, until

BROKEN = {
    "yaml": "version: 1\nname: [unclosed\n",
    "schema": "version: 1\nname: broken\ndefaults: {objective: {prefer: cheapest}}\n",
    "semantic": "version: 1\nname: broken\ndefaults: {order: [nosuchprovider]}\n",
    "empty": "",
    "binary": "\x00\xff\xfe garbage",
}


@pytest.mark.parametrize("kind", [*BROKEN, "removed"])
def test_broken_policy_is_refused_and_the_last_good_one_serves(hosted: Rig, kind: str) -> None:
    """Availability and recovery: with the policy file broken (bad YAML, against the schema,
    naming an unknown provider, empty, binary) or removed, the reload is refused with an
    error naming the file, the last good policy routes every request of a burst as before
    (DeepInfra first), and a corrected file (preferring Together) applies without restart."""
    path = Path(hosted.runtime.policy.path or "")
    hosted.runtime.policy.poll_s = 0.1  # look at the file often (from the next look on)
    before = hosted.runtime.policy.current.name
    if kind == "removed":
        path.unlink()
    else:
        path.write_text(BROKEN[kind], encoding="latin-1")
        until(lambda: hosted.runtime.policy.rejected_reloads >= 1, "the watcher refused the file")
    refused = hosted.traffic.post("/admin/policy/reload")
    assert refused.status_code == 422 and "policy.yaml" in refused.json()["error"]["message"]
    assert hosted.runtime.policy.current.name == before
    assert_all_served(hosted.traffic.burst(chat_body(), n=30), by="deepinfra")
    path.write_text(policy_text(name="fixed", order=("together",)))
    until(lambda: hosted.runtime.policy.current.name == "fixed", "the corrected file applied")
    assert_all_served(hosted.traffic.burst(chat_body(), n=8), by="together")
    hosted.finish()
