"""The one error taxonomy every adapter maps its backend's failures onto.

Adapters raise only `UpstreamError`; the dispatch loop decides from its `kind`
whether to retry the same deployment, move to the next one, or give up, and
`gateway.api.errors` decides what the client sees.
"""

from __future__ import annotations

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


#: Worth another try on the same deployment (transient faults).
RETRY_SAME = frozenset({ErrorKind.TIMEOUT, ErrorKind.CONNECTION, ErrorKind.UPSTREAM_5XX, ErrorKind.MALFORMED_RESPONSE})
#: Worth trying another deployment: everything except faults that are the caller's.
FALL_OVER = frozenset(ErrorKind) - {ErrorKind.BAD_REQUEST}
#: Counted against a deployment's health (breakers); a 4xx about the request is not.
HEALTH_FAILURES = RETRY_SAME | {ErrorKind.OVERLOADED}


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
        self.param = param

    @property
    def retry_same(self) -> bool:
        return self.kind in RETRY_SAME

    @property
    def fall_over(self) -> bool:
        return self.kind in FALL_OVER

    def __repr__(self) -> str:
        return f"UpstreamError({self.kind}, {self.provider!r}, status={self.status}, {self.message!r})"
