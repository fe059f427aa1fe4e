"""The one error taxonomy every adapter maps its backend's failures onto.

Adapters raise only `UpstreamError`; the dispatch loop decides from its `kind`
whether to retry the same deployment, move to the next one, or give up, and
`gateway.api.errors` decides what the client sees.
"""

from __future__ import annotations

import re
from enum import StrEnum


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    UPSTREAM_5XX = "upstream_5xx"
    MALFORMED_RESPONSE = "malformed_response"
    BAD_REQUEST = "bad_request"
    CONTEXT_TOO_LONG = "context_too_long"
    AUTH = "auth"
    MODEL_GONE = "model_gone"
    #: The answer's tool calls (or JSON output) did not validate, even after re-asking.
    TOOL_CALLS_INVALID = "tool_calls_invalid"
    #: The backend refused a feature or value it does not support: a capability miss, never
    #: the client's fault (another deployment may well serve the request).
    UNSUPPORTED = "unsupported"


#: Worth another try on the same deployment (transient faults).
RETRY_SAME = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.UPSTREAM_5XX, ErrorKind.MALFORMED_RESPONSE})
#: Worth trying another deployment: everything except faults that are the caller's.
FALL_OVER = frozenset(ErrorKind) - {ErrorKind.BAD_REQUEST}
#: Counted against a deployment's health (breakers); a 4xx about the request is not.
HEALTH_FAILURES = RETRY_SAME | {ErrorKind.OVERLOADED}


#: How providers word a refusal of a feature (matched on 400-class error messages).
_REFUSAL = re.compile(r"(doesn'?t|does not|do not|don'?t) support|not supported|unsupported|is not available for", re.I)
#: The request feature a refusal names, by the words the providers use for it.
_FEATURES = (
    (re.compile(r"toolChoice|tool_choice", re.I), "tool_choice"),
    (re.compile(r"tool use in streaming|streaming.*tool", re.I), "stream_tools"),
    (re.compile(r"json_schema|response_format|structured output", re.I), "json_schema"),
    (re.compile(r"logprobs", re.I), "logprobs"),
    (re.compile(r"image", re.I), "images"),
    (re.compile(r"\btools?\b|toolConfig", re.I), "tools"),
)


def capability_refusal(message: str) -> bool:
    """Whether a 400-class error message is the backend refusing a feature it lacks."""
    return _REFUSAL.search(message) is not None


def refused_feature(message: str) -> str | None:
    """The catalogue capability a refusal names, when it names one we know."""
    return next((name for pattern, name in _FEATURES if pattern.search(message)), None)


class UpstreamError(Exception):
    """A backend failed to serve one attempt."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status = status
        self.retry_after = retry_after
        self.code = code
        #: For UNSUPPORTED: the catalogue capability refused, when the refusal names one.
        self.param = param if param is not None or kind is not ErrorKind.UNSUPPORTED else refused_feature(message)

    @property
    def retry_same(self) -> bool:
        return self.kind in RETRY_SAME

    @property
    def fall_over(self) -> bool:
        return self.kind in FALL_OVER

    def __repr__(self) -> str:
        return f"UpstreamError({self.kind}, {self.provider!r}, status={self.status}, {self.message!r})"
