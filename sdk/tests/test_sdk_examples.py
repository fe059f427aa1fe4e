"""Each example runs end to end against the fake gateway (the live-gateway run is separate)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sdk_fakes import FakeGateway, error_response

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = ["chat", "streaming", "tools_pydantic", "routing", "spend_report"]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"corral_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as for any import: pydantic resolves annotations through it
    spec.loader.exec_module(module)
    return module


def test_install_commands_in_examples_are_the_readmes() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    commands = [
        line.split(":", 1)[-1].strip()
        for path in EXAMPLES.glob("*.py")
        for line in path.read_text().splitlines()
        if "pip install" in line
    ]
    assert commands, "the pydantic example says how to install its extra"
    for command in commands:
        assert command in readme, command


def test_every_example_is_listed() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_example_succeeds(name: str, gateway: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    gateway.tool_args = {"GetWeather": {"city": "Oslo", "unit": "celsius"}}
    assert _load(name).main(gateway.client()) == 0
    out = capsys.readouterr()
    assert out.out.strip(), out.err
    assert gateway.requests


@pytest.mark.parametrize("name", NAMES)
def test_example_fails_non_zero(name: str, gateway: FakeGateway) -> None:
    gateway.push(*[error_response(401, "invalid_api_key", type_="authentication_error")] * 3)
    assert _load(name).main(gateway.client()) == 1


def test_examples_run_as_scripts_and_read_the_environment() -> None:
    env = {**os.environ, "CORRAL_BASE_URL": "http://127.0.0.1:9", "CORRAL_API_KEY": "sk-none"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "chat.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1  # nothing listens on port 9: a clean failure, not a crash
    assert "request failed" in done.stderr
