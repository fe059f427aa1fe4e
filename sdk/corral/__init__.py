"""Corral's Python SDK: OpenAI-shaped chat completions for Llama 4 through the Corral gateway,
with routing preferences, what-served-it metadata, typed errors, tools, retries and spend.

Usage:
    import corral

    client = corral.Corral()   # CORRAL_BASE_URL, CORRAL_API_KEY
    completion = client.chat.completions.create(
        model="llama-4-scout",
        messages=[{"role": "user", "content": "Hello"}],
        prefer="cost",
        tags={"team": "search"},
    )
    print(completion.choices[0].message.content)
    print(completion.corral.provider, completion.corral.cost_usd)
"""

from corral import types
from corral._base import DEFAULT_DEADLINE, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, NOT_GIVEN, NotGiven
from corral._client import AsyncCorral, Corral
from corral._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConflictError,
    CorralError,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    PolicyRejectedError,
    RateLimitError,
    RequestTooLargeError,
    ToolCallValidationError,
    ToolValidationAttempt,
    UnprocessableEntityError,
    UpstreamAttempt,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from corral._params import ChatParams, RequestParams, RoutingParams
from corral._streaming import AsyncStream, Stream
from corral._version import __version__
from corral.tools import (
    MaxToolRoundsExceeded,
    Tool,
    ToolArgumentsError,
    ToolLike,
    ToolRunResult,
    tool,
)
from corral.types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    CorralInfo,
    RouteExplanation,
    SpendReport,
    SpendRow,
    Usage,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncCorral",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatParams",
    "ConflictError",
    "Corral",
    "CorralError",
    "CorralInfo",
    "IdempotencyInProgressError",
    "IdempotencyKeyReusedError",
    "InternalServerError",
    "MaxToolRoundsExceeded",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "PolicyRejectedError",
    "RateLimitError",
    "RequestParams",
    "RequestTooLargeError",
    "RouteExplanation",
    "RoutingParams",
    "SpendReport",
    "SpendRow",
    "Stream",
    "Tool",
    "ToolArgumentsError",
    "ToolCallValidationError",
    "ToolLike",
    "ToolRunResult",
    "ToolValidationAttempt",
    "UnprocessableEntityError",
    "UpstreamAttempt",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "Usage",
    "__version__",
    "tool",
    "types",
]
