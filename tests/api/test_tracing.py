"""OpenTelemetry spans: one per client request, one per upstream attempt, GenAI attributes,
the caller's trace continued, and never a prompt or completion in an attribute."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.config import load_settings
from gateway.fakes.script import Behaviour
from gateway.runtime import Runtime
from gateway.telemetry.tracing import make_tracer
from tests.support import running_gateway

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SECRET_PROMPT = "my bank password is hunter2"


@pytest.fixture(scope="module")
def traced() -> Iterator[tuple[str, Runtime, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracer = make_tracer(processor=SimpleSpanProcessor(exporter))
    with running_gateway(load_settings(env={}), tracer=tracer) as (url, runtime):
        yield url, runtime, exporter


def spans(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context is not None and s.context.trace_id == trace_id]


def test_request_and_attempt_spans_continue_the_callers_trace(traced: tuple) -> None:  # type: ignore[type-arg]
    url, runtime, exporter = traced
    fake = next(f for f in runtime.fakes if f.provider == "deepinfra")
    fake.script.push(Behaviour(error="overloaded"))
    body = {
        "model": "llama-4-maverick",
        "messages": [{"role": "user", "content": SECRET_PROMPT}],
        "corral": {"providers": {"only": ["deepinfra", "together"], "order": ["deepinfra"]}},
    }
    headers = {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
    assert httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=30).status_code == 200
    found = spans(exporter, int(TRACE_ID, 16))
    server = [s for s in found if s.kind is SpanKind.SERVER]
    clients = [s for s in found if s.kind is SpanKind.CLIENT]
    assert len(server) == 1 and len(clients) == 2
    request = server[0]
    assert request.parent is not None and request.parent.span_id == 0x00F067AA0BA902B7
    attributes = dict(request.attributes or {})
    assert attributes["gen_ai.request.model"] == "llama-4-maverick"
    assert attributes["gen_ai.system"] == "together"
    assert attributes["gen_ai.usage.output_tokens"] > 0  # type: ignore[operator]
    assert attributes["corral.attempts"] == 2
    failed, served = sorted(clients, key=lambda s: s.start_time or 0)
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "overloaded"
    assert dict(served.attributes or {})["gen_ai.system"] == "together"
    assert all(c.parent is not None and c.parent.span_id == request.context.span_id for c in clients)  # type: ignore[union-attr]
    for span in found:
        assert SECRET_PROMPT not in str(dict(span.attributes or {})), "no prompt text in spans"


def test_invalid_tool_calls_are_span_events(traced: tuple) -> None:  # type: ignore[type-arg]
    url, runtime, exporter = traced
    fake = next(f for f in runtime.fakes if f.provider == "deepinfra")
    fake.script.push(Behaviour(tool_args="schema_invalid"))
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
                "additionalProperties": False,
            },
        },
    }
    body = {
        "model": "llama-4-maverick",
        "messages": [{"role": "user", "content": "lookup llamas"}],
        "tools": [tool],
        "tool_choice": "required",
        "corral": {"providers": {"only": ["deepinfra"]}},
    }
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    response = httpx.post(url + "/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert response.headers["x-corral-tool-validation"] == "retried:1"
    request = next(s for s in spans(exporter, int(trace_id, 16)) if s.kind is SpanKind.SERVER)
    events = [e for e in request.events if e.name == "corral.tool_calls.invalid"]
    assert len(events) == 1 and dict(events[0].attributes or {})["corral.reask"] is True
    assert dict(request.attributes or {})["corral.tool_validation"] == "retried:1"
