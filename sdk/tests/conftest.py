from __future__ import annotations

import pytest
from sdk_fakes import FakeGateway


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture(autouse=True)
def _no_corral_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests configure clients explicitly; a developer's environment must not leak in."""
    monkeypatch.delenv("CORRAL_BASE_URL", raising=False)
    monkeypatch.delenv("CORRAL_API_KEY", raising=False)
