"""`Exchange`: every request through a chat-shaped endpoint is accounted for exactly once,
by one rule: refused before it was admitted, failed after, crashed on anything else."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.exchange import Exchange
from gateway.errors import GatewayError, bad_request


class Ledger:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def refused(self, model: str | None, err: GatewayError) -> None:
        self.calls.append(("refused", model))

    def failed(self, call: object, err: GatewayError) -> None:
        self.calls.append(("failed", call))

    def crashed(self, model: str | None) -> None:
        self.calls.append(("crashed", model))


class Runtime:
    def __init__(self) -> None:
        self.accounting = Ledger()


def test_an_error_before_admission_is_one_refusal_with_the_request_id() -> None:
    rt = Runtime()
    with pytest.raises(GatewayError) as raised, Exchange(rt) as ex:  # type: ignore[arg-type]
        ex.model = "llama-4-scout"
        raise bad_request("no")
    assert rt.accounting.calls == [("refused", "llama-4-scout")]
    assert raised.value.headers["x-corral-request-id"] == ex.request_id


def test_an_error_after_admission_is_one_failure_of_that_call() -> None:
    rt = Runtime()
    call = object()
    with pytest.raises(GatewayError), Exchange(rt) as ex:  # type: ignore[arg-type]
        ex.model, ex.call = "llama-4-scout", call  # type: ignore[assignment]
        raise bad_request("upstream said no")
    assert rt.accounting.calls == [("failed", call)]


def test_anything_else_is_one_crash_and_a_normal_exit_is_left_to_the_endpoint() -> None:
    rt = Runtime()
    with pytest.raises(KeyError), Exchange(rt) as ex:  # type: ignore[arg-type]
        ex.model = "llama-4-maverick"
        raise KeyError("bug")
    assert rt.accounting.calls == [("crashed", "llama-4-maverick")]
    with Exchange(rt):  # type: ignore[arg-type]
        pass
    assert len(rt.accounting.calls) == 1


def test_request_ids_are_unique_and_prefixed() -> None:
    rt = Runtime()
    ids = {Exchange(rt).request_id for _ in range(1000)}  # type: ignore[arg-type]
    assert len(ids) == 1000 and all(i.startswith("req_") for i in ids)
