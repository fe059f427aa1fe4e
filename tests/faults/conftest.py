"""Fixtures of the fault suite: a park of stoppable fakes, and a gateway routing Maverick
to DeepInfra (the cheaper, so the preferred) with Together as the backup. A run also
writes `faults-summary.json` into pytest's base temp directory: each scenario, the
invariant its docstring states, and whether the gateway survived it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.config import Settings
from gateway.fakes.server import FakeServer
from gateway.runtime import Runtime
from tests.faults.harness import FakePark, fault_gateway, fault_settings
from tests.faults.traffic import Traffic, assert_ledger_exactly_once

# The ledger tests' PostgreSQL fixtures: a throwaway database per run, a schema per test.
from tests.metering.conftest import pg_database, pg_schema_url  # noqa: F401


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


#: One entry per scenario run in this session (filled by the report hook below).
SCENARIOS: list[dict[str, Any]] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when == "call" and isinstance(item, pytest.Function):
        invariant = " ".join((item.function.__doc__ or "").split())
        SCENARIOS.append({"scenario": item.nodeid, "invariant": invariant, "survived": report.passed})


@pytest.fixture(scope="session", autouse=True)
def fault_summary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Faults tried and survived, written when the session ends."""
    path = tmp_path_factory.getbasetemp() / "faults-summary.json"
    yield path
    survived = sum(1 for s in SCENARIOS if s["survived"])
    summary = {"tried": len(SCENARIOS), "survived": survived, "scenarios": SCENARIOS}
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))


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
