"""Every backend Corral can use, by name. Adding a backend is its own module (exporting
`SPEC` and its adapter) plus one line in `MODULES`."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from gateway.providers.base import Provider
from gateway.providers.spec import ProviderSpec

#: The modules that export a provider's `SPEC`, in the order providers are listed.
MODULES = (
    "gateway.providers.groq",
    "gateway.providers.together",
    "gateway.providers.deepinfra",
    "gateway.providers.bedrock.adapter",
    "gateway.providers.vllm.adapter",
    "gateway.providers.fireworks",
    "gateway.providers.sglang",
    "gateway.providers.ollama",
    "gateway.providers.litellm.adapter",
)


@cache
def specs() -> dict[str, ProviderSpec]:
    found: dict[str, ProviderSpec] = {}
    for module in MODULES:
        spec = import_module(module).SPEC
        assert isinstance(spec, ProviderSpec)
        found[spec.name] = spec
    return found


def names() -> tuple[str, ...]:
    return tuple(specs())


def spec(name: str) -> ProviderSpec:
    return specs()[name]


def pooled() -> frozenset[str]:
    return frozenset(n for n, s in specs().items() if s.pooled)


def _load(path: str) -> type:
    module, _, attr = path.partition(":")
    found: type = getattr(import_module(module), attr)
    return found


def provider_class(name: str) -> type[Provider]:
    cls = _load(specs()[name].adapter)
    assert issubclass(cls, Provider)
    return cls


def fake_class(name: str) -> type:
    path = specs()[name].fake
    if path is None:
        raise KeyError(f"provider {name!r} has no fake")
    return _load(path)
