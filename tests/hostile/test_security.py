"""Who may call what, how keys are kept, and how early hostile bodies are refused.

Every admin and spend endpoint (listed from the app's own routes, so a new one is covered
without touching this file) and the chat endpoints refuse a missing, wrong, revoked or
under-scoped key with 401/403 in OpenAI's shape; keys are stored as SHA-256 digests and
found by digest with a constant-time final compare; oversized bodies, deep JSON and huge
tool schemas get a 4xx before any backend is called.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from gateway.config import load_settings
from gateway.keys import access as access_module
from gateway.runtime import Runtime
from gateway.serve.app import create_fastapi_app
from tests.hostile.conftest import ADMIN_KEY, AuthGateway, bearer

CHAT = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
CHAT_SCOPED = {
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/route/explain"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model:path}"),
}
#: What answers without a key (README: "What is open"). Everything else takes one.
OPEN = {"/healthz", "/readyz", "/metrics"}


#: The spend and status pages' sign-in and sign-out take a key (or a session) in a form, not a
#: bearer header: their refusals are tested in tests/api/test_spend_sign_in.py and
#: tests/api/test_status_page.py.
SIGN_IN_FORMS = frozenset({"/reports/spend/sign-in", "/reports/spend/sign-out", "/status/sign-in", "/status/sign-out"})


def _protected() -> list[tuple[str, str, str]]:
    """(method, path, scope) for every operator, spend and chat route of the app."""
    app = create_fastapi_app(Runtime.from_settings(load_settings(env={})))
    found = []
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        for method in sorted(route.methods):
            if (method, route.path) in CHAT_SCOPED:
                found.append((method, route.path, "chat"))
            elif route.path.startswith("/admin/") or route.path == "/status":
                found.append((method, route.path, "admin"))
            elif route.path in SIGN_IN_FORMS:
                continue
            elif "spend" in route.path:
                found.append((method, route.path, "spend:read"))
            elif route.path not in OPEN:
                found.append((method, route.path, "unclassified"))
    return found


PROTECTED = _protected()
#: A key of each scope that is not enough for the endpoint's scope.
UNDER_SCOPED = {"admin": ["chat", "spend:read"], "spend:read": ["chat"], "chat": ["spend:read"]}


def _create(gw: AuthGateway, scopes: list[str], team: str | None = None) -> dict[str, Any]:
    made = httpx.post(
        f"{gw.url}/admin/keys",
        json={"scopes": scopes, "team": team, "name": "t"},
        headers=bearer(ADMIN_KEY),
        timeout=10,
    )
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _call(gw: AuthGateway, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    url = gw.url + path.replace("{key_id}", "key_000000000000")
    params = {"from": "2026-11-01"} if "spend" in path else None
    body = CHAT if method == "POST" and path in {p for _, p in CHAT_SCOPED} else None
    return httpx.request(method, url, headers=headers, params=params, json=body, timeout=20)


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    error = response.json()["error"]
    assert error["code"] == code and error["message"] and {"type", "param"} <= set(error)


def test_the_protected_routes_are_found() -> None:
    paths = {path for _, path, _ in PROTECTED}
    assert {"/admin/keys", "/admin/keys/{key_id}", "/admin/policy/reload", "/v1/spend"} <= paths
    assert {scope for *_, scope in PROTECTED} == {"admin", "spend:read", "chat"}, PROTECTED


def test_only_health_readiness_and_metrics_are_open(auth_gateway: AuthGateway) -> None:
    """Issue 18, reproduction 5: /v1/models, /openapi.json and /docs answered without a key.
    Every route of the app is either open (health, readiness, metrics) or in PROTECTED
    (checked there with every kind of bad key); the API documents are not served unless
    `docs` is on."""
    app = create_fastapi_app(Runtime.from_settings(load_settings(env={})))
    paths = {getattr(route, "path", "") for route in app.routes}
    assert paths == OPEN | SIGN_IN_FORMS | {path for _, path, _ in PROTECTED}
    for path in OPEN:
        assert httpx.get(auth_gateway.url + path, timeout=10).status_code == 200, path
    for path in ("/openapi.json", "/docs", "/redoc"):
        for headers in ({}, bearer(ADMIN_KEY)):
            assert httpx.get(auth_gateway.url + path, headers=headers, timeout=10).status_code == 404, path
    models = httpx.get(auth_gateway.url + "/v1/models", timeout=10)
    _assert_error(models, 401, "invalid_api_key")
    assert "deployments" not in models.text


def test_docs_are_served_when_enabled() -> None:
    app = create_fastapi_app(Runtime.from_settings(load_settings(env={"CORRAL_DOCS": "on"})))
    paths = {getattr(route, "path", "") for route in app.routes}
    assert {"/docs", "/openapi.json"} <= paths


@pytest.mark.parametrize(("method", "path", "scope"), PROTECTED, ids=[f"{m} {p}" for m, p, _ in PROTECTED])
def test_refuses_missing_wrong_revoked_and_under_scoped_keys(
    auth_gateway: AuthGateway, method: str, path: str, scope: str
) -> None:
    revoked = _create(auth_gateway, [scope])
    gone = httpx.delete(f"{auth_gateway.url}/admin/keys/{revoked['id']}", headers=bearer(ADMIN_KEY), timeout=10)
    assert gone.status_code == 200
    callers = {
        "missing": {},
        "not bearer": {"authorization": f"Basic {ADMIN_KEY}"},
        "empty": {"authorization": "Bearer"},
        "wrong": bearer(ADMIN_KEY[:-1] + "x"),
        "longer": bearer(ADMIN_KEY + "0"),
        "revoked": bearer(revoked["key"]),
    }
    for name, headers in callers.items():
        response = _call(auth_gateway, method, path, headers)
        if path in {"/reports/spend", "/status"} and name == "missing":
            # A browser with no key and no session is shown the sign-in form, still 401.
            assert response.status_code == 401 and 'id="sign-in"' in response.text
            continue
        _assert_error(response, 401, "invalid_api_key")
    for scopes in UNDER_SCOPED[scope]:
        key = _create(auth_gateway, [scopes])["key"]
        _assert_error(_call(auth_gateway, method, path, bearer(key)), 403, "insufficient_scope")
    allowed = _call(auth_gateway, method, path, bearer(_create(auth_gateway, [scope])["key"]))
    assert allowed.status_code not in {401, 403}, allowed.text


def test_keys_are_stored_as_digests_only(auth_gateway: AuthGateway) -> None:
    key = _create(auth_gateway, ["chat"], team="search")["key"]
    assert key.encode() not in auth_gateway.db.read_bytes()
    with sqlite3.connect(auth_gateway.db) as connection:
        dump = "\n".join(connection.iterdump())
    assert key not in dump and ADMIN_KEY not in dump
    assert hashlib.sha256(key.encode()).hexdigest() in dump


def test_keys_are_found_by_digest_and_compared_in_constant_time(
    auth_gateway: AuthGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The in-memory table holds digests, never keys; a lookup hashes the presented key and
    ends with hmac.compare_digest on the digests (no early-exit string compare)."""
    key = _create(auth_gateway, ["chat"])["key"]
    access = auth_gateway.runtime.keys
    table = {**access.keys, **access.static}
    assert all(len(digest) == 64 and digest not in {key, ADMIN_KEY} for digest in table)
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(access_module.hmac, "compare_digest", recording)
    digest = hashlib.sha256(key.encode()).hexdigest().encode()
    assert access.lookup(key) is not None and compared == [(digest, digest)]
    assert access.lookup(key[:-1] + ("0" if key[-1] != "0" else "1")) is None


