"""The self-hosted vLLM pool (docs/providers.md#7-vllm-self-hosted-pool): OpenAI dialect on each replica's `/v1`.

vLLM accepts nearly every OpenAI parameter (`n`, `logprobs` + `top_logprobs`,
`parallel_tool_calls`, both output limits); `metadata`, `store` and `service_tier`
mean nothing to it and are dropped. Streams ask for `stream_options.include_usage`
(vLLM sends usage only then, on a final `choices: []` chunk). Errors come flat
(`{"object": "error", ...}`) or nested, with `code` = the HTTP status; a prompt too
long is a 400 whose message says "maximum context length". No rate-limit headers.

Which replica serves a request is `VllmPool.acquire`'s choice; a replica we cannot
connect to leaves the rotation until its next good health check, and the request goes
to the next healthy replica (it never reached the first).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

import aiohttp
import orjson
from pydantic import SecretStr

from gateway.catalogue.deployments import Deployment
from gateway.config import ProviderConfig, VllmPoolConfig
from gateway.providers.base import Completion, UpstreamStream
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.openai.adapter import Dialect, OpenAICompatProvider
from gateway.providers.openai.params import OPENAI_PARAMETERS, PASS, Rule
from gateway.providers.spec import ProviderSpec
from gateway.providers.vllm.pool import Replica, ReplicaState, VllmPool
from gateway.schema.chat import ChatRequest

__all__ = ["PARAMETERS", "VllmProvider"]

T = TypeVar("T")

#: The OpenAI set plus vLLM's own `structured_outputs` (json / regex / choice / grammar; since
#: v0.10.2, replacing the `guided_*` fields removed in v0.12.0), which tool-call re-asks use
#: to make an answer valid by construction. docs/providers.md#75-structured-outputs-on-vllm
PARAMETERS: Mapping[str, Rule] = {**OPENAI_PARAMETERS, "structured_outputs": PASS}


#: How much of the conversation's opening identifies it for replica affinity.
AFFINITY_PREFIX_CHARS = 2048


def conversation_key(request: ChatRequest) -> str | None:
    """The opening of the conversation (system prompt and first user turn): requests that
    share it share a prefix in vLLM's cache, so they should land on the same replica.
    The client's `prompt_cache_key` (OpenAI's name for the same idea) wins when given."""
    if request.cache_key is not None:
        return "key\x1e" + request.cache_key
    messages = request.body.get("messages") or ()
    opening = []
    for message in messages:
        content = message.get("content")
        opening.append(content if isinstance(content, str) else orjson.dumps(content).decode())
        # System and developer turns lead; the first user turn closes the opening (without a
        # system prompt it is the opening alone, whatever the later turns add).
        if message.get("role") not in ("system", "developer"):
            break
    text = "\x1e".join(opening)
    return text[:AFFINITY_PREFIX_CHARS] if text else None


def _unreachable(error: UpstreamError) -> bool:
    return error.kind is ErrorKind.CONNECTION or error.code == "connect_timeout"


class VllmProvider(OpenAICompatProvider):
    name = "vllm"
    constrains_reasks = True
    dialect = Dialect(params=PARAMETERS, stream_usage="stream_options")

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        pool = config.vllm or VllmPoolConfig()
        urls = pool.urls or ([config.base_url] if config.base_url else [])
        self.pool = VllmPool(urls, health_interval_s=pool.health_interval_s, metrics_interval_s=pool.metrics_interval_s)
        self._probes: aiohttp.ClientSession | None = None

    def _api_key(self) -> SecretStr | None:
        pool = self.config.vllm
        return pool.api_key if pool is not None and pool.api_key is not None else self.config.api_key

    async def start(self) -> None:
        if self._probes is not None:
            return
        await super().start()
        # Health and metrics probes are occasional GETs: aiohttp's general client serves them.
        headers = {"Authorization": f"Bearer {self._secrets[0]}"} if self._secrets else {}
        self._probes = aiohttp.ClientSession(headers=headers, trust_env=False, cookie_jar=aiohttp.DummyCookieJar())
        await self.pool.start(self._probes)

    async def close(self) -> None:
        await self.pool.close()
        probes, self._probes = self._probes, None
        if probes is not None:
            await probes.close()
        await super().close()

    async def served_models(self) -> frozenset[str] | None:
        """What the pool's healthy replicas list (None until one has answered a health check)."""
        healthy = [r for r in self.pool.state() if r.healthy]
        return frozenset(m for r in healthy for m in r.models) if healthy else None

    def pool_state(self) -> tuple[ReplicaState, ...]:
        """A snapshot of every replica, for the router."""
        return self.pool.state()

    def unsupported(self, request: ChatRequest, deployment: Deployment) -> str | None:
        reason = super().unsupported(request, deployment)
        if reason:
            return reason
        limit = self.pool.max_model_len(deployment.model_id)
        if limit is not None and request.prompt_tokens_estimate >= limit:
            needed = request.prompt_tokens_estimate
            return f"context window {limit} of the pool's replicas < about {needed} tokens needed"
        return None

    async def complete(self, request: ChatRequest, deployment: Deployment) -> Completion:
        payload = self._payload(request, deployment, stream=False)

        async def send(replica: Replica) -> Completion:
            try:
                return await self._complete_at(replica.chat_url, payload, request)
            finally:
                self.pool.release(replica)

        return await self._on_replicas(request, deployment, send)

    async def stream(self, request: ChatRequest, deployment: Deployment) -> UpstreamStream:
        payload = self._payload(request, deployment, stream=True)

        async def send(replica: Replica) -> UpstreamStream:
            # Any way out before the stream is handed over releases the slot, cancellation
            # included (a hedge's loser is cancelled while it waits for the replica's headers).
            try:
                return await self._stream_at(replica.chat_url, payload, on_close=lambda: self.pool.release(replica))
            except BaseException:
                self.pool.release(replica)
                raise

        return await self._on_replicas(request, deployment, send)

    async def _on_replicas(
        self, request: ChatRequest, deployment: Deployment, send: Callable[[Replica], Awaitable[T]]
    ) -> T:
        """Send on the pool's choice of replica. One that cannot be reached never got the
        request: it leaves the rotation and the next healthy replica gets the request, so
        one replica going away costs the caller nothing while another can serve."""
        for _ in range(max(1, len(self.pool.replicas))):
            replica = self.pool.acquire(deployment.model_id, conversation_key(request))
            try:
                return await send(replica)
            except UpstreamError as exc:
                self._after_failure(replica, exc)
                if not _unreachable(exc):
                    raise
                unreachable = exc
        raise unreachable

    def _payload(self, request: ChatRequest, deployment: Deployment, *, stream: bool) -> bytes:
        return orjson.dumps(self.build_body(request, deployment, stream=stream))

    def _after_failure(self, replica: Replica, error: UpstreamError) -> None:
        if _unreachable(error):
            self.pool.mark_unhealthy(replica, error.message)


SPEC = ProviderSpec(
    name="vllm",
    adapter="gateway.providers.vllm.adapter:VllmProvider",
    fake="gateway.fakes.vllm:VllmFake",
    credentials="pool",
    key_env="VLLM_API_KEY",
    pooled=True,
    prior_ttft_ms=300,
    prior_tokens_per_s=95,
)
