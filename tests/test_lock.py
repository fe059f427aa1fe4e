"""Supply chain: every dependency the two projects declare is pinned, with hashes, in
requirements.lock (what `make` installs from), at a version the declaration allows."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\\\]+)", re.M)


def locked() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def declared() -> list[Requirement]:
    out = []
    for path, extras in ((ROOT / "pyproject.toml", ("dev",)), (ROOT / "sdk" / "pyproject.toml", ("pydantic", "dev"))):
        project = tomllib.loads(path.read_text())["project"]
        names = list(project.get("dependencies", []))
        for extra in extras:
            names += project.get("optional-dependencies", {}).get(extra, [])
        out += [Requirement(n) for n in names]
    return [r for r in out if r.marker is None or r.marker.evaluate()]


@pytest.mark.parametrize("requirement", declared(), ids=str)
def test_declared_dependency_is_locked_at_an_allowed_version(requirement: Requirement) -> None:
    pins = locked()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement} is not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: run `make lock`"
    )


def test_every_pin_carries_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text)
    pinned = [b for b in blocks if PIN.match(b)]
    assert pinned and all("--hash=sha256:" in b for b in pinned)


def test_the_vllm_release_is_pinned() -> None:
    """compose (as the default of an overridable tag) and the Kubernetes manifests name one release."""
    pattern = re.compile(r"vllm/vllm-openai:(\$\{\w+:-)?(\S+?)\}?(\s|$)")
    files = [ROOT / "compose.yaml", *sorted((ROOT / "selfhost").rglob("*.yaml"))]
    tags = [m.group(2) for path in files for m in pattern.finditer(path.read_text())]
    assert len(tags) >= 3, tags
    assert len(set(tags)) == 1 and re.fullmatch(r"v\d+\.\d+\.\d+", tags[0]), tags
