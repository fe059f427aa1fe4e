"""Every SDK example, run as its own process against a live gateway on its fakes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.runtime import ledger_sink
from tests.support import running_gateway

EXAMPLES = Path(__file__).resolve().parents[2] / "sdk" / "examples"


@pytest.fixture(scope="module")
def gateway_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("sdk-live")
    settings = load_settings(env={"DATABASE_URL": f"sqlite:///{tmp / 'ledger.db'}"}).model_copy(
        update={"journal_path": str(tmp / "usage.journal")}
    )
    with running_gateway(settings, ledger_sink(settings)) as (url, _):
        yield url


@pytest.mark.parametrize("name", ["chat", "streaming", "tools_pydantic", "routing", "spend_report"])
def test_example_runs_against_the_gateway(gateway_url: str, name: str) -> None:
    env = {**os.environ, "CORRAL_BASE_URL": gateway_url, "CORRAL_API_KEY": "demo"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip()
    assert "None" not in done.stdout, "an example printed a value it did not have"
