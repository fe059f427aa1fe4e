"""The fake of a provider, by the provider's name (each provider's descriptor names its fake)."""

from __future__ import annotations

from typing import Any

from gateway.fakes.server import FakeServer
from gateway.providers.registry import fake_class, specs


def faked() -> list[str]:
    """The providers that have a fake."""
    return sorted(name for name, spec in specs().items() if spec.fake is not None)


def make_fake(provider: str, **kwargs: Any) -> FakeServer:
    cls = fake_class(provider)
    assert issubclass(cls, FakeServer)
    fake: FakeServer = cls(**kwargs)
    return fake
