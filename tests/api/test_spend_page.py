"""GET /reports/spend in real headless Chromium (Debian's chromium package): the page
loads with no network beyond the gateway, the charts render, a filter changes the
figures, the CSV link works. A screenshot is kept in $CORRAL_TEST_ARTIFACTS
(default test-artifacts/)."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from gateway.config import load_settings
from gateway.metering.render import NO_VALUE
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.api.cdp import chromium_binary, headless_page
from tests.metering.seed import seed
from tests.support import running_gateway

ARTIFACTS = Path(os.environ.get("CORRAL_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"))
PAGE = "/reports/spend?from=2026-11-01&to=2026-11-03"


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("page")
    store = SqlStore(f"sqlite:///{directory / 'ledger.db'}")
    store.write(seed())
    with running_gateway(load_settings(env={}), QueueSink(store, directory / "usage.journal")) as (url, _runtime):
        yield url


def test_the_page_is_self_contained(gateway_url: str) -> None:
    response = httpx.get(gateway_url + PAGE, timeout=20)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script" not in html and not re.search(r"(src|href)=\"https?://", html)
    assert 'id="spend-over-time"' in html and "0.25162 USD exactly" in html
    assert f"<td>{NO_VALUE}</td>" in html  # the request without a team, labelled as in CSV, JSON and tables


def test_a_bad_period_is_refused(gateway_url: str) -> None:
    response = httpx.get(gateway_url + "/reports/spend?from=2026-11-03&to=2026-11-01", timeout=20)
    assert response.status_code == 400 and "before" in response.json()["error"]["message"]


def test_the_page_in_headless_chromium(gateway_url: str) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip("no chromium binary: install Debian's chromium package (apt-get install -y chromium)")
    with headless_page(binary) as page:
        page.open(gateway_url + PAGE)
        # Rounded to cents, the exact amount on hover.
        assert page.run("document.querySelector('#total-cost b').textContent") == "0.25"
        assert page.run("document.querySelector('#total-cost b span').title") == "0.25162 USD exactly"
        bars = page.run("document.querySelectorAll('#spend-over-time rect.bar').length")
        assert bars == 4
        box = page.run(
            "(() => { const r = document.querySelector('#spend-over-time').getBoundingClientRect();"
            " return [r.width, r.height]; })()"
        )
        assert box[0] > 100 and box[1] > 100
        # The pool and the hosted providers with list prices: groq, together, deepinfra, bedrock, fireworks
        # (a free local Ollama is left out of the comparison).
        assert page.run("document.querySelectorAll('#pool-vs-hosted rect.bar').length") == 6
        page.screenshot(ARTIFACTS / "spend-page.png")

        page.run("document.querySelector('#team').value = 'ads'; true")
        page.click_and_wait("#apply")
        assert "team=ads" in page.run("location.search")
        assert page.run("document.querySelector('#total-cost b').textContent") == "0.00"
        assert page.run("document.querySelector('#total-cost b span').title") == "0.000387 USD exactly"
        assert page.run("document.querySelectorAll('#spend-over-time rect.bar').length") == 2
        page.screenshot(ARTIFACTS / "spend-page-team-ads.png")

        csv_text = page.run("fetch(document.querySelector('#csv').href).then(r => r.text())")
        assert csv_text.startswith("day,provider,model,team,requests")
        lines = list(csv.DictReader(io.StringIO(csv_text)))
        assert sum(Decimal(line["cost_usd"]) for line in lines) == Decimal("0.000387")
        assert {line["team"] for line in lines} == {"ads"}
