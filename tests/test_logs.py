"""Structured logs: one JSON access line per request, with the request id and no secrets or prompt text."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from gateway.metering.events import UsageEvent
from gateway.telemetry.logs import AccessLog, JsonFormatter, TextFormatter


def test_access_line_is_json_with_the_request_id(caplog: pytest.LogCaptureFixture) -> None:
    log = AccessLog()
    event = UsageEvent(
        request_id="req_abc",
        at=datetime.now(UTC),
        model="llama-4-scout",
        provider="vllm",
        model_id="m",
        status="ok",
        prompt_tokens=5,
        completion_tokens=7,
        cached_tokens=0,
        usage_estimated=False,
        cost_usd=Decimal("0.000001"),
        latency_ms=12.345,
        ttft_ms=None,
        stream=False,
        api_key_id="key_1",
        tags={"team": "search"},
    )
    with caplog.at_level(logging.INFO, logger="corral.access"):
        log.record(event)
        log.drain()
    record = caplog.records[-1]
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "request" and line["request_id"] == "req_abc"
    assert line["provider"] == "vllm" and line["team"] == "search" and line["cost_usd"] == "0.000001"
    assert line["level"] == "info" and line["logger"] == "corral.access"
    assert "messages" not in line and "content" not in line
    # Text logs carry the same fields as JSON ones.
    text = TextFormatter().format(record)
    assert "corral.access: request" in text
    for key, value in line.items():
        if key not in {"ts", "level", "logger", "msg"}:
            assert f"{key}={'-' if value is None else value}" in text


def test_formatter_keeps_exceptions_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("corral", logging.ERROR, __file__, 1, "failed %s", ("x",), exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert "\n" not in text.strip().replace("\\n", "")
    assert json.loads(text)["msg"] == "failed x"


def test_batched_access_lines_are_the_lines_logging_would_write(capsys: pytest.CaptureFixture[str]) -> None:
    """With the gateway's own JSON handler, a drained slice is written in one go; each line is
    exactly what JsonFormatter gives the same record (the timestamp aside)."""
    from gateway.telemetry.logs import configure_logging
    from tests.metering.factory import event

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("info", "json")
        log = AccessLog()
        for n in range(3):
            log.record(event(f"req_{n}", api_key_id="key_1"))
        assert log.drain(None) is False
        batched = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
        log.record(event("req_0", api_key_id="key_1"))
        log.drain(None)  # a single event goes through logging itself
        single = json.loads(capsys.readouterr().err)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert [line["request_id"] for line in batched] == ["req_0", "req_1", "req_2"]
    for line in (batched[0], single):
        line.pop("ts")
    assert batched[0] == single
