"""/metrics counts requests refused by authentication (401/403, by reason) and by the
keys' own limits (429 for rpm/tpm, 402 for budgets, by team), with no key material."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from gateway.config import load_settings
from tests.support import running_gateway

ADMIN = "sk-bootstrap-admin"
CHAT = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16}
SPAN = {"from": "2026-11-01", "to": "2026-11-30"}


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = load_settings(env={"DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}"})
    settings = settings.model_copy(update={"api_keys": [SecretStr(ADMIN)]})
    with running_gateway(settings, auth=True) as (url, _), httpx.Client(base_url=url, timeout=20) as http:
        yield http


def _create(client: httpx.Client, **spec: object) -> dict[str, str]:
    made = client.post("/admin/keys", json=spec, headers=_bearer(ADMIN))
    assert made.status_code == 201, made.text
    return {k: str(v) for k, v in made.json().items()}


def _samples(client: httpx.Client, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = client.get("/metrics").text
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_auth_failures_are_counted_by_reason_and_scope(client: httpx.Client) -> None:
    revoked = _create(client, scopes="chat")
    assert client.delete(f"/admin/keys/{revoked['id']}", headers=_bearer(ADMIN)).status_code == 200
    chat_only = _create(client, scopes="chat", team="search")
    calls = [
        ({}, 401),
        ({"authorization": "Basic abc"}, 401),
        (_bearer("ck_not-a-key"), 401),
        (_bearer(revoked["key"]), 401),
    ]
    for headers, status in calls:
        assert client.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == status
    assert client.get("/v1/spend", params=SPAN, headers=_bearer(chat_only["key"])).status_code == 403
    assert client.get("/admin/keys", headers=_bearer(chat_only["key"])).status_code == 403
    assert client.post("/v1/chat/completions", json=CHAT, headers=_bearer(chat_only["key"])).status_code == 200
    counted = _samples(client, "corral_auth_failures_total")
    assert counted == {
        (("reason", "missing"), ("scope", "chat")): 2.0,
        (("reason", "invalid"), ("scope", "chat")): 1.0,
        (("reason", "revoked"), ("scope", "chat")): 1.0,
        (("reason", "scope"), ("scope", "spend:read")): 1.0,
        (("reason", "scope"), ("scope", "admin")): 1.0,
    }


def test_our_own_limit_refusals_are_counted_by_limit_and_team(client: httpx.Client) -> None:
    rpm = _create(client, scopes="chat", team="search", rpm=1)
    tpm = _create(client, scopes="chat", team="search", tpm=10)
    budget = _create(client, scopes="chat", budget_usd="0.0000000001", budget_period="day")
    for key, refused in ((rpm, 429), (tpm, 429), (budget, 402)):
        assert client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key["key"])).status_code == 200
        assert client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key["key"])).status_code == refused
    counted = _samples(client, "corral_rate_limited_total")
    assert counted == {
        (("limit", "requests"), ("team", "search")): 1.0,
        (("limit", "tokens"), ("team", "search")): 1.0,
        (("limit", "budget"), ("team", "none")): 1.0,
    }
    ours = [
        line
        for line in client.get("/metrics").text.splitlines()
        if line.startswith(("corral_rate_limited", "corral_auth_failures"))
    ]
    assert ours
    for key in (rpm, tpm, budget):
        assert not [line for line in ours if key["key"] in line or key["id"] in line]
