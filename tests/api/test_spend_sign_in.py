"""The spend page for a person with a browser, authentication on: sign in with a key in a
form, read the page, download the CSV in the same session, sign out — in real headless
Chromium. Then what guards the session: HttpOnly and SameSite=Strict, a signature, expiry,
revocation with the key, the sign-out form token, and sign-in refused from another site."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from gateway.config import load_settings
from gateway.keys.sessions import COOKIE, Sessions
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.runtime import Runtime
from tests.api.cdp import chromium_binary, headless_page
from tests.metering.seed import seed
from tests.support import running_gateway

ADMIN = "sk-bootstrap-admin"
PAGE = "/reports/spend?from=2026-11-01&to=2026-11-02"
#: The search team's spend in the seeded ledger (r1, r3, r4).
SEARCH_TOTAL = Decimal("0.000178") + Decimal("0.25") + Decimal("0.00046") + Decimal("0.000468")


@dataclass
class Gateway:
    url: str
    runtime: Runtime

    def new_key(self, **spec: str) -> tuple[str, str]:
        response = httpx.post(
            self.url + "/admin/keys", json=spec, headers={"authorization": f"Bearer {ADMIN}"}, timeout=20
        )
        assert response.status_code == 201, response.text
        made = response.json()
        return made["key"], made["id"]

    def revoke(self, key_id: str) -> None:
        response = httpx.delete(
            self.url + f"/admin/keys/{key_id}", headers={"authorization": f"Bearer {ADMIN}"}, timeout=20
        )
        assert response.status_code == 200, response.text

    def sign_in(self, key: str, **headers: str) -> httpx.Response:
        return httpx.post(self.url + "/reports/spend/sign-in", data={"key": key}, headers=headers, timeout=20)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("sign-in")
    store = SqlStore(f"sqlite:///{directory / 'ledger.db'}")
    store.write(seed())
    settings = load_settings(env={}).model_copy(update={"api_keys": [SecretStr(ADMIN)]})
    with running_gateway(settings, QueueSink(store, directory / "usage.journal"), auth=True) as (url, runtime):
        yield Gateway(url, runtime)


def test_from_sign_in_to_csv_download_in_chromium(gateway: Gateway) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary: install Debian's chromium package (apt-get install -y chromium)")
    key, _key_id = gateway.new_key(scopes="spend:read", team="search")
    with headless_page(binary) as page:
        page.open(gateway.url + PAGE)
        assert page.run("document.querySelector('form#sign-in') !== null")
        page.run(f"document.querySelector('#key').value = {key!r}; true")
        page.click_and_wait("#sign-in-button")
        assert page.run("location.pathname + location.search") == PAGE
        assert page.run("document.querySelector('#total-cost b span').title") == f"{SEARCH_TOTAL} USD exactly"
        # The session is HttpOnly: no script on the page can read it.
        assert page.run("document.cookie") == ""
        csv_text = page.run(
            "fetch(document.querySelector('#csv').href).then(r => r.status === 200 ? r.text() : 'status ' + r.status)"
        )
        lines = list(csv.DictReader(io.StringIO(csv_text)))
        assert {line["team"] for line in lines} == {"search"}
        assert sum(Decimal(line["cost_usd"]) for line in lines) == SEARCH_TOTAL
        page.click_and_wait("#sign-out-button")
        assert page.run("document.querySelector('form#sign-in') !== null")
        after = page.run("fetch('/v1/spend?from=2026-11-01&format=csv').then(r => r.status)")
        assert after == 401


def test_a_browser_without_a_session_gets_the_form_and_a_script_gets_json(gateway: Gateway) -> None:
    page = httpx.get(gateway.url + PAGE, timeout=20)
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert 'action="/reports/spend/sign-in?from=2026-11-01&amp;to=2026-11-02"' in page.text
    api = httpx.get(gateway.url + "/v1/spend", params={"from": "2026-11-01"}, timeout=20)
    assert api.status_code == 401 and api.json()["error"]["code"] == "invalid_api_key"


def test_the_session_cookie_is_httponly_strict_and_expiring(gateway: Gateway) -> None:
    key, _ = gateway.new_key(scopes="spend:read", team="search")
    signed_in = gateway.sign_in(key)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/reports/spend"
    kept = httpx.post(gateway.url + "/reports/spend/sign-in?from=2026-11-01", data={"key": key}, timeout=20)
    assert kept.headers["location"] == "/reports/spend?from=2026-11-01"
    cookie = signed_in.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert f"max-age={gateway.runtime.settings.session_ttl_s}" in cookie
    assert key not in signed_in.headers["set-cookie"]


def test_a_key_without_spend_read_or_a_wrong_key_is_refused(gateway: Gateway) -> None:
    chat_only, _ = gateway.new_key(scopes="chat")
    refused = gateway.sign_in(chat_only)
    assert refused.status_code == 403 and "set-cookie" not in refused.headers and "spend:read" in refused.text
    wrong = gateway.sign_in("ck_not-a-key")
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


def test_revoking_the_key_ends_its_sessions(gateway: Gateway) -> None:
    key, key_id = gateway.new_key(scopes="spend:read", team="search")
    cookies = gateway.sign_in(key).cookies
    assert httpx.get(gateway.url + PAGE, cookies=cookies, timeout=20).status_code == 200
    gateway.revoke(key_id)
    after = httpx.get(gateway.url + PAGE, cookies=cookies, timeout=20)
    assert after.status_code == 401 and 'id="sign-in"' in after.text


def test_forged_and_expired_sessions_are_refused(gateway: Gateway) -> None:
    _key, key_id = gateway.new_key(scopes="spend:read", team="search")
    forged = Sessions(b"another secret", 3600).issue(key_id, time.time())
    expired = gateway.runtime.sessions.issue(key_id, time.time() - 2 * gateway.runtime.sessions.ttl_s)
    for token in (forged, expired, "garbage"):
        response = httpx.get(gateway.url + PAGE, cookies={COOKIE: token}, timeout=20)
        assert response.status_code == 401 and 'id="sign-in"' in response.text


def test_sign_out_needs_the_session_s_form_token_and_sign_in_its_own_origin(gateway: Gateway) -> None:
    key, _ = gateway.new_key(scopes="spend:read", team="search")
    cookies = gateway.sign_in(key).cookies
    forged = httpx.post(gateway.url + "/reports/spend/sign-out", data={"csrf": "guess"}, cookies=cookies, timeout=20)
    assert forged.status_code == 403
    assert httpx.get(gateway.url + PAGE, cookies=cookies, timeout=20).status_code == 200
    cross = gateway.sign_in(key, origin="http://evil.example")
    assert cross.status_code == 403 and "set-cookie" not in cross.headers


def test_the_page_s_sign_out_form_carries_the_token(gateway: Gateway, tmp_path: Path) -> None:
    key, _ = gateway.new_key(scopes="spend:read", team="search")
    cookies = gateway.sign_in(key).cookies
    page = httpx.get(gateway.url + PAGE, cookies=cookies, timeout=20).text
    token = gateway.runtime.sessions.csrf(cookies[COOKIE])
    assert f'name="csrf" value="{token}"' in page
    out = httpx.post(gateway.url + "/reports/spend/sign-out", data={"csrf": token}, cookies=cookies, timeout=20)
    assert out.status_code == 303 and "max-age=0" in out.headers["set-cookie"].lower()
