"""API keys: the CLI, hashed storage, scopes on every protected endpoint, the key's team,
rate limits (per process, shared through Redis, Redis down) and the demo key."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr
from typer.testing import CliRunner

from gateway.cli.main import app as cli
from gateway.config import Settings, load_settings
from gateway.keys.limiter import LocalBuckets
from gateway.keys.store import KeyStore
from gateway.metering.sink import MemorySink
from gateway.runtime import Runtime
from tests.support import running_gateway

REDIS_URL = "redis://127.0.0.1:6379/15"
ADMIN = "sk-bootstrap-admin"
CHAT = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16}
SPAN = {"from": "2026-11-01", "to": "2026-11-30"}


def _settings(db: Path, **env: str) -> Settings:
    return load_settings(env={"DATABASE_URL": f"sqlite:///{db}", **env})


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_cli_create_prints_the_key_alone_on_the_last_line_and_stores_only_its_hash(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    env = {"DATABASE_URL": f"sqlite:///{db}"}
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "keys",
            "create",
            "--team",
            "search",
            "--scopes",
            "chat,spend:read",
            "--rpm",
            "60",
            "--tpm",
            "9000",
            "--budget-usd",
            "25",
            "--budget-period",
            "month",
        ],
        env=env,
    )
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("ck_") and len(key) == 46 and " " not in key
    listed = runner.invoke(cli, ["keys", "list"], env=env)
    assert listed.exit_code == 0 and "search" in listed.output and key not in listed.output
    [record] = KeyStore.from_url(env["DATABASE_URL"]).list()
    assert record.team == "search" and record.scopes == {"chat", "spend:read"}
    assert (record.rpm, record.tpm, str(record.budget_usd), record.budget_period) == (60, 9000, "25", "month")
    assert record.key_id is not None and record.key_id in listed.output
    # Hashed storage: neither the database file nor any row holds the key.
    assert key.encode() not in db.read_bytes()
    with sqlite3.connect(db) as connection:
        dump = "\n".join(connection.iterdump())
    assert key not in dump and record.key_hash in dump
    revoked = runner.invoke(cli, ["keys", "revoke", record.key_id], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert runner.invoke(cli, ["keys", "list"], env=env).output.count("key_") == 0
    assert record.key_id in runner.invoke(cli, ["keys", "list", "--all"], env=env).output
    assert runner.invoke(cli, ["keys", "revoke", "key_000000000000"], env=env).exit_code == 1
    bad = runner.invoke(cli, ["keys", "create", "--scopes", "chat,root"], env=env)
    assert bad.exit_code == 2 and "unknown scope" in bad.output
    with sqlite3.connect(db) as connection, pytest.raises(sqlite3.DatabaseError):
        connection.execute("DELETE FROM api_keys")


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    settings = _settings(tmp_path / "keys.db").model_copy(update={"api_keys": [SecretStr(ADMIN)]})
    with running_gateway(settings, auth=True) as (url, runtime):
        yield url, runtime


def _create(url: str, **spec: object) -> dict[str, object]:
    response = httpx.post(url + "/admin/keys", json=spec, headers=_bearer(ADMIN), timeout=10)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


PROTECTED = [
    ("POST", "/admin/keys", "admin"),
    ("GET", "/admin/keys", "admin"),
    ("DELETE", "/admin/keys/key_000000000000", "admin"),
    ("POST", "/admin/policy/reload", "admin"),
    ("GET", "/v1/spend", "spend:read"),
    ("GET", "/v1/spend/requests", "spend:read"),
    ("GET", "/reports/spend", "spend:read"),
    ("POST", "/v1/chat/completions", "chat"),
    ("POST", "/v1/route/explain", "chat"),
    ("POST", "/v1/responses", "chat"),
    ("POST", "/v1/completions", "chat"),
    ("GET", "/v1/models/llama-4-scout", "chat"),
]


def test_every_protected_endpoint_refuses_missing_wrong_revoked_and_under_scoped_keys(
    keyed: tuple[str, Runtime],
) -> None:
    url, _ = keyed
    revoked = _create(url, scopes=["chat", "spend:read", "admin"])
    assert httpx.delete(f"{url}/admin/keys/{revoked['id']}", headers=_bearer(ADMIN)).status_code == 200
    other = {"chat": "spend:read", "spend:read": "chat", "admin": "chat,spend:read"}
    with httpx.Client(base_url=url, timeout=10) as client:
        for method, path, scope in PROTECTED:
            under = str(_create(url, scopes=other[scope], team="t")["key"])
            for headers in ({}, _bearer("ck_wrong"), {"authorization": "Basic abc"}, _bearer(str(revoked["key"]))):
                response = client.request(method, path, headers=headers, json=CHAT, params=SPAN)
                assert response.status_code == 401, (method, path, response.text)
                if path == "/reports/spend" and not headers:
                    # A browser with no key and no session is shown the sign-in form.
                    assert 'id="sign-in"' in response.text
                    continue
                assert response.json()["error"]["code"] == "invalid_api_key"
            response = client.request(method, path, headers=_bearer(under), json=CHAT, params=SPAN)
            assert response.status_code == 403, (method, path, response.text)
            error = response.json()["error"]
            assert error["code"] == "insufficient_scope" and scope in error["message"]


def test_admin_api_creates_lists_and_revokes_and_a_new_key_works_at_once(keyed: tuple[str, Runtime]) -> None:
    url, _ = keyed
    made = _create(url, team="search", scopes="chat", rpm=100, name="ci")
    key = str(made["key"])
    assert made["id"] == _key_id(key)
    ok = httpx.post(url + "/v1/chat/completions", json=CHAT, headers=_bearer(key), timeout=20)
    assert ok.status_code == 200, ok.text
    listed = httpx.get(url + "/admin/keys", headers=_bearer(ADMIN)).json()["data"]
    assert [k["id"] for k in listed] == [made["id"]] and "key" not in listed[0]
    gone = httpx.delete(f"{url}/admin/keys/{made['id']}", headers=_bearer(ADMIN))
    assert gone.status_code == 200 and gone.json()["revoked_at"]
    assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=_bearer(key)).status_code == 401
    missing = httpx.delete(url + "/admin/keys/key_nope", headers=_bearer(ADMIN))
    assert missing.status_code == 404
    bad = httpx.post(url + "/admin/keys", json={"scopes": ["root"]}, headers=_bearer(ADMIN))
    assert bad.status_code == 400 and "unknown scope" in bad.json()["error"]["message"]
    bad = httpx.post(url + "/admin/keys", json={"scopes": "chat", "rpm": 0}, headers=_bearer(ADMIN))
    assert bad.status_code == 400


def test_the_keys_team_wins_over_the_tag_and_spend_is_limited_to_it(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "keys.db").model_copy(update={"api_keys": [SecretStr(ADMIN)]})
    sink = MemorySink()
    with running_gateway(settings, sink, auth=True) as (url, _):
        key = str(_create(url, team="search", scopes="chat,spend:read")["key"])
        body = {**CHAT, "corral": {"tags": {"team": "finance", "project": "p1"}}}
        assert httpx.post(url + "/v1/chat/completions", json=body, headers=_bearer(key), timeout=20).status_code == 200
        [event] = sink.events
        assert event.team == "search" and event.project == "p1" and event.api_key_id == _key_id(key)
        theirs = httpx.get(url + "/v1/spend", params={**SPAN, "team": "finance"}, headers=_bearer(key))
        assert theirs.status_code == 403 and "team=search" in theirs.json()["error"]["message"]


def _key_id(key: str) -> str:
    return "key_" + hashlib.sha256(key.encode()).hexdigest()[:12]


def _assert_429(response: httpx.Response, limit: str) -> None:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "rate_limit_error"
    assert limit in error["message"] and int(response.headers["retry-after"]) >= 1


def test_requests_and_tokens_per_minute_per_process(keyed: tuple[str, Runtime]) -> None:
    url, _ = keyed
    rpm_key = str(_create(url, scopes="chat", rpm=2)["key"])
    tpm_key = str(_create(url, scopes="chat", tpm=100)["key"])
    with httpx.Client(base_url=url, timeout=20) as client:
        for _ in range(2):
            assert client.post("/v1/chat/completions", json=CHAT, headers=_bearer(rpm_key)).status_code == 200
        _assert_429(client.post("/v1/chat/completions", json=CHAT, headers=_bearer(rpm_key)), "rpm")
        # The answer uses all 80 tokens it may, so settling its usage gives nothing back.
        big = {
            **CHAT,
            "max_tokens": 80,
            "messages": [{"role": "user", "content": 'Hi [[fake: {"completion_tokens": 80}]]'}],
        }
        assert client.post("/v1/chat/completions", json=big, headers=_bearer(tpm_key)).status_code == 200
        _assert_429(client.post("/v1/chat/completions", json=big, headers=_bearer(tpm_key)), "tpm")


def test_local_buckets_refill_over_the_minute() -> None:
    now = [0.0]
    buckets = LocalBuckets(clock=lambda: now[0])
    assert buckets.take("k", 60, 0, 1) == (0, 0)
    for _ in range(59):
        assert buckets.take("k", 60, 0, 1)[0] == 0
    which, wait_ms = buckets.take("k", 60, 0, 1)
    assert which == 1 and 0 < wait_ms <= 1000
    now[0] = 1.0
    assert buckets.take("k", 60, 0, 1) == (0, 0)
    assert buckets.take("t", 0, 100, 500) == (0, 0)  # capped at the whole limit
    assert buckets.take("t", 0, 100, 1)[0] == 2


@pytest.fixture
def shared_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    for name in client.scan_iter("corral:rl:*"):
        client.delete(name)
    client.close()


def test_limits_hold_across_two_gateways_sharing_redis(tmp_path: Path, shared_redis: redis.Redis) -> None:
    db = tmp_path / "keys.db"
    key, record = KeyStore.from_url(f"sqlite:///{db}").create(team="t", scopes="chat", rpm=3)
    settings = _settings(db, REDIS_URL=REDIS_URL)
    with (
        running_gateway(settings, auth=True) as (url_a, _),
        running_gateway(settings, auth=True) as (url_b, _),
    ):
        codes = []
        for url in (url_a, url_b, url_a, url_b):
            codes.append(httpx.post(url + "/v1/chat/completions", json=CHAT, headers=_bearer(key), timeout=20))
        assert [r.status_code for r in codes] == [200, 200, 200, 429]
        _assert_429(codes[-1], "rpm")
        assert shared_redis.exists(f"corral:rl:{{{record.key_id}}}:r")


def test_redis_down_still_serves_and_limits_per_process(tmp_path: Path) -> None:
    db = tmp_path / "keys.db"
    key, _ = KeyStore.from_url(f"sqlite:///{db}").create(team="t", scopes="chat", rpm=2)
    down = _settings(db, REDIS_URL="redis://127.0.0.1:1/15")
    with running_gateway(down, auth=True) as (url, _), httpx.Client(base_url=url, timeout=20) as client:
        assert client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key)).status_code == 200
        assert client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key)).status_code == 200
        _assert_429(client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key)), "rpm")


def test_with_no_keys_and_no_flag_a_demo_key_is_created_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "keys.db")
    with running_gateway(settings, auth=True) as (url, runtime):
        demo = runtime.keys.demo_key
        assert demo is not None
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, timeout=20).status_code == 401
        assert httpx.post(url + "/v1/chat/completions", json=CHAT, headers=_bearer(demo), timeout=20).status_code == 200
        assert httpx.get(url + "/admin/keys", headers=_bearer(demo)).status_code == 200
    with running_gateway(settings, auth=True) as (url, runtime):
        assert runtime.keys.demo_key is None
        assert httpx.get(url + "/admin/keys", headers=_bearer(demo)).status_code == 200
    assert len(KeyStore.from_url(settings.database_url).list()) == 1


def test_auth_can_only_be_turned_off_explicitly() -> None:
    assert load_settings(env={}).auth is True
    assert load_settings(env={"CORRAL_AUTH": "off"}).auth is False


def test_a_keys_own_budget_is_enforced(keyed: tuple[str, Runtime]) -> None:
    url, _ = keyed
    key = str(_create(url, scopes="chat", budget_usd="0.0000000001", budget_period="day")["key"])
    with httpx.Client(base_url=url, timeout=20) as client:
        assert client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key)).status_code == 200
        spent = client.post("/v1/chat/completions", json=CHAT, headers=_bearer(key))
        assert spent.status_code == 402 and spent.json()["error"]["code"] == "budget_exceeded"
