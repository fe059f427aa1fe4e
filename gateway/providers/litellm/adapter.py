"""The long tail through litellm: Vertex AI, Azure AI Foundry, anything litellm speaks.

Each configured deployment (`providers.litellm.deployments`) serves one logical model:
the request's OpenAI fields go to `litellm.acompletion` with the deployment's litellm
model string, API base and key, and the answer comes back in the shapes every other
adapter returns (usage included, so metering and cost work the same). litellm's own
retries are off: the dispatch loop owns retries and fall-over.

`import litellm` takes seconds and pulls in a large tree, so it happens only in
`start()`, and only a configured deployment starts this adapter; litellm is an optional
extra (`pip install corral-gateway[litellm]`). `LITELLM_LOCAL_MODEL_COST_MAP` is set
first so the import never reaches for the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from types import ModuleType
from typing import Any

from gateway.catalogue.deployments import Deployment
from gateway.catalogue.prices import Price
from gateway.config import LitellmDeployment, ProviderConfig
from gateway.providers.base import Completion, Provider, UpstreamStream
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.litellm.errors import map_exception
from gateway.providers.openai.adapter import estimate_usage
from gateway.providers.openai.normalise import Malformed, Shape, normalise_chunk, normalise_completion
from gateway.providers.openai.params import OPENAI_PARAMETERS, Rule, Unsupported, translate_body
from gateway.providers.spec import ProviderSpec
from gateway.schema.chat import ChatRequest
from gateway.schema.usage import Usage

__all__ = ["PARAMETERS", "SPEC", "LitellmProvider", "load_litellm"]

NAME = "litellm"
K_BAD = ErrorKind.BAD_REQUEST
K_MALFORMED = ErrorKind.MALFORMED_RESPONSE
#: OpenAI fields litellm translates for its backends; the rest are not forwarded.
#: litellm translates the whole OpenAI set for its backends.
PARAMETERS: Mapping[str, Rule] = OPENAI_PARAMETERS
_SHAPE = Shape()


def load_litellm() -> ModuleType:
    """Import litellm without any network access at import time, quietly."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    module: Any = importlib.import_module("litellm")
    module.suppress_debug_info = True
    module.telemetry = False
    loaded: ModuleType = module
    return loaded


