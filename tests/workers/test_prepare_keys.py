"""`corral serve --workers N` creates the demo key once, in the supervisor, before the workers start."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from gateway.config import Settings
from gateway.keys.access import DEMO_NAME
from gateway.keys.store import KeyStore
from gateway.serve.workers import prepare_keys


def _keys(url: str) -> list[str]:
    store = KeyStore.from_url(url)
    try:
        return [record.name or "" for record in store.list()]
    finally:
        store.close()


def test_one_demo_key_however_often_the_keys_are_prepared(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    settings = Settings(database_url=url)
    prepare_keys(settings)
    prepare_keys(settings)
    assert _keys(url) == [DEMO_NAME]


def test_no_demo_key_with_static_keys_or_without_auth(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    prepare_keys(Settings(database_url=url, api_keys=[SecretStr("static-key")]))
    prepare_keys(Settings(database_url=url, auth=False))
    assert not (tmp_path / "ledger.db").exists() or _keys(url) == []
