"""OpenAI-dialect error bodies -> `UpstreamError`.

Backends disagree on the envelope, so `read_error` accepts every shape seen:

- `{"error": {"message", "type", "param", "code"}}` (OpenAI, Groq, DeepInfra today, newer vLLM
  with `code` = the HTTP status as an integer), with an extra `"id"` (Together);
- `{"error": "text"}`;
- `{"object": "error", "message", "type", "code": 400}` (older vLLM);
- `{"detail": {"error": "Not authenticated"}}`, `{"detail": "text"}` and FastAPI's
  `{"detail": [{"msg": ...}]}` (older DeepInfra);
- anything else: the start of the raw text.

`classify` picks the `ErrorKind` in a fixed order: the error code or type (e.g.
`context_length_exceeded`, `model_not_found`), then the provider's own status
meanings (Groq 498, Together 403), then the message (vLLM says "maximum context length"
in every wording; Together's several wordings are listed), then the HTTP status. Messages
name the provider and never carry a credential: secrets handed in are cut out of anything the upstream echoed back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.providers.errors import ErrorKind, UpstreamError, capability_refusal
from gateway.providers.ratelimits import parse_duration

__all__ = [
    "ErrorInfo",
    "classify",
    "error_info",
    "message_retry_hint",
    "read_error",
    "redact",
    "upstream_error",
]

K = ErrorKind
#: Error `code` / `type` values that say what happened better than the status does.
CODE_KINDS: Mapping[str, ErrorKind] = {
    "context_length_exceeded": K.CONTEXT_TOO_LONG,
    "model_decommissioned": K.MODEL_GONE,
    "model_not_found": K.MODEL_GONE,
    "model_not_available": K.MODEL_GONE,
    "rate_limit_exceeded": K.RATE_LIMITED,
    "dynamic_request_limited": K.RATE_LIMITED,
    "dynamic_token_limited": K.RATE_LIMITED,
    "capacity_exceeded": K.OVERLOADED,
    "invalid_api_key": K.AUTH,
}
#: What each HTTP status means when nothing more specific applies.
STATUS_KINDS: Mapping[int, ErrorKind] = {
    400: K.BAD_REQUEST,
    401: K.AUTH,
    402: K.AUTH,  # Together: spending limit reached -- an account problem, not the request's
    403: K.AUTH,
    404: K.BAD_REQUEST,
    408: K.TIMEOUT,
    409: K.UPSTREAM_5XX,
    413: K.BAD_REQUEST,
    422: K.BAD_REQUEST,
    424: K.UPSTREAM_5XX,  # Groq: failed dependency
    429: K.RATE_LIMITED,
    499: K.UPSTREAM_5XX,  # Groq: request cancelled on their side
    503: K.OVERLOADED,
    529: K.OVERLOADED,
}
#: vLLM and Fireworks say "maximum context length"; SGLang and Together (recently) "is longer
#: than the model's context length"; Together also, earlier, "`inputs` tokens +
#: `max_new_tokens` must be <= N" and, on its error-code page, "must be less than the context
#: length of the model"; Ollama "exceeded max context length".
_CONTEXT_PHRASES = (
    "maximum context length",
    "context length exceeded",
    "context_length_exceeded",
    "longer than the model's context length",
    "max context length",
    "max_new_tokens` must be <=",
    "max_new_tokens must be <=",
    "less than the context length of the model",
)
_MODEL_MISSING = re.compile(r"model\b.*\b(does not exist|not found|is not available)", re.IGNORECASE)
_TRY_AGAIN = re.compile(r"try again in ([0-9hms.]+)", re.IGNORECASE)
_BEARER = re.compile(r"Bearer\s+\S+", re.IGNORECASE)
_DESCRIBE = {
    K.RATE_LIMITED: "rate limited",
    K.OVERLOADED: "overloaded",
    K.TIMEOUT: "timed out",
    K.UPSTREAM_5XX: "server error",
    K.MALFORMED_RESPONSE: "malformed response",
    K.BAD_REQUEST: "rejected the request",
    K.CONTEXT_TOO_LONG: "context too long",
    K.AUTH: "authentication failed",
    K.MODEL_GONE: "model not available",
    K.CONNECTION: "connection failed",
}
MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    message: str
    type: str | None = None
    code: str | None = None
    param: str | None = None
    #: An integer `code` in the HTTP range (vLLM puts the status there).
    status: int | None = None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _from_object(obj: Mapping[str, Any]) -> ErrorInfo:
    code = obj.get("code")
    status = code if isinstance(code, int) and 100 <= code <= 599 else None
    message = obj.get("message") or obj.get("msg") or obj.get("error") or ""
    return ErrorInfo(str(message), _text(obj.get("type")), _text(code), _text(obj.get("param")), status)


def error_info(payload: Any) -> ErrorInfo | None:
    """The error in a parsed body, or None when it does not look like one."""
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict):
        return _from_object(error)
    if isinstance(error, str):
        return ErrorInfo(error, _text(payload.get("type")), _text(payload.get("code")))
    if payload.get("object") == "error":
        return _from_object(payload)
    detail = payload.get("detail")
    if isinstance(detail, dict):
        return _from_object(detail)
    if isinstance(detail, str):
        return ErrorInfo(detail)
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return ErrorInfo("; ".join(str(d.get("msg", d)) for d in detail[:3]))
    if isinstance(payload.get("message"), str):
        return _from_object(payload)
    return None


def read_error(raw: bytes) -> ErrorInfo:
    """The error in a non-2xx body, whatever its shape."""
    try:
        info = error_info(orjson.loads(raw)) if raw else None
    except orjson.JSONDecodeError:
        info = None
    if info is None:
        info = ErrorInfo(raw[:MAX_MESSAGE].decode("utf-8", "replace").strip() or "(empty body)")
    return info


def classify(status: int | None, info: ErrorInfo, overrides: Mapping[int, ErrorKind] | None = None) -> ErrorKind:
    """The taxonomy kind for one failure (`status` None: an error inside a 200 stream)."""
    for key in (info.code, info.type):
        if key and key in CODE_KINDS:
            return CODE_KINDS[key]
    status = status or info.status
    if overrides and status is not None and status in overrides:
        return overrides[status]
    lowered = info.message.lower()
    if status in (None, 400, 413, 422) and any(p in lowered for p in _CONTEXT_PHRASES):
        return K.CONTEXT_TOO_LONG
    if status == 404 and _MODEL_MISSING.search(info.message):
        return K.MODEL_GONE
    if status in (400, 422) and capability_refusal(info.message):
        return K.UNSUPPORTED
    if status is None:
        return K.UPSTREAM_5XX
    if status in STATUS_KINDS:
        return STATUS_KINDS[status]
    if status >= 500:
        return K.UPSTREAM_5XX
    return K.BAD_REQUEST if status >= 400 else K.MALFORMED_RESPONSE


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` without any of `secrets` or a bearer token, cut to a readable length."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, "[redacted]")
    if "earer" in text:
        text = _BEARER.sub("Bearer [redacted]", text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


def message_retry_hint(message: str) -> float | None:
    """Groq's 429 text ends "Please try again in 6.78s"; read that as a retry-after."""
    match = _TRY_AGAIN.search(message)
    return parse_duration(match.group(1).rstrip(".")) if match else None


def upstream_error(
    provider: str,
    status: int | None,
    info: ErrorInfo,
    *,
    overrides: Mapping[int, ErrorKind] | None = None,
    retry_after: float | None = None,
    secrets: Iterable[str] = (),
) -> UpstreamError:
    """Build the `UpstreamError` for one failure, with a message safe to log and show."""
    kind = classify(status, info, overrides)
    if retry_after is None and kind in (K.RATE_LIMITED, K.OVERLOADED):
        retry_after = message_retry_hint(info.message)
    where = f"HTTP {status}" if status else "in stream"
    label = info.code if info.code and info.code != str(status) else info.type
    detail = f"{where}, {label}" if label else where
    text = redact(info.message, secrets) if info.message else "no message"
    return UpstreamError(
        kind,
        f"{provider}: {_DESCRIBE[kind]} ({detail}): {text}",
        provider=provider,
        status=status or info.status,
        retry_after=retry_after,
        code=info.code,
        param=info.param,
    )
