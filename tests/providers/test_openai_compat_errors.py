"""Error bodies and statuses -> the gateway's error taxonomy (docs/providers.md: #25-groq-errors,
#35-together-errors, #45-deepinfra-errors, #72-vllm-chat-request-and-response)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.providers.errors import ErrorKind
from gateway.providers.groq import GroqProvider
from gateway.providers.http1 import (
    ConnectFailed,
    ConnectionLost,
    ConnectTimeout,
    InvalidResponse,
    ReadTimeout,
    TotalTimeout,
)
from gateway.providers.openai.adapter import transport_error
from gateway.providers.openai.error_map import ErrorInfo, classify, read_error, redact, upstream_error
from gateway.providers.together import TogetherProvider
from gateway.providers.vllm.adapter import VllmProvider

K = ErrorKind
GROQ = GroqProvider.dialect.status_kinds
TOGETHER = TogetherProvider.dialect.status_kinds
VLLM = VllmProvider.dialect.status_kinds
CONTEXT_MSG = (
    "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens "
    "(8000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion."
)


def oai(message: str, type_: str | None = None, code: Any = None, param: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "code": code, "param": param}})


@pytest.mark.parametrize(
    ("body", "info"),
    [
        (
            oai("bad", "invalid_request_error", "x", "messages"),
            ErrorInfo("bad", "invalid_request_error", "x", "messages"),
        ),
        (
            orjson.dumps(
                {"id": "r1", "error": {"message": "m", "type": "t", "param": None, "code": "model_not_available"}}
            ),
            ErrorInfo("m", "t", "model_not_available"),
        ),
        (orjson.dumps({"detail": {"error": "Not authenticated"}}), ErrorInfo("Not authenticated")),
        (orjson.dumps({"detail": "Not Found"}), ErrorInfo("Not Found")),
        (orjson.dumps({"detail": [{"loc": ["body"], "msg": "field required"}]}), ErrorInfo("field required")),
        (
            orjson.dumps({"object": "error", "message": "bad", "type": "BadRequestError", "param": None, "code": 400}),
            ErrorInfo("bad", "BadRequestError", "400", None, 400),
        ),
        (oai("bad", "BadRequestError", 400), ErrorInfo("bad", "BadRequestError", "400", None, 400)),
        (orjson.dumps({"error": "plain"}), ErrorInfo("plain")),
        (b"<html>502 Bad Gateway</html>", ErrorInfo("<html>502 Bad Gateway</html>")),
        (b"", ErrorInfo("(empty body)")),
        (b"[1, 2]", ErrorInfo("[1, 2]")),
    ],
)
def test_every_body_shape_is_read(body: bytes, info: ErrorInfo) -> None:
    assert read_error(body) == info


@pytest.mark.parametrize(
    ("status", "body", "overrides", "kind"),
    [
        (
            429,
            oai("Rate limit reached. Please try again in 6.78s.", "tokens", "rate_limit_exceeded"),
            GROQ,
            K.RATE_LIMITED,
        ),
        (498, oai("flex tier at capacity", code="capacity_exceeded"), GROQ, K.OVERLOADED),
        (498, oai("flex"), GROQ, K.OVERLOADED),
        (503, oai("overloaded"), None, K.OVERLOADED),
        (500, oai("boom"), None, K.UPSTREAM_5XX),
        (502, b"bad gateway", None, K.UPSTREAM_5XX),
        (504, b"", None, K.UPSTREAM_5XX),
        (520, b"", TOGETHER, K.UPSTREAM_5XX),
        (401, oai("Invalid API Key", "invalid_request_error", "invalid_api_key"), GROQ, K.AUTH),
        (403, orjson.dumps({"detail": {"error": "Not authenticated"}}), None, K.AUTH),
        (
            403,
            oai("Input validation error: inputs tokens + max_new_tokens must be <= 8193"),
            TOGETHER,
            K.CONTEXT_TOO_LONG,
        ),
        (
            400,
            oai("Please reduce the length", "invalid_request_error", "context_length_exceeded", "messages"),
            GROQ,
            K.CONTEXT_TOO_LONG,
        ),
        # Together, every wording it has been quoted with (docs/providers.md#35-together-errors, rule T5).
        (
            400,
            oai("Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4097. Given: 4000 `inputs`"),
            TOGETHER,
            K.CONTEXT_TOO_LONG,
        ),
        (
            400,
            oai("The input (600000 tokens) is longer than the model's context length (524288 tokens)."),
            TOGETHER,
            K.CONTEXT_TOO_LONG,
        ),
        (
            403,
            oai("Input token count + max_tokens parameter must be less than the context length of the model"),
            TOGETHER,
            K.CONTEXT_TOO_LONG,
        ),
        # vLLM's current wordings (V5).
        (
            400,
            oai(
                "'max_tokens' or 'max_completion_tokens' is too large: 4090. This model's maximum context length "
                "is 4096 tokens and your request has 100 input tokens (4090 > 4096 - 100).",
                "BadRequestError",
                400,
            ),
            VLLM,
            K.CONTEXT_TOO_LONG,
        ),
        # Fireworks: the flat object seen from the live service (F2).
        (
            404,
            orjson.dumps(
                {
                    "message": "Model not found, inaccessible, and/or not deployed",
                    "param": "model",
                    "code": "NOT_FOUND",
                    "type": "error",
                }
            ),
            None,
            K.MODEL_GONE,
        ),
        (400, oai(CONTEXT_MSG, "BadRequestError", 400), VLLM, K.CONTEXT_TOO_LONG),
        (
            400,
            orjson.dumps({"object": "error", "message": CONTEXT_MSG, "type": "BadRequestError", "code": 400}),
            VLLM,
            K.CONTEXT_TOO_LONG,
        ),
        (
            400,
            oai("The model has been decommissioned", "invalid_request_error", "model_decommissioned"),
            GROQ,
            K.MODEL_GONE,
        ),
        (
            404,
            oai("The model `x` does not exist or you do not have access to it.", code="model_not_found"),
            GROQ,
            K.MODEL_GONE,
        ),
        (
            400,
            oai("Unable to access non-serverless model", "invalid_request_error", "model_not_available"),
            TOGETHER,
            K.MODEL_GONE,
        ),
        (404, oai("The model `x` does not exist.", "NotFoundError", 404), VLLM, K.MODEL_GONE),
        (404, oai("Not found"), None, K.BAD_REQUEST),
        (400, oai("messages: field required", "invalid_request_error"), GROQ, K.BAD_REQUEST),
        (413, oai("too large"), GROQ, K.BAD_REQUEST),
        (422, oai("bad"), None, K.BAD_REQUEST),
        (418, b"teapot", None, K.BAD_REQUEST),
        (402, oai("spending limit"), TOGETHER, K.AUTH),
        (408, b"", None, K.TIMEOUT),
    ],
)
def test_status_mapping(status: int, body: bytes, overrides: Any, kind: ErrorKind) -> None:
    assert classify(status, read_error(body), overrides) is kind


def test_in_stream_errors_default_to_5xx_but_honour_codes() -> None:
    assert classify(None, ErrorInfo("stream stopped")) is K.UPSTREAM_5XX
    assert classify(None, ErrorInfo("slow down", code="rate_limit_exceeded")) is K.RATE_LIMITED
    assert classify(None, ErrorInfo("bad", "BadRequestError", "400", None, 400)) is K.BAD_REQUEST
    assert classify(None, ErrorInfo(CONTEXT_MSG)) is K.CONTEXT_TOO_LONG


def test_upstream_error_message_names_provider_and_hides_secrets() -> None:
    info = read_error(oai("Invalid key sk-test-groq-key, header Bearer sk-test-groq-key", code="invalid_api_key"))
    error = upstream_error("groq", 401, info, secrets=("sk-test-groq-key",))
    assert error.kind is K.AUTH and error.provider == "groq" and error.status == 401 and error.code == "invalid_api_key"
    assert error.message.startswith("groq: authentication failed (HTTP 401, invalid_api_key): ")
    assert "sk-test-groq-key" not in error.message and "[redacted]" in error.message


def test_groq_retry_hint_from_message() -> None:
    info = read_error(
        oai("Rate limit reached ... Please try again in 6.78s. Visit ...", "tokens", "rate_limit_exceeded")
    )
    assert upstream_error("groq", 429, info).retry_after == pytest.approx(6.78)
    assert upstream_error("groq", 429, info, retry_after=2.0).retry_after == 2.0


def test_redact_truncates() -> None:
    assert len(redact("x" * 1000, ())) == 300
    assert redact("Authorization: Bearer abc.def", ()) == "Authorization: Bearer [redacted]"


@pytest.mark.parametrize(
    ("exc", "stage", "kind", "code"),
    [
        (ConnectTimeout(), "sending the request", K.TIMEOUT, "connect_timeout"),
        (ConnectFailed(ConnectionRefusedError(111, "refused")), "sending the request", K.CONNECTION, "connect_failed"),
        (ReadTimeout(), "sending the request", K.TIMEOUT, "read_timeout"),
        (ReadTimeout(), "reading the stream", K.TIMEOUT, "read_timeout"),
        (TotalTimeout(), "reading the answer", K.TIMEOUT, "total_timeout"),
        (TimeoutError(), "reading the answer", K.TIMEOUT, "total_timeout"),
        (InvalidResponse("bad status line"), "sending the request", K.MALFORMED_RESPONSE, "invalid_http"),
        (ConnectionLost(), "sending the request", K.CONNECTION, "connection_error"),
        (ConnectionLost(), "reading the stream", K.UPSTREAM_5XX, "stream_truncated"),
        (ConnectionLost(), "reading the answer", K.UPSTREAM_5XX, "stream_truncated"),
    ],
)
def test_transport_errors(exc: BaseException, stage: str, kind: ErrorKind, code: str) -> None:
    error = transport_error("groq", exc, stage)
    assert (error.kind, error.code, error.provider) == (kind, code, "groq")
    assert error.message.startswith("groq: ") and error.message.endswith(stage)


def test_a_flat_error_inside_a_stream_is_an_error() -> None:
    """Fireworks' errors are flat objects typed "error" (its one observed body): one arriving
    as a stream event ends the stream as an error instead of passing as an empty chunk."""
    from gateway.providers.fireworks import FireworksProvider

    provider = FireworksProvider.__new__(FireworksProvider)
    provider._secrets = ()
    flat = {"message": "Internal server error", "param": None, "code": "INTERNAL", "type": "error"}
    error = provider.payload_error(flat)
    assert error is not None and error.kind is K.UPSTREAM_5XX
    assert provider.payload_error({"id": "c1", "object": "chat.completion.chunk", "choices": []}) is None
