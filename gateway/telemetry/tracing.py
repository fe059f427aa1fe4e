"""OpenTelemetry traces: a span per client request and a child span per upstream attempt,
with the GenAI semantic-convention attributes plus Corral's own.

Configured only through the standard `OTEL_*` environment variables: tracing is on when
an OTLP endpoint or `OTEL_TRACES_EXPORTER=otlp|console` is set (and `OTEL_SDK_DISABLED`
is not true); otherwise every span is a no-op. The incoming `traceparent` is honoured.
Prompt and completion text never go into spans.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import INVALID_SPAN, NoOpTracer, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway import __version__

#: GenAI semantic-convention attribute names (kept here, and only here).
SYSTEM = "gen_ai.system"
OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ERROR_TYPE = "error.type"

_PROPAGATOR = TraceContextTextMapPropagator()


def _exporter_from_env(env: Mapping[str, str]) -> SpanExporter | None:
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    choice = env.get("OTEL_TRACES_EXPORTER", "").lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if choice == "console":
        return ConsoleSpanExporter()
    if choice == "none" or not (choice == "otlp" or endpoint):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def make_tracer(env: Mapping[str, str] | None = None, processor: SpanProcessor | None = None) -> Tracer:
    """A tracer for the gateway: real when configured (or given a processor, in tests), else no-op."""
    if processor is None:
        exporter = _exporter_from_env(os.environ if env is None else env)
        if exporter is None:
            return NoOpTracer()
        processor = BatchSpanProcessor(exporter)
    resource = Resource.create({"service.name": "corral-gateway", "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    return provider.get_tracer("corral.gateway", __version__)


def request_span(tracer: Tracer, headers: Mapping[str, str], model: str, request_id: str) -> Span:
    """The server span of one client request, continuing the caller's trace if any (with
    tracing off, the shared invalid span: nothing reads a caller's trace context then)."""
    if type(tracer) is NoOpTracer:
        return INVALID_SPAN
    context = _PROPAGATOR.extract(carrier=headers) if "traceparent" in headers else None
    span = tracer.start_span(f"chat {model}", context=context, kind=SpanKind.SERVER)
    if span.is_recording():
        span.set_attributes({OPERATION: "chat", REQUEST_MODEL: model, "corral.request_id": request_id})
    return span


def activated(span: Span) -> AbstractContextManager[object]:
    """Make `span` the current span (so attempt spans become its children); with tracing
    off the span is the shared invalid one and there is nothing to activate."""
    if span is INVALID_SPAN:
        return nullcontext()
    return trace.use_span(span, end_on_exit=False)


def attach(span: Span) -> object | None:
    """Make `span` current until `detach` (for code that is not one `with` block, such as
    a relayed stream); with tracing off there is nothing to attach."""
    return None if span is INVALID_SPAN else otel_context.attach(trace.set_span_in_context(span))


def detach(token: object | None) -> None:
    if token is not None:
        otel_context.detach(token)  # type: ignore[arg-type]


def attempt_span(tracer: Tracer, provider: str, model_id: str, number: int) -> Span:
    """A client span for one upstream attempt (a child of the current request span)."""
    if type(tracer) is NoOpTracer:
        return INVALID_SPAN
    span = tracer.start_span(f"chat {model_id}", kind=SpanKind.CLIENT)
    if span.is_recording():
        span.set_attributes({SYSTEM: provider, OPERATION: "chat", REQUEST_MODEL: model_id, "corral.attempt": number})
    return span


def finish_request_span(
    span: Span,
    *,
    provider: str,
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    cost_usd: str,
    attempts: int,
    rule: str | None,
    tool_validation: str | None,
    status: str,
) -> None:
    if span.is_recording():
        attributes: dict[str, str | int] = {
            SYSTEM: provider,
            RESPONSE_MODEL: model_id,
            INPUT_TOKENS: input_tokens,
            OUTPUT_TOKENS: output_tokens,
            "corral.cost_usd": cost_usd,
            "corral.attempts": attempts,
            "corral.status": status,
        }
        if rule:
            attributes["corral.route.rule"] = rule
        if tool_validation:
            attributes["corral.tool_validation"] = tool_validation
        span.set_attributes(attributes)
    span.end()


def fail_span(span: Span, error_type: str, message: str) -> None:
    if span.is_recording():
        span.set_attribute(ERROR_TYPE, error_type)
        span.set_status(trace.Status(trace.StatusCode.ERROR, message))
    span.end()
