"""Type checkers see the SDK as users install it: editable (`pip install -e sdk`, as `make run`
does) and as a built wheel, each in a fresh virtualenv, checked with mypy --strict."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "sdk"
USER_SCRIPT = """\
import corral

client = corral.Corral(api_key="k")
answer = client.chat.completions.create(model="llama-4-scout", messages=[{"role": "user", "content": "hi"}])
reveal_type(answer)
reveal_type(answer.choices[0].message.tool_calls)
"""
#: `parse()` is generic over the pydantic model given as the tool (as openai-python's `parse` is
#: over its response format): mypy infers the type of each call's parsed arguments.
PARSE_SCRIPT = """\
import asyncio

import corral
from pydantic import BaseModel


class Weather(BaseModel):
    city: str


class Search(BaseModel):
    query: str


client = corral.Corral(api_key="k")
parsed = client.chat.completions.parse(
    model="llama-4-scout", messages=[{"role": "user", "content": "hi"}], tools=[Weather]
)
reveal_type(parsed)
for call in parsed.choices[0].message.tool_calls or ():
    reveal_type(call.function.parsed_arguments)
    if call.function.parsed_arguments is not None:
        print(call.function.parsed_arguments.city)
two = client.chat.completions.parse(
    model="llama-4-scout", messages=[{"role": "user", "content": "hi"}], tools=[Weather, Search]
)
reveal_type(two.choices[0].message.tool_calls)


async def main() -> None:
    async with corral.AsyncCorral(api_key="k") as aclient:
        answer = await aclient.chat.completions.parse(
            model="llama-4-scout", messages=[{"role": "user", "content": "hi"}], tools=[Search]
        )
        reveal_type(answer)


asyncio.run(main())
"""
#: The pydantic the suite runs with, for the user scripts that use it.
PYDANTIC = f"pydantic=={importlib.metadata.version('pydantic')}"


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The suite's PYTHONPATH would show mypy the source tree; users have only what pip installed.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return subprocess.run(
        [str(a) for a in args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _venv(path: Path) -> Path:
    done = _run(sys.executable, "-m", "venv", path, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return path / "bin" / "python"


def _mypy(python: Path, script: Path) -> str:
    done = _run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--no-incremental",
        "--python-executable",
        python,
        script,
        cwd=script.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_mypy_sees_an_editable_install(tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    done = _run(python, "-m", "pip", "install", "-q", "--no-deps", "-e", SDK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "app.py"
    script.write_text(USER_SCRIPT)
    out = _mypy(python, script)
    assert 'Revealed type is "corral.types.chat.ChatCompletion[Any]"' in out
    assert "list[corral.types.chat.ToolCall[Any]] | None" in out


def test_mypy_infers_parsed_arguments_from_the_models_given_to_parse(tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    done = _run(python, "-m", "pip", "install", "-q", "--no-deps", "-e", SDK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = _run(python, "-m", "pip", "install", "-q", PYDANTIC, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    script = tmp_path / "app.py"
    script.write_text(PARSE_SCRIPT)
    out = _mypy(python, script)
    assert 'Revealed type is "corral.types.chat.ChatCompletion[app.Weather]"' in out
    assert 'Revealed type is "app.Weather | None"' in out
    assert "list[corral.types.chat.ToolCall[pydantic.main.BaseModel]] | None" in out
    assert 'Revealed type is "corral.types.chat.ChatCompletion[app.Search]"' in out


def test_mypy_sees_the_built_wheel(tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    built = _run(python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", SDK, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("corral_sdk-*.whl")
    done = _run(python, "-m", "pip", "install", "-q", "--no-deps", wheel, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    example = tmp_path / "chat.py"
    example.write_text((SDK / "examples" / "chat.py").read_text())
    _mypy(python, example)
