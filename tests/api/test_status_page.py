"""GET /status through a running gateway, and in real headless Chromium: admin scope only,
self-contained (no scripts, no external assets), refreshes itself, and shows what routing
really did: a tripped breaker, a rate-limit cooldown, a retired deployment, live latency
samples, the pool's replicas, the policy file's hash and the refusals by reason. A
screenshot is kept in $CORRAL_TEST_ARTIFACTS (default test-artifacts/)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from gateway.config import load_settings
from gateway.fakes.script import Behaviour
from gateway.live.policy import content_hash
from gateway.runtime import Runtime
from tests.api.cdp import chromium_binary, headless_page
from tests.support import running_gateway

ARTIFACTS = Path(os.environ.get("CORRAL_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
ADMIN = "sk-bootstrap-admin"
POLICY = """
version: 1
name: status-test
defaults:
  objective: {prefer: cost}
  pool: {prefer_pool: false}
  breaker: {consecutive_failures: 1, error_rate: 0.5, min_requests: 50, window_s: 30, cooldown_s: 300}
  retry: {attempts: 1, deadline_ms: 20000, tries_per_deployment: 1}
"""


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def _chat(model: str, only: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    if only:
        body["corral"] = {"providers": {"only": [only]}}
    return body


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Runtime, Path]]:
    directory = tmp_path_factory.mktemp("status")
    policy = directory / "policy.yaml"
    policy.write_text(POLICY)
    env = {"DATABASE_URL": f"sqlite:///{directory / 'keys.db'}", "CORRAL_POLICY": str(policy)}
    settings = load_settings(env=env).model_copy(update={"api_keys": [SecretStr(ADMIN)]})
    with running_gateway(settings, auth=True) as (url, runtime), httpx.Client(base_url=url, timeout=30) as client:
        admin = _bearer(ADMIN)
        assert client.post("/v1/chat/completions", json=_chat("llama-4-scout", "bedrock"), headers=admin).is_success
        next(f for f in runtime.fakes if f.provider == "deepinfra").script.default = Behaviour(error="server_error")
        assert (
            client.post("/v1/chat/completions", json=_chat("llama-4-scout", "deepinfra"), headers=admin).status_code
            == 502
        )
        for _ in range(2):
            refused = client.post("/v1/chat/completions", json=_chat("llama-4-scout", "deepinfra"), headers=admin)
            assert refused.status_code == 503
        together = next(f for f in runtime.fakes if f.provider == "together")
        together.script.default = Behaviour(error="rate_limited", retry_after_s=120)
        assert (
            client.post("/v1/chat/completions", json=_chat("llama-4-maverick", "together"), headers=admin).status_code
            == 429
        )
        for _ in range(2):
            assert client.post("/v1/chat/completions", json=_chat("llama-4-scout")).status_code == 401
        yield client, runtime, policy


def _row(html: str, key: str) -> str:
    found = re.search(rf'<tr data-deployment="{re.escape(key)}">(.*?)</tr>', html)
    assert found, f"no row for {key}"
    return found.group(1)


def _new_key(client: httpx.Client, scopes: str) -> str:
    key: str = client.post("/admin/keys", json={"scopes": scopes}, headers=_bearer(ADMIN)).json()["key"]
    return key


def _sign_in(client: httpx.Client, path: str, key: str) -> httpx.Response:
    return httpx.post(f"{client.base_url}{path}", data={"key": key}, timeout=20)


def test_status_needs_the_admin_scope(gateway: tuple[httpx.Client, Runtime, Path]) -> None:
    client, _, _ = gateway
    chat_key = _new_key(client, "chat")
    assert client.get("/status", headers=_bearer(chat_key)).status_code == 403
    assert client.get("/status", headers=_bearer(chat_key)).json()["error"]["code"] == "insufficient_scope"


def test_a_browser_without_a_session_gets_the_sign_in_form_back_to_status(
    gateway: tuple[httpx.Client, Runtime, Path],
) -> None:
    client, _, _ = gateway
    page = client.get("/status")
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert 'action="/status/sign-in"' in page.text and "<code>admin</code>" in page.text
    signed = _sign_in(client, "/status/sign-in", _new_key(client, "admin"))
    assert signed.status_code == 303 and signed.headers["location"] == "/status"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    shown = httpx.get(f"{client.base_url}/status", cookies=signed.cookies, timeout=20)
    assert shown.status_code == 200 and '<table id="deployments">' in shown.text and 'id="sign-out"' in shown.text


def test_a_spend_read_session_gets_a_403_page_not_json(gateway: tuple[httpx.Client, Runtime, Path]) -> None:
    client, _, _ = gateway
    reader = _new_key(client, "spend:read")
    # Signed in on the spend page: the same session, but its key lacks admin.
    signed = _sign_in(client, "/reports/spend/sign-in", reader)
    assert signed.status_code == 303 and signed.headers["location"] == "/reports/spend"
    cookies = signed.cookies
    page = httpx.get(f"{client.base_url}/status", cookies=cookies, timeout=20)
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert 'id="forbidden"' in page.text and "<code>admin</code>" in page.text and 'id="sign-out"' in page.text
    assert "deployments" not in page.text
    # Signing in on the status page with that key is refused with the reason, and no session.
    refused = _sign_in(client, "/status/sign-in", reader)
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert "lacks the scope &#x27;admin&#x27;" in refused.text


def test_an_admin_session_from_the_spend_page_opens_status(gateway: tuple[httpx.Client, Runtime, Path]) -> None:
    client, _, _ = gateway
    cookies = _sign_in(client, "/reports/spend/sign-in", _new_key(client, "admin")).cookies
    page = httpx.get(f"{client.base_url}/status", cookies=cookies, timeout=20)
    assert page.status_code == 200 and '<table id="deployments">' in page.text


def test_status_shows_what_routing_did(gateway: tuple[httpx.Client, Runtime, Path]) -> None:
    client, runtime, policy = gateway
    page = client.get("/status", headers=_bearer(ADMIN))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script" not in html and not re.search(r"(src|href)=\"?https?://", html)
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "breaker open" in _row(html, "deepinfra/llama-4-scout")
    cooling = _row(html, "together/llama-4-maverick")
    assert "cooling down" in cooling and re.search(r"1[0-2]\d s left", cooling)
    assert "retired" in _row(html, "groq/llama-4-scout")
    served = _row(html, "bedrock/llama-4-scout")
    assert "active" in served and re.search(r'<td class="n">[1-9]\d*</td>$', served), "live samples counted"
    assert "status-test" in html and content_hash(policy.read_bytes()) in html
    for reason, count in (("breaker_open", 2), ("auth", 2), ("upstream_failed", 1), ("upstream_rate_limited", 1)):
        row = re.search(rf'<tr data-reason="{reason}">.*?<td class="n">(\d+)</td></tr>', html)
        assert row and int(row.group(1)) == count, reason
    replicas = [r.url for p in runtime.providers.values() for r in p.pool_state()]
    assert replicas and all(url in html for url in replicas)


def test_status_in_headless_chromium(gateway: tuple[httpx.Client, Runtime, Path]) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary: install Debian's chromium package (apt-get install -y chromium)")
    client, _, _ = gateway
    with headless_page(binary) as page:
        page.call("Network.enable")
        page.call("Network.setExtraHTTPHeaders", headers=_bearer(ADMIN))
        page.open(f"{client.base_url}/status")
        assert page.run("document.title") == "Corral status"
        state = page.run("document.querySelector('tr[data-deployment=\"deepinfra/llama-4-scout\"] .state').textContent")
        assert state == "breaker open"
        colour = page.run(
            "getComputedStyle(document.querySelector('tr[data-deployment=\"deepinfra/llama-4-scout\"] .state'))"
            ".backgroundColor"
        )
        assert colour == "rgb(255, 214, 214)", "an open breaker stands out"
        assert page.run("document.querySelectorAll('#refusals tr').length") >= 5
        page.screenshot(ARTIFACTS / "status-page.png")


def test_from_sign_in_to_status_in_chromium(gateway: tuple[httpx.Client, Runtime, Path], tmp_path: Path) -> None:
    """A person with a browser: /status shows the sign-in form; an admin key typed there
    brings them back to /status with every deployment shown; sign-out ends the session."""
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary: install Debian's chromium package (apt-get install -y chromium)")
    client, runtime, _ = gateway
    key = _new_key(client, "admin")
    with headless_page(binary) as page:
        page.open(f"{client.base_url}/status")
        assert page.run("document.querySelector('form#sign-in') !== null")
        assert page.run("document.querySelector('form#sign-in').getAttribute('action')") == "/status/sign-in"
        page.run(f"document.querySelector('#key').value = {key!r}; true")
        page.click_and_wait("#sign-in-button")
        assert page.run("location.pathname") == "/status"
        assert page.run("document.title") == "Corral status"
        assert page.run("document.cookie") == "", "the session is HttpOnly"
        shown = page.run(
            "[...document.querySelectorAll('#deployments tr[data-deployment]')].map(r => r.dataset.deployment)"
        )
        assert set(shown) == {d.key for m in runtime.catalogue.models for d in runtime.catalogue.deployments(m)}
        state = page.run("document.querySelector('tr[data-deployment=\"deepinfra/llama-4-scout\"] .state').textContent")
        assert state == "breaker open"
        page.screenshot(tmp_path / "status-signed-in.png")
        page.screenshot(ARTIFACTS / "status-signed-in.png")
        assert (tmp_path / "status-signed-in.png").stat().st_size > 10_000
        page.click_and_wait("form#sign-out button")
        assert page.run("document.querySelector('form#sign-in') !== null")
