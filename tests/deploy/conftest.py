"""Shared helpers for the deployment tests (no network, no packages installed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
K8S = ROOT / "selfhost" / "k8s"

#: The line .ci/run needs so the `docker-compose config` test runs instead of skipping.
APT_LINE = (
    "command -v docker-compose >/dev/null || (apt-get update -qq && "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose)"
)

#: Environment variable names that carry secrets.
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
#: Shapes of real credentials that must never appear in a tracked file.
REAL_SECRET = re.compile(
    r"(gsk_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16})"
)
#: A value that only refers to the environment: `${VAR}`, `${VAR:-}`, `${VAR:-default}`.
ENV_REF = re.compile(r"^\$\{[A-Z0-9_]+(:?-[^}]*)?\}$")


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def load_all(path: Path) -> list[dict[str, Any]]:
    with path.open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping (compose allows a list of NAME=value too)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def flags(args: list[str]) -> dict[str, str]:
    """`--a=b` / `--a b` / `--flag` into {"--a": "b", "--flag": ""}; the positional model as "model"."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            out.setdefault("model", arg)
            i += 1
            continue
        if "=" in arg:
            name, value = arg.split("=", 1)
            out[name] = value
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            out[arg] = args[i + 1]
            i += 2
        else:
            out[arg] = ""
            i += 1
    return out
