"""How a hit meets the keys' limits and the budgets (through a running gateway with
authentication on): it counts against requests per minute like any request, gives back the
tokens-per-minute estimate taken at admission (no upstream tokens), adds nothing to a
budget, and a team past its budget is refused before the cache is looked at."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.config import load_settings
from tests.cache.policy import POLICY
from tests.support import running_gateway

ADMIN = "sk-cache-admin"
CHAT = "/v1/chat/completions"
BUDGET = """\
budgets:
  - {team: broke, limit_usd: "0.0000000001", period: day}
"""


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("cache-admission")
    policy = directory / "policy.yaml"
    policy.write_text(POLICY + BUDGET)
    settings = load_settings(env={"DATABASE_URL": f"sqlite:///{directory / 'keys.db'}"}).model_copy(
        update={"api_keys": [SecretStr(ADMIN)], "policy_path": str(policy)}
    )
    with running_gateway(settings, auth=True) as (base, _rt):
        yield base


def _key(url: str, **spec: Any) -> str:
    made = httpx.post(url + "/admin/keys", json={"scopes": "chat", **spec}, headers=_bearer(ADMIN), timeout=10)
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _body(marker: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "llama-4-scout",
        "messages": [{"role": "user", "content": marker}],
        "max_tokens": 16,
        "temperature": 0,
        "corral": {"tags": {"cache": "yes"}},
        **extra,
    }


def test_a_hit_counts_against_requests_per_minute(url: str) -> None:
    key = _key(url, team=f"t-{secrets.token_hex(4)}", rpm=3)
    body = _body(f"rpm {secrets.token_hex(4)}")
    seen = [httpx.post(url + CHAT, json=body, headers=_bearer(key), timeout=20) for _ in range(4)]
    assert [r.status_code for r in seen] == [200, 200, 200, 429]
    assert [r.headers.get("x-corral-cache") for r in seen[:3]] == ["miss", "hit", "hit"]
    assert seen[3].json()["error"]["code"] == "rate_limit_exceeded"


def test_a_hit_gives_back_the_tokens_per_minute_it_was_charged(url: str) -> None:
    """Each request is charged its estimate (prompt + max_tokens, about 85 tokens) at
    admission: without the give-back, three hits would spend a 300-token minute."""
    key = _key(url, team=f"t-{secrets.token_hex(4)}", tpm=300)
    body = _body(f'tpm {secrets.token_hex(4)} [[fake: {{"completion_tokens": 80}}]]', max_tokens=80)
    first = httpx.post(url + CHAT, json=body, headers=_bearer(key), timeout=20)
    assert first.status_code == 200 and first.headers["x-corral-cache"] == "miss"
    for _ in range(6):
        hit = httpx.post(url + CHAT, json=body, headers=_bearer(key), timeout=20)
        assert hit.status_code == 200, hit.text
        assert hit.headers["x-corral-cache"] == "hit"


def test_a_team_past_its_budget_is_refused_even_what_the_cache_holds(url: str) -> None:
    key = _key(url, team="broke")
    body = _body(f"budget {secrets.token_hex(4)}")
    first = httpx.post(url + CHAT, json=body, headers=_bearer(key), timeout=20)
    assert first.status_code == 200 and first.headers["x-corral-cache"] == "miss"
    again = httpx.post(url + CHAT, json=body, headers=_bearer(key), timeout=20)
    assert again.status_code == 402 and again.json()["error"]["code"] == "budget_exceeded"


def test_hits_add_nothing_to_a_budget(url: str) -> None:
    """A team under budget: its hits' $0 leaves the budget where the miss put it."""
    team = f"t-{secrets.token_hex(4)}"
    key = _key(url, team=team, budget_usd="1", budget_period="day")
    body = _body(f"spent {secrets.token_hex(4)}")
    httpx.post(url + CHAT, json=body, headers=_bearer(key), timeout=20)
    spent = _spent(url)
    for _ in range(3):
        assert httpx.post(url + CHAT, json=body, headers=_bearer(key), timeout=20).headers["x-corral-cache"] == "hit"
    assert _spent(url) == spent > 0


def _spent(url: str) -> float:
    """The key budgets' used ratio from /metrics (this module makes one key with a budget)."""
    text = httpx.get(url + "/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("corral_budget_used_ratio{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if 'kind="key"' in line)
