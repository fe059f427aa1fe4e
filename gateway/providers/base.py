"""The interface every backend adapter implements, and the values it hands back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from gateway.catalogue.deployments import Deployment
from gateway.catalogue.prices import Price
from gateway.config import ProviderConfig
from gateway.schema.chat import ChatRequest
from gateway.schema.usage import Usage


@dataclass(slots=True)
class RateLimitState:
    """A backend's rate-limit headers in one common shape (None: not reported)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    #: Seconds until the request / token windows reset.
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None
    retry_after_s: float | None = None


@dataclass(slots=True)
class Completion:
    """A whole (non-streamed) answer in OpenAI's `chat.completion` shape."""

    body: dict[str, Any]
    usage: Usage
    ratelimit: RateLimitState | None = None
    upstream_request_id: str | None = None
    #: Timings the backend itself reported, (time to first token, generation) in seconds;
    #: preferred over our own wall-clock measurement when present.
    reported_timing_s: tuple[float, float] | None = None
    #: The whole call's time as the backend itself measured it (Bedrock's `metrics.latencyMs`),
    #: in seconds: a total, not a split; preferred over our own wall clock (no network in it).
    reported_total_s: float | None = None


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """A snapshot of one replica for the router (and /metrics, /readyz)."""

    url: str
    healthy: bool
    models: tuple[str, ...]
    #: The smallest `max_model_len` among the served models (None: not reported).
    max_model_len: int | None
    running: int
    waiting: int
    #: 0-1 fraction of the fullest engine's KV cache (0.0 until a scrape reports it).
    kv_cache_usage: float
    #: Prefix-cache hit rate over the last scrape interval with traffic (None: no data yet).
    prefix_hit_rate: float | None
    #: `time.monotonic()` of the last good health check (None: never).
    last_ok_at: float | None
    #: Requests this gateway process has open on the replica right now.
    inflight: int
    #: Whether the load figures come from a recent scrape (False: never scraped, or stale).
    load_known: bool = False
    #: Requests waiting on the replica now, as best we know: the last scrape's waiting plus
    #: our own requests started since then when it was already queueing (0 when not known).
    queued: int = 0


class UpstreamStream(ABC):
    """An open streamed answer. Iterating yields OpenAI `chat.completion.chunk` dicts
    (never a usage-only chunk). Once iteration ends, `usage` and `finish_reason` are set;
    `usage` is None when the backend did not report it."""

    usage: Usage | None = None
    finish_reason: str | None = None
    ratelimit: RateLimitState | None = None
    upstream_request_id: str | None = None

    @abstractmethod
    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...

    def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """The same chunks, grouped as they arrived (one group per network read), so the
        gateway can forward everything that is ready in one write. Use either this or
        plain iteration, not both. The default yields one chunk per group."""
        return _one_by_one(self)

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connection (also when the client went away mid-stream)."""

    @property
    def released(self) -> bool:
        """True once the connection is released and `aclose` has nothing left to do (a
        stream read to its end releases it itself); False when not known."""
        return False

    @property
    def ended(self) -> bool:
        """True once the backend has said the stream is over (OpenAI's `[DONE]`): the group
        just yielded was the last, and iterating on reads nothing more from the network.
        False when not known (the gateway then writes every group as it comes)."""
        return False


async def _one_by_one(stream: UpstreamStream) -> AsyncIterator[list[dict[str, Any]]]:
    async for chunk in stream:
        yield [chunk]


class Provider(ABC):
    """One backend. Holds one long-lived HTTP client, created in `start()`."""

    name: str
    #: The backend enforces structured-output constraints while generating, so a tool-call
    #: re-ask may carry them and come back valid by construction.
    constrains_reasks: bool = False

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config

    @classmethod
    def catalogue_rows(cls, config: ProviderConfig) -> dict[str, dict[str, Any]]:
        """Catalogue rows ("provider/model" -> fields) that this provider's configuration
        itself defines (e.g. litellm's deployments); most providers define none."""
        return {}

    @classmethod
    def configured_prices(cls, config: ProviderConfig) -> list[Price]:
        """Prices the configuration states (beside the price book's); most state none."""
        return []

    async def served_models(self) -> frozenset[str] | None:
        """The model IDs the backend says it serves now (its model listing), or None when it
        cannot tell. Off the request path: used by the catalogue drift check."""
        return None

    def pool_state(self) -> tuple[ReplicaState, ...]:
        """The replicas of a self-hosted pool as last seen; empty for a hosted provider."""
        return ()

    @property
    def simulated(self) -> bool:
        return self.config.simulated

    @abstractmethod
    async def start(self) -> None:
        """Create the shared HTTP client (inside the running event loop)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def complete(self, request: ChatRequest, deployment: Deployment) -> Completion:
        """Serve a non-streamed request or raise `UpstreamError`."""

    @abstractmethod
    async def stream(self, request: ChatRequest, deployment: Deployment) -> UpstreamStream:
        """Open a stream. Returns once the backend accepted the request (status and
        headers read), so that failures before the first byte raise `UpstreamError`
        here and the dispatch loop can still fall over to another deployment."""

    def dropped(self, request: ChatRequest) -> tuple[str, ...]:
        """Fields of the request that change an answer but that this backend is not sent
        (the parameter policy's `warn_if_dropped` rows), for `x-corral-ignored-params`."""
        return ()

    def unsupported(self, request: ChatRequest, deployment: Deployment) -> str | None:
        """Why this adapter cannot serve the request faithfully, or None.

        Capabilities from the catalogue are checked by the router; this covers
        request details only the adapter knows (e.g. an image URL Bedrock cannot fetch).
        """
        return None
