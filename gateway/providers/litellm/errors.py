"""litellm's exceptions -> the gateway's error taxonomy.

litellm raises OpenAI-style exception classes whatever the backend (Vertex AI, Azure AI
Foundry, ...). They are matched by class, most specific first (ContextWindowExceededError
is a BadRequestError, Timeout an APIConnectionError in some releases); an exception of no
known class falls back to its `status_code`, read the way the OpenAI-dialect adapters
read statuses. Retry-After comes from the response headers litellm keeps on the
exception. Messages name the provider and never carry the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.openai.error_map import ErrorInfo, classify, redact
from gateway.providers.ratelimits import parse_retry_after

__all__ = ["EXCEPTION_KINDS", "map_exception"]

K = ErrorKind
#: litellm exception class names, most specific first.
EXCEPTION_KINDS: tuple[tuple[str, ErrorKind], ...] = (
    ("ContextWindowExceededError", K.CONTEXT_TOO_LONG),
    ("ContentPolicyViolationError", K.BAD_REQUEST),
    ("UnsupportedParamsError", K.BAD_REQUEST),
    ("RateLimitError", K.RATE_LIMITED),
    ("Timeout", K.TIMEOUT),
    ("AuthenticationError", K.AUTH),
    ("PermissionDeniedError", K.AUTH),
    ("NotFoundError", K.MODEL_GONE),
    ("BadRequestError", K.BAD_REQUEST),
    ("UnprocessableEntityError", K.BAD_REQUEST),
    ("ServiceUnavailableError", K.OVERLOADED),
    ("InternalServerError", K.UPSTREAM_5XX),
    ("BadGatewayError", K.UPSTREAM_5XX),
    ("APIConnectionError", K.CONNECTION),
    ("APIResponseValidationError", K.MALFORMED_RESPONSE),
    ("APIError", K.UPSTREAM_5XX),
)


#: Transport failures litellm wraps (at times as an InternalServerError "with status 500"):
#: found anywhere in the exception's chain, they mean no answer came back at all.
TRANSPORT_KINDS: Mapping[str, ErrorKind] = {
    "APITimeoutError": K.TIMEOUT,
    "TimeoutException": K.TIMEOUT,
    "ConnectTimeout": K.TIMEOUT,
    "ReadTimeout": K.TIMEOUT,
    "TimeoutError": K.TIMEOUT,
    "APIConnectionError": K.CONNECTION,
    "ConnectError": K.CONNECTION,
    "ClientConnectorError": K.CONNECTION,
    "ConnectionError": K.CONNECTION,
}
#: How far down `__cause__` / `__context__` to look.
CHAIN_DEPTH = 8


def _transport_kind(exc: BaseException) -> ErrorKind | None:
    link: BaseException | None = exc.__cause__ or exc.__context__
    for _ in range(CHAIN_DEPTH):
        if link is None:
            return None
        for cls in type(link).__mro__:
            if cls.__name__ in TRANSPORT_KINDS and not getattr(link, "status_code", None):
                return TRANSPORT_KINDS[cls.__name__]
        link = link.__cause__ or link.__context__
    return None


def _kind(litellm: ModuleType, exc: BaseException, status: int | None) -> ErrorKind:
    transport = _transport_kind(exc)
    if transport is not None:
        return transport
    for name, kind in EXCEPTION_KINDS:
        cls = getattr(litellm, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            # Not every backend's "prompt too long" becomes ContextWindowExceededError.
            if kind is K.BAD_REQUEST and classify(400, ErrorInfo(str(exc))) is K.CONTEXT_TOO_LONG:
                return K.CONTEXT_TOO_LONG
            return kind
    return classify(status, ErrorInfo(str(exc)))


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) and 100 <= status <= 599 else None


def _headers(exc: BaseException) -> Mapping[str, str]:
    """The upstream response's headers, wherever this litellm release keeps them."""
    response = getattr(exc, "response", None)
    for holder in (getattr(exc, "litellm_response_headers", None), getattr(response, "headers", None)):
        if holder is not None and hasattr(holder, "get"):
            return {k.lower(): str(v) for k, v in dict(holder).items()}
    return {}


def _retry_after(exc: BaseException) -> float | None:
    headers = _headers(exc)
    return parse_retry_after(headers.get("retry-after")) if headers else None


def map_exception(litellm: ModuleType, provider: str, exc: BaseException, secrets: Iterable[str]) -> UpstreamError:
    """The `UpstreamError` for one failed litellm call."""
    status = _status(exc)
    kind = _kind(litellm, exc, status)
    retry_after = _retry_after(exc) if kind in (K.RATE_LIMITED, K.OVERLOADED) else None
    text = redact(str(getattr(exc, "message", "") or exc) or type(exc).__name__, secrets)
    if kind in (K.CONNECTION, K.TIMEOUT):
        status = None  # litellm's "500" for a refused connection is no HTTP answer
    where = f"HTTP {status}" if status else type(exc).__name__
    code: Any = "context_length_exceeded" if kind is K.CONTEXT_TOO_LONG else None
    return UpstreamError(
        kind,
        f"{provider}: {kind.value.replace('_', ' ')} ({where}): {text}",
        provider=provider,
        status=status,
        retry_after=retry_after,
        code=code,
    )
