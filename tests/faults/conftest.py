"""Fixtures of the fault suite: a park of stoppable fakes, and a gateway routing Maverick
to DeepInfra (the cheaper, so the preferred) with Together as the backup."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.fakes.server import FakeServer
from gateway.runtime import Runtime
from tests.faults.harness import FakePark, fault_gateway, fault_settings
from tests.faults.traffic import Traffic, assert_ledger_exactly_once


@dataclass
class Rig:
    """A running gateway and the traffic sent to it; `finish()` stops it and checks the ledger."""

    settings: Settings
    url: str
    runtime: Runtime
    traffic: Traffic
    stack: ExitStack
    fakes: dict[str, FakeServer] = field(default_factory=dict)

    def finish(self) -> None:
        self.stack.close()
        assert_ledger_exactly_once(self.traffic, self.settings.database_url)


def open_rig(settings: Settings, fakes: dict[str, FakeServer]) -> Rig:
    stack = ExitStack()
    url, runtime = stack.enter_context(fault_gateway(settings))
    traffic = stack.enter_context(Traffic(url))
    return Rig(settings, url, runtime, traffic, stack, fakes)


@pytest.fixture
def park() -> Iterator[FakePark]:
    fakes = FakePark()
    yield fakes
    fakes.close()


@pytest.fixture
def hosted(park: FakePark, tmp_path: Path) -> Iterator[Rig]:
    fakes = {"deepinfra": park.add("deepinfra"), "together": park.add("together")}
    rig = open_rig(fault_settings(tmp_path, fakes), fakes)
    yield rig
    rig.stack.close()


# The ledger tests' PostgreSQL fixtures: a throwaway database per run, a schema per test.
from tests.metering.conftest import pg_database, pg_schema_url  # noqa: E402, F401