def test_oversized_bodies_get_413_before_reading_them(auth_gateway: AuthGateway) -> None:
    limit = auth_gateway.runtime.settings.max_body_bytes
    headers = {**bearer(ADMIN_KEY), "content-type": "application/json"}
    for path in ("/v1/chat/completions", "/v1/route/explain", "/admin/keys"):
        big = httpx.post(auth_gateway.url + path, content=b" " * (limit + 1), headers=headers, timeout=30)
        _assert_error(big, 413, "request_too_large")

    def chunks() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = httpx.post(auth_gateway.url + "/v1/chat/completions", content=chunks(), headers=headers, timeout=30)
    _assert_error(streamed, 413, "request_too_large")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"model":"llama-4-scout","messages":' + b"[" * 200 + b"]" * 200 + b"}", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (
            {
                **CHAT,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"enum": ["x" * 1000] * 200}}}],
            },
            "invalid_tool_schema",
        ),
        (
            {**CHAT, "tools": [{"type": "function", "function": {"name": f"f{i}"}} for i in range(200)]},
            "invalid_value",
        ),
    ],
    ids=["deep-json", "deep-array", "huge-tool-schema", "too-many-tools"],
)
def test_hostile_bodies_are_refused_before_any_backend(auth_gateway: AuthGateway, body: Any, code: str) -> None:
    fakes = auth_gateway.runtime.fakes
    before = sum(len(f.requests) for f in fakes)
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
    answer = httpx.post(f"{auth_gateway.url}/v1/chat/completions", headers=bearer(ADMIN_KEY), timeout=30, **kwargs)
    _assert_error(answer, 400, code)
    assert sum(len(f.requests) for f in fakes) == before
