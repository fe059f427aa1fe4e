"""Issue 18, reproduction 7: a key without a team could tag any team and spend from that
team's budget. With the policy option `teams: {require_key_team: true}` such a request is
refused (403 policy_rejected) before any backend is called; a key with a team is still
billed to its own team whatever it tags; without the option the documented default holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import load_settings
from gateway.live.policy import default_policy_path
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.hostile.conftest import ADMIN_KEY, bearer
from tests.support import running_gateway

CHAT: dict[str, Any] = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
TAGGED = {**CHAT, "corral": {"tags": {"team": "finance"}}}


@pytest.fixture(params=[True, False], ids=["required", "default"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, bool]]:
    required: bool = request.param
    base = Path(default_policy_path() or "").read_text()
    policy = tmp_path / "policy.yaml"
    policy.write_text(base + ("\nteams: {require_key_team: true}\n" if required else ""))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    settings = load_settings(env={"DATABASE_URL": url, "CORRAL_API_KEYS": ADMIN_KEY, "CORRAL_POLICY": str(policy)})
    sink = QueueSink(SqlStore(url), tmp_path / "usage.journal")
    with running_gateway(settings, sink, auth=True) as (base_url, _):
        yield base_url, required


def _key(url: str, team: str | None) -> str:
    made = httpx.post(
        f"{url}/admin/keys", json={"scopes": ["chat"], "team": team}, headers=bearer(ADMIN_KEY), timeout=10
    )
    assert made.status_code == 201, made.text
    key: str = made.json()["key"]
    return key


def test_a_key_without_a_team_cannot_bill_another_team_when_required(gateway: tuple[str, bool]) -> None:
    url, required = gateway
    teamless = _key(url, None)
    reply = httpx.post(f"{url}/v1/chat/completions", json=TAGGED, headers=bearer(teamless), timeout=20)
    if required:
        assert reply.status_code == 403, reply.text
        error = reply.json()["error"]
        assert error["code"] == "policy_rejected" and error["param"] == "corral.tags.team"
        assert "x-corral-provider" not in reply.headers
    else:
        assert reply.status_code == 200, reply.text
    untagged = httpx.post(f"{url}/v1/chat/completions", json=CHAT, headers=bearer(teamless), timeout=20)
    assert untagged.status_code == 200
    own = httpx.post(f"{url}/v1/chat/completions", json=TAGGED, headers=bearer(_key(url, "search")), timeout=20)
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/responses", {"model": TAGGED["model"], "input": "Hi", "corral": TAGGED["corral"]}),
        ("/v1/completions", {"model": TAGGED["model"], "prompt": "Hi", "corral": TAGGED["corral"]}),
    ],
)
def test_the_responses_and_completions_endpoints_apply_the_same_rule(
    gateway: tuple[str, bool], path: str, body: dict[str, Any]
) -> None:
    url, required = gateway
    reply = httpx.post(f"{url}{path}", json=body, headers=bearer(_key(url, None)), timeout=20)
    if required:
        assert reply.status_code == 403, reply.text
        assert reply.json()["error"]["param"] == "corral.tags.team"
    else:
        assert reply.status_code == 200, reply.text
