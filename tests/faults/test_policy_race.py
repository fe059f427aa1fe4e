"""Issue 18, reproduction 3: a policy file rewritten in two writes 1 ms apart, 50 times a
second, while traffic flows. The watcher used to load whatever was on disk; a file cut
before its last rule is still valid, so the truncated policy was loaded (7 times in the
attack) and requests the full policy rejects were served. Now a reload needs the same
content across two reads a settle interval apart, and a reload that drops rules is refused
unless forced or the file's `revision` is raised."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from tests.faults.conftest import Rig
from tests.faults.harness import policy_text
from tests.faults.traffic import chat_body, until

#: Requests with this tag are rejected by the full policy's last rule.
BLOCKED = {"tags": {"lane": "blocked"}}
FILLER_RULES = "".join(
    f"  - name: filler-{i}\n    match: {{tags: {{lane: filler-{i}}}}}\n    order: [together]\n" for i in range(6)
)
REJECT_RULE = "  - name: blocked-lane\n    match: {tags: {lane: blocked}}\n    reject: this lane is closed\n"


def full_policy(name: str = "full") -> str:
    return policy_text(name=name) + "rules:\n" + FILLER_RULES + REJECT_RULE


def _rewrite_in_two_writes(path: Path, text: str, stop: threading.Event, rounds: int = 150) -> int:
    """Write `text` in place in two writes 1 ms apart (cut before the last rule), 50 times
    a second, `rounds` times at most. Returns the rounds done."""
    cut = text.index(REJECT_RULE)
    done = 0
    for _ in range(rounds):
        if stop.is_set():
            break
        with path.open("w", encoding="utf-8") as file:
            file.write(text[:cut])
            file.flush()
            os.fsync(file.fileno())
            time.sleep(0.001)
            file.write(text[cut:])
        done += 1
        time.sleep(0.02)
    return done


def test_two_write_race_never_loads_a_truncated_policy(hosted: Rig) -> None:
    """Safety: while the policy file is rewritten in two writes 50 times a second (polled
    every 10 ms), no request the full policy rejects is served, and the policy in force
    always has every rule."""
    policy = hosted.runtime.policy
    path = Path(policy.path or "")
    path.write_text(full_policy())
    assert hosted.traffic.post("/admin/policy/reload?force=true").status_code == 200
    rules = len(policy.current.rules)
    assert rules == 7
    policy.poll_s = 0.01
    writer_stop = threading.Event()
    writer = threading.Thread(target=_rewrite_in_two_writes, args=(path, full_policy(), writer_stop), daemon=True)
    stop = threading.Event()
    smallest = [rules]

    def watch_policy() -> None:
        for _ in range(100_000):
            if stop.is_set():
                return
            smallest[0] = min(smallest[0], len(policy.current.rules))
            time.sleep(0.0005)

    sampler = threading.Thread(target=watch_policy, daemon=True)
    sampler.start()
    statuses: list[int] = []
    writer.start()
    try:
        for _ in range(2000):
            statuses.append(hosted.traffic.send(chat_body(corral=BLOCKED)).status)
            if not writer.is_alive():
                break
    finally:
        writer_stop.set()
        stop.set()
        writer.join(10)
        sampler.join(10)
    served = statuses.count(200)
    assert served == 0, f"{served} of {len(statuses)} requests the policy rejects were served"
    assert statuses.count(403) == len(statuses)
    assert smallest[0] == rules, f"a policy with {smallest[0]} of {rules} rules was in force"
    hosted.finish()


def test_a_reload_that_drops_rules_needs_force_or_a_revision(hosted: Rig) -> None:
    """Safety: a valid file with fewer rules is refused (422 naming the dropped rule, the
    hash logged), applies with ?force=true, and applies unforced when `revision` is raised."""
    policy = hosted.runtime.policy
    path = Path(policy.path or "")
    path.write_text(full_policy())
    assert hosted.traffic.post("/admin/policy/reload?force=true").status_code == 200
    path.write_text(policy_text(name="fewer") + "rules:\n" + FILLER_RULES)
    refused = hosted.traffic.post("/admin/policy/reload")
    body = refused.json()
    assert refused.status_code == 422 and "blocked-lane" in body["error"]["message"] and body["hash"]
    assert policy.current.name == "full"
    forced = hosted.traffic.post("/admin/policy/reload?force=true")
    assert forced.status_code == 200 and policy.current.name == "fewer" and len(policy.current.rules) == 6
    path.write_text(full_policy())
    until(lambda: policy.current.name == "full", "the fuller file applied")
    path.write_text("revision: 2\n" + policy_text(name="rev2"))
    assert hosted.traffic.post("/admin/policy/reload").status_code == 200
    assert policy.current.name == "rev2" and not policy.current.rules
    assert hosted.traffic.post("/admin/policy/reload?force=maybe").status_code == 400
    hosted.finish()