class LitellmProvider(Provider):
    """Hands each call to `litellm.acompletion` for the deployment of its logical model."""

    name = NAME

    @classmethod
    def catalogue_rows(cls, config: ProviderConfig) -> dict[str, dict[str, Any]]:
        """Catalogue rows ("litellm/<model>") for the configured deployments."""
        return {
            f"{NAME}/{d.model}": {
                "model_id": d.litellm_model,
                "context_window": d.context_window,
                "max_output_tokens": d.max_output_tokens,
                "capabilities": list(d.capabilities),
            }
            for d in config.deployments
        }

    @classmethod
    def configured_prices(cls, config: ProviderConfig) -> list[Price]:
        """The deployments' list prices, for the price book."""
        return [
            Price(NAME, d.model, d.prices_effective, d.input_usd_per_1m, d.output_usd_per_1m, d.input_usd_per_1m)
            for d in config.deployments
        ]

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._specs: dict[str, LitellmDeployment] = {d.model: d for d in config.deployments}
        self._secrets = tuple(d.api_key.get_secret_value() for d in config.deployments if d.api_key is not None)
        self._litellm: ModuleType | None = None

    @property
    def litellm(self) -> ModuleType:
        if self._litellm is None:
            raise RuntimeError(f"{self.name}: provider used before start()")
        return self._litellm

    async def start(self) -> None:
        if self._litellm is None:
            self._litellm = await asyncio.to_thread(load_litellm)

    async def close(self) -> None:
        """litellm caches its HTTP clients module-wide; close them with the gateway."""
        closer = getattr(self._litellm, "close_litellm_async_clients", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()

    def arguments(self, request: ChatRequest, deployment: Deployment, *, stream: bool) -> dict[str, Any]:
        """The keyword arguments of `litellm.acompletion` for this request."""
        spec = self._specs.get(deployment.model)
        if spec is None:
            raise UpstreamError(K_BAD, f"{self.name}: no deployment for {deployment.model}", provider=self.name)
        try:
            body = translate_body(request.body, PARAMETERS, spec.litellm_model)
        except Unsupported as exc:
            raise UpstreamError(K_BAD, f"{self.name} does not support {exc}", provider=self.name) from exc
        timeouts = self.config.timeouts
        args: dict[str, Any] = {**spec.extra, **body, "timeout": timeouts.total_s, "num_retries": 0, "max_retries": 0}
        if spec.api_base:
            args["api_base"] = spec.api_base
        if spec.api_key is not None:
            args["api_key"] = spec.api_key.get_secret_value()
        if stream:
            args["stream"] = True
            args["stream_options"] = {"include_usage": True}
        return args

    async def _call(self, args: dict[str, Any]) -> Any:
        try:
            return await self.litellm.acompletion(**args)
        except Exception as exc:  # litellm raises its own classes and, at times, plain ones
            raise self.error(exc) from exc

    def error(self, exc: BaseException) -> UpstreamError:
        return map_exception(self.litellm, self.name, exc, self._secrets)

    async def complete(self, request: ChatRequest, deployment: Deployment) -> Completion:
        response = await self._call(self.arguments(request, deployment, stream=False))
        raw = _as_dict(response)
        try:
            body = normalise_completion(raw, _SHAPE)
        except Malformed as exc:
            raise UpstreamError(K_MALFORMED, f"{self.name}: malformed response: {exc}", provider=self.name) from exc
        usage = Usage.from_openai(raw.get("usage")) or estimate_usage(request, body)
        body["usage"] = usage.to_openai()
        return Completion(body=body, usage=usage)

    async def stream(self, request: ChatRequest, deployment: Deployment) -> UpstreamStream:
        wrapper = await self._call(self.arguments(request, deployment, stream=True))
        return LitellmStream(self, wrapper)


def _as_dict(value: Any) -> dict[str, Any]:
    """litellm's pydantic response objects as plain dicts."""
    dump = getattr(value, "model_dump", None)
    raw = dump() if callable(dump) else value
    return raw if isinstance(raw, dict) else {}


def _tidy(chunk: dict[str, Any]) -> dict[str, Any]:
    """Drop the `None` fields litellm puts in every delta (`"role": None`)."""
    for choice in chunk["choices"]:
        choice["delta"] = {k: v for k, v in choice["delta"].items() if v is not None}
    return chunk


def _says_nothing(chunk: dict[str, Any]) -> bool:
    """A chunk with no content, tool call, role or finish (litellm's usage carrier)."""
    return all(not c["delta"] and c["finish_reason"] is None for c in chunk["choices"])


class LitellmStream(UpstreamStream):
    """litellm's stream wrapper, yielding normalised chunks and keeping the usage."""

    def __init__(self, provider: LitellmProvider, wrapper: Any) -> None:
        self._provider = provider
        self._wrapper = wrapper
        self._closed = False
        self._chunks: AsyncGenerator[dict[str, Any], None] | None = None
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if self._chunks is not None:
            raise RuntimeError("an upstream stream can be iterated only once")
        self._chunks = self._read()
        return self._chunks

    async def _read(self) -> AsyncGenerator[dict[str, Any], None]:
        try:
            async for item in self._wrapper:
                chunk = self._chunk(_as_dict(item))
                if chunk is not None:
                    yield chunk
        except UpstreamError:
            raise
        except Exception as exc:  # litellm re-raises upstream failures mid-stream as its own classes
            raise self._provider.error(exc) from exc
        finally:
            await self._close_wrapper()

    def _chunk(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        usage = Usage.from_openai(raw.get("usage"))
        if usage is not None:
            self.usage = usage
        try:
            chunk = normalise_chunk(raw, _SHAPE)
        except Malformed as exc:
            name = self._provider.name
            raise UpstreamError(K_MALFORMED, f"{name}: malformed chunk: {exc}", provider=name) from exc
        if chunk is None or _says_nothing(_tidy(chunk)):
            return None
        for choice in chunk["choices"]:
            if choice["finish_reason"] is not None:
                self.finish_reason = choice["finish_reason"]
        return chunk

    async def aclose(self) -> None:
        chunks = self._chunks
        if chunks is not None:
            with contextlib.suppress(RuntimeError):  # being iterated by another task right now
                await chunks.aclose()
        await self._close_wrapper()

    async def _close_wrapper(self) -> None:
        """Release the upstream connection, once."""
        if self._closed:
            return
        self._closed = True
        closer = getattr(self._wrapper, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()


SPEC = ProviderSpec(
    name="litellm",
    adapter="gateway.providers.litellm.adapter:LitellmProvider",
    credentials="deployments",
    demo=False,
)
