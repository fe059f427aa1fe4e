"""Who sees what of the spend data: an admin key sees everything, including the
self-hosted pool's organisation-wide fixed GPU cost; a non-admin `spend:read` key sees
only its team's rows (or, without a team, its own requests' rows) and neither the pool's
fixed cost nor other teams, in JSON, CSV and on the page."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
from pydantic import SecretStr

from gateway.config import load_settings
from gateway.metering.render import NO_VALUE
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from tests.metering.seed import TOTAL, seed
from tests.support import running_gateway

ADMIN = "sk-bootstrap-admin"
SPAN = {"from": "2026-11-01", "to": "2026-11-02"}
#: The seed's team "search": r1 (groq), r3 (1M/1M tokens on the vLLM pool) and r4 (groq).
SEARCH_TOTAL = Decimal("0.000178") + Decimal("0.25") + Decimal("0.00046") + Decimal("0.000468")


@dataclass
class Keys:
    url: str
    admin: str
    search: str
    teamless: str
    teamless_id: str

    def get(self, bearer: str, path: str, **params: str) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers={"authorization": f"Bearer {bearer}"}, timeout=20)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    directory = tmp_path_factory.mktemp("scoping")
    store = SqlStore(f"sqlite:///{directory / 'ledger.db'}")
    store.write(seed())
    settings = load_settings(env={}).model_copy(update={"api_keys": [SecretStr(ADMIN)]})
    with running_gateway(settings, QueueSink(store, directory / "usage.journal"), auth=True) as (url, _):
        made = []
        for spec in ({"scopes": "spend:read", "team": "search"}, {"scopes": "spend:read"}):
            response = httpx.post(url + "/admin/keys", json=spec, headers={"authorization": f"Bearer {ADMIN}"})
            assert response.status_code == 201, response.text
            made.append(response.json())
        yield Keys(url, ADMIN, made[0]["key"], made[1]["key"], made[1]["id"])


def test_an_admin_key_sees_every_team_and_the_pool(keys: Keys) -> None:
    body = keys.get(keys.admin, "/v1/spend", **SPAN, by="team").json()
    assert Decimal(body["total_cost_usd"]) == TOTAL
    assert {r["team"] for r in body["rows"]} == {"ads", "search", NO_VALUE}
    assert body["pool"]["provider"] == "vllm" and Decimal(body["pool"]["fixed_cost_usd"]) > 0
    page = keys.get(keys.admin, "/reports/spend", **SPAN).text
    assert 'id="pool-fixed"' in page and "<option>ads</option>" in page
    # The page says how the fixed cost relates to the table (the pool's requests are in both).
    assert 'id="pool-split"' in page and "the table&#x27;s total + the latter" in page


def test_a_team_key_sees_its_team_only_and_no_pool_in_json(keys: Keys) -> None:
    for by in ("team", "provider", "day,provider,model,team"):
        body = keys.get(keys.search, "/v1/spend", **SPAN, by=by).json()
        assert Decimal(body["total_cost_usd"]) == SEARCH_TOTAL, by
        assert body["filters"] == {"team": "search"} and body["pool"] is None
        assert "fixed_cost_usd" not in str(body) and "ads" not in str(body)
    # Its own requests to the pool are there, priced as the ledger recorded them.
    vllm = [
        r for r in keys.get(keys.search, "/v1/spend", **SPAN, by="provider").json()["rows"] if r["provider"] == "vllm"
    ]
    assert [Decimal(r["cost_usd"]) for r in vllm] == [Decimal("0.25")]


def test_a_team_key_sees_its_team_only_in_csv(keys: Keys) -> None:
    response = keys.get(keys.search, "/v1/spend", **SPAN, by="day,provider,model,team", format="csv")
    lines = list(csv.DictReader(io.StringIO(response.text)))
    assert {line["team"] for line in lines} == {"search"}
    assert sum(Decimal(line["cost_usd"]) for line in lines) == SEARCH_TOTAL
    assert "ads" not in response.text and "gpu" not in response.text.lower()


def test_a_team_key_sees_no_pool_cost_and_no_other_team_on_the_page(keys: Keys) -> None:
    response = keys.get(keys.search, "/reports/spend", **SPAN)
    assert response.status_code == 200, response.text
    page = response.text
    assert 'id="pool-fixed"' not in page and 'id="pool-vs-hosted"' not in page and 'id="pool-hidden"' in page
    assert "<option>ads</option>" not in page and "<option selected>search</option>" in page
    assert ">ads<" not in page


def test_a_key_without_a_team_sees_its_own_requests_only(keys: Keys) -> None:
    body = keys.get(keys.teamless, "/v1/spend", **SPAN, by="team").json()
    assert body["filters"] == {"key": keys.teamless_id} and body["rows"] == [] and body["pool"] is None
    page = keys.get(keys.teamless, "/reports/spend", **SPAN).text
    assert 'id="pool-hidden"' in page and "<option>search</option>" not in page


def test_a_team_key_cannot_widen_its_scope(keys: Keys) -> None:
    assert keys.get(keys.search, "/v1/spend", **SPAN, team="ads").status_code == 403
    # A key filter only narrows within the team (key_a's request r4 is the team's).
    narrowed = keys.get(keys.search, "/v1/spend", **SPAN, key="key_a").json()
    assert narrowed["filters"] == {"team": "search", "key": "key_a"} and narrowed["pool"] is None
    assert Decimal(narrowed["total_cost_usd"]) == Decimal("0.00046") + Decimal("0.000468")
