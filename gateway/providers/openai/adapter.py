"""The shared adapter for the OpenAI-dialect backends (Groq, Together, DeepInfra, vLLM).

Each backend is a subclass that sets `name` and a `Dialect`: its parameter table,
finish-reason and logprobs quirks, rate-limit headers, its own status meanings and
how it reports usage on streams. A subclass overrides a hook only where the wire
format itself differs (Groq's `x_groq`).

Transport: one pooled `Http1Client` per provider (see `http1.py` for why not aiohttp),
made in `start()`; request bodies are written with orjson and sent as bytes. Failures become `UpstreamError`
at this boundary:

| failure | kind |
| --- | --- |
| connect refused / reset, server closed before answering | CONNECTION |
| connect, first-byte (between reads) or total timeout | TIMEOUT |
| non-2xx status | see `error_map.classify` |
| 200 that is not JSON / not the OpenAI shape, undecodable SSE data | MALFORMED_RESPONSE |
| error in a 200 stream (`{"error": …}`, flat `"object"`/`"type": "error"`, `event: error`) | code, else UPSTREAM_5XX |
| stream cut before `[DONE]` (and before any finish_reason) | UPSTREAM_5XX, code `stream_truncated` |

A cut stream is UPSTREAM_5XX rather than CONNECTION: the backend accepted the request
and failed while answering, and CONNECTION is kept for "could not reach it" (which,
for the vLLM pool, takes a replica out of rotation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import orjson
from pydantic import SecretStr

from gateway import __version__
from gateway.catalogue.deployments import Deployment
from gateway.config import ProviderConfig
from gateway.providers.base import Completion, Provider, RateLimitState, UpstreamStream
from gateway.providers.bounded import MAX_ANSWER_BYTES, too_large
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.http1 import (
    ConnectFailed,
    ConnectTimeout,
    Http1Client,
    Http1Error,
    Http1Response,
    InvalidResponse,
    ReadTimeout,
    TotalTimeout,
)
from gateway.providers.listing import listed_models
from gateway.providers.openai.error_map import error_info, read_error, redact, upstream_error
from gateway.providers.openai.normalise import Malformed, Shape, normalise_chunk, normalise_completion, plain_chunk
from gateway.providers.openai.params import Rule, Unsupported, dropped, find_unsupported, translate_body
from gateway.providers.openai.sse_decode import SSEDecoder, SSEEvent, StreamTooLarge
from gateway.providers.ratelimits import RateLimitHeaders, parse_duration, parse_ratelimit
from gateway.schema.chat import CHARS_PER_TOKEN, ChatRequest
from gateway.schema.params import WARN_IF_DROPPED
from gateway.schema.usage import Usage

__all__ = ["Dialect", "OpenAICompatProvider", "OpenAICompatStream"]

log = logging.getLogger(__name__)
K = ErrorKind
#: Idle keep-alive connections are dropped after this long (providers close at about 60 s).
KEEPALIVE_S = 30.0


@dataclass(frozen=True, slots=True)
class Dialect:
    """Everything that differs between OpenAI-dialect backends, as data."""

    params: Mapping[str, Rule]
    shape: Shape = field(default_factory=Shape)
    ratelimit_headers: RateLimitHeaders | None = None
    #: Statuses that mean something else at this backend (Groq 498, Together 403).
    status_kinds: Mapping[int, ErrorKind] = field(default_factory=dict)
    #: How usage reaches us on a stream: asked for with `stream_options.include_usage`,
    #: or sent unasked on the final chunk.
    stream_usage: Literal["stream_options", "final_chunk"] = "final_chunk"
    #: A header holding the backend's suggested retry interval on 429s, besides Retry-After.
    retry_hint_header: str | None = None
    request_id_header: str = "x-request-id"


def transport_error(provider: str, exc: BaseException, stage: str) -> UpstreamError:
    """A transport failure while `stage` -> UpstreamError.

    Once the status line is in ("reading the answer", "reading the stream"), a lost
    connection is the backend failing mid-answer (UPSTREAM_5XX, `stream_truncated`),
    not a failure to reach it.
    """
    if isinstance(exc, ConnectTimeout):
        kind, code, what = K.TIMEOUT, "connect_timeout", "connect timed out"
    elif isinstance(exc, ReadTimeout):
        kind, code, what = K.TIMEOUT, "read_timeout", "no data within the first-byte timeout"
    elif isinstance(exc, TimeoutError | TotalTimeout):
        kind, code, what = K.TIMEOUT, "total_timeout", "total timeout reached"
    elif isinstance(exc, InvalidResponse):
        kind, code, what = K.MALFORMED_RESPONSE, "invalid_http", f"invalid HTTP response ({exc})"
    elif stage.startswith("reading"):
        kind, code, what = K.UPSTREAM_5XX, "stream_truncated", f"connection lost mid-answer ({type(exc).__name__})"
    elif isinstance(exc, ConnectFailed):
        kind, code, what = K.CONNECTION, "connect_failed", f"cannot connect ({exc.os_error})"
    else:
        kind, code, what = K.CONNECTION, "connection_error", f"{type(exc).__name__}: {exc}"
    return UpstreamError(kind, f"{provider}: {what} while {stage}", provider=provider, code=code)


def _post_stage(exc: BaseException) -> str:
    """Where a POST failed: a bad status line or headers, or none in time, is the answer's
    fault (the request was sent), not a failure to send it."""
    if isinstance(exc, InvalidResponse):
        return "reading the answer's status line and headers"
    if isinstance(exc, ReadTimeout):
        return "waiting for the answer"
    return "sending the request"


class OpenAICompatProvider(Provider):
    """A backend speaking OpenAI's chat-completions wire format."""

    name = "openai-compatible"
    dialect: ClassVar[Dialect]

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._client: Http1Client | None = None
        key = self._api_key()
        self._secrets: tuple[str, ...] = (key.get_secret_value(),) if key else ()
        self._chat_url = config.base_url.rstrip("/") + "/chat/completions"

    def _api_key(self) -> SecretStr | None:
        return self.config.api_key

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._client is not None:
            return
        t = self.config.timeouts
        headers = {"User-Agent": f"corral/{__version__}", "Content-Type": "application/json"}
        if self._secrets:
            headers["Authorization"] = f"Bearer {self._secrets[0]}"
        self._client = Http1Client(
            limit=self.config.pool_size,
            connect_s=t.connect_s,
            first_byte_s=t.first_byte_s,
            total_s=t.total_s,
            keepalive_s=KEEPALIVE_S,
            headers=headers,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    @property
    def client(self) -> Http1Client:
        if self._client is None:
            raise RuntimeError(f"{self.name}: provider used before start()")
        return self._client

    async def served_models(self) -> frozenset[str] | None:
        """`GET {base}/models`: OpenAI's `{"data": [{"id": …}]}` or a bare list (Together)."""
        headers = {"Authorization": f"Bearer {self._secrets[0]}"} if self._secrets else {}
        url = self.config.base_url.rstrip("/") + "/models"
        return await listed_models(url, headers, self.config.timeouts.first_byte_s)

    # -- requests --------------------------------------------------------------------------

    def dropped(self, request: ChatRequest) -> tuple[str, ...]:
        return dropped(request.body, self.dialect.params, WARN_IF_DROPPED)

    def unsupported(self, request: ChatRequest, deployment: Deployment) -> str | None:
        reason = find_unsupported(request.body, self.dialect.params)
        return f"{self.name} does not support {reason}" if reason else None

    def build_body(self, request: ChatRequest, deployment: Deployment, *, stream: bool) -> dict[str, Any]:
        """The backend's JSON body for `request` (the dialect's table applied)."""
        try:
            body = translate_body(request.body, self.dialect.params, deployment.model_id)
        except Unsupported as exc:
            raise UpstreamError(
                K.BAD_REQUEST,
                f"{self.name} does not support {exc}",
                provider=self.name,
                code="unsupported_parameter",
            ) from exc
        if stream:
            body["stream"] = True
            if self.dialect.stream_usage == "stream_options":
                body["stream_options"] = {"include_usage": True}
        return body

    async def complete(self, request: ChatRequest, deployment: Deployment) -> Completion:
        body = self.build_body(request, deployment, stream=False)
        return await self._complete_at(self._chat_url, orjson.dumps(body), request)

    async def stream(self, request: ChatRequest, deployment: Deployment) -> UpstreamStream:
        body = self.build_body(request, deployment, stream=True)
        return await self._stream_at(self._chat_url, orjson.dumps(body))

    async def _post(self, url: str, payload: bytes) -> Http1Response:
        """POST and wait for status and headers; non-2xx raises the mapped error."""
        try:
            response = await self.client.post(url, payload)
        except Http1Error as exc:
            raise transport_error(self.name, exc, _post_stage(exc)) from exc
        if response.status >= 300:
            try:
                raw = await response.read(MAX_ANSWER_BYTES) or b""
            except Http1Error:
                raw = b""
            finally:
                response.release()
            raise self._status_error(response.status, response.headers, raw)
        return response

    def _status_error(self, status: int, headers: Mapping[str, str], raw: bytes) -> UpstreamError:
        state = parse_ratelimit(headers, self.dialect.ratelimit_headers)
        retry_after = state.retry_after_s if state else None
        if retry_after is None and self.dialect.retry_hint_header:
            retry_after = parse_duration(headers.get(self.dialect.retry_hint_header))
        return upstream_error(
            self.name,
            status,
            read_error(raw),
            overrides=self.dialect.status_kinds,
            retry_after=retry_after,
            secrets=self._secrets,
        )

    def payload_error(self, payload: Any) -> UpstreamError | None:
        """The error carried by a 200 body or a stream event, if any (nested under `error`, or
        flat with `"object": "error"` as older vLLM, or `"type": "error"` as Fireworks sends)."""
        if not isinstance(payload, dict) or (
            "error" not in payload and payload.get("object") != "error" and payload.get("type") != "error"
        ):
            return None
        info = error_info(payload)
        if info is None:
            return None
        return upstream_error(self.name, None, info, overrides=self.dialect.status_kinds, secrets=self._secrets)

    def malformed(self, what: str) -> UpstreamError:
        return UpstreamError(
            K.MALFORMED_RESPONSE,
            f"{self.name}: malformed response: {redact(what, self._secrets)}",
            provider=self.name,
        )

    # -- whole answers ----------------------------------------------------------------------

    async def _complete_at(self, url: str, payload: bytes, request: ChatRequest) -> Completion:
        response = await self._post(url, payload)
        raw = await self._read_whole(response)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise self.malformed(f"answer is not JSON ({exc})") from exc
        error = self.payload_error(parsed)
        if error is not None:
            raise error
        try:
            body = normalise_completion(parsed, self.dialect.shape)
        except Malformed as exc:
            raise self.malformed(str(exc)) from exc
        usage = Usage.from_openai(self.completion_usage(parsed)) or estimate_usage(request, body)
        body["usage"] = usage.to_openai()
        return Completion(
            body=body,
            usage=usage,
            ratelimit=parse_ratelimit(response.headers, self.dialect.ratelimit_headers),
            upstream_request_id=response.headers.get(self.dialect.request_id_header),
            reported_timing_s=self.completion_timing(parsed),
        )

    async def _read_whole(self, response: Http1Response) -> bytes:
        """The whole answer, its connection released; one over the size bound is refused
        (MALFORMED_RESPONSE, so the next backend gets the request)."""
        try:
            raw = await response.read(MAX_ANSWER_BYTES)
        except Http1Error as exc:
            raise transport_error(self.name, exc, "reading the answer") from exc
        finally:
            response.release()
        if raw is None:
            raise self.malformed(too_large(response.content_length))
        return raw

    def completion_usage(self, raw: dict[str, Any]) -> Any:
        """Where the usage object sits in a whole answer."""
        return raw.get("usage")

    def completion_timing(self, raw: dict[str, Any]) -> tuple[float, float] | None:
        """(time to first token, generation) in seconds, if the backend reports them."""
        return None

    # -- streams ----------------------------------------------------------------------------

    async def _stream_at(
        self, url: str, payload: bytes, on_close: Callable[[], None] | None = None
    ) -> OpenAICompatStream:
        response = await self._post(url, payload)
        if response.content_type == "application/json":
            raw = await self._read_whole(response)
            try:
                error = self.payload_error(orjson.loads(raw))
            except orjson.JSONDecodeError:
                error = None
            raise error or self.malformed("expected an event stream, got a JSON body")
        return OpenAICompatStream(self, response, on_close)

    def chunk_usage(self, chunk: dict[str, Any]) -> Any:
        """Where the usage object sits in a stream chunk (None: not in this one)."""
        return chunk.get("usage")

    def chunk_error(self, chunk: dict[str, Any]) -> UpstreamError | None:
        """An error a backend reports inside an otherwise normal chunk."""
        return None


def estimate_usage(request: ChatRequest, body: dict[str, Any]) -> Usage:
    """Usage when the backend reported none: the request's prompt estimate and the answer's length."""
    chars = 0
    for choice in body["choices"]:
        message = choice["message"]
        content = message.get("content")
        chars += len(content) if isinstance(content, str) else 0
        for call in message.get("tool_calls") or ():
            chars += len(call["function"]["arguments"]) + len(call["function"]["name"])
    return Usage(request.prompt_tokens_estimate, chars // CHARS_PER_TOKEN, estimated=True)


class OpenAICompatStream(UpstreamStream):
    """An open SSE answer, parsed incrementally as bytes arrive."""

    def __init__(
        self,
        provider: OpenAICompatProvider,
        response: Http1Response,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._provider = provider
        self._response = response
        self._on_close = on_close
        self._done = False
        self._closed = False
        self._chunks: AsyncGenerator[list[dict[str, Any]], None] | None = None
        #: (choice, tool call index) pairs whose header delta has gone out.
        self._seen_calls: set[tuple[int, Any]] = set()
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.ratelimit: RateLimitState | None = parse_ratelimit(response.headers, provider.dialect.ratelimit_headers)
        self.upstream_request_id: str | None = response.headers.get(provider.dialect.request_id_header)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._flat()

    @property
    def ended(self) -> bool:
        return self._done

    def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        if self._chunks is not None:
            raise RuntimeError("an upstream stream can be iterated only once")
        self._chunks = self._iterate()
        return self._chunks

    async def _flat(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self.batches():
            for chunk in batch:
                yield chunk

    async def _iterate(self) -> AsyncGenerator[list[dict[str, Any]], None]:
        """One list of chunks per network read: everything that arrived together."""
        limits = self._provider.config.streams
        decoder = SSEDecoder(limits.max_event_bytes, limits.max_answer_bytes)
        read = self._response.readany
        name = self._provider.name
        clock = asyncio.get_running_loop().time
        idle_until = clock() + limits.event_idle_s
        try:
            while not self._done:
                try:
                    data = await read()
                except Http1Error as exc:
                    raise transport_error(name, exc, "reading the stream") from exc
                if not data:
                    break
                try:
                    events = decoder.feed(data)
                except StreamTooLarge as exc:
                    raise self._provider.malformed(str(exc)) from exc
                now = clock()
                if events:
                    idle_until = now + limits.event_idle_s
                elif now > idle_until:
                    raise UpstreamError(
                        K.TIMEOUT,
                        f"{name}: no complete event within {limits.event_idle_s:g} s (bytes trickled in)",
                        provider=name,
                        code="event_idle_timeout",
                    )
                batch = []
                for event in events:
                    chunk = self._on_event(event)
                    if chunk is not None:
                        batch.append(chunk)
                    if self._done:
                        break
                if batch:
                    yield batch
            tail = None if self._done else decoder.flush()
            chunk = self._on_event(tail) if tail is not None else None
            if chunk is not None:
                yield [chunk]
            self._check_complete()
        finally:
            self._release()

    def _check_complete(self) -> None:
        """At EOF: a stream that never said [DONE] is accepted only if its final chunk came."""
        if not self._done and self.finish_reason is None:
            raise UpstreamError(
                K.UPSTREAM_5XX,
                f"{self._provider.name}: stream ended before [DONE]",
                provider=self._provider.name,
                code="stream_truncated",
            )
        self._done = True

    def _on_event(self, event: SSEEvent) -> dict[str, Any] | None:
        data = event.data
        if data == b"[DONE]":
            self._done = True
            return None
        if data[:1] != b"{" and not data.strip():
            return None
        provider = self._provider
        raw: Any
        try:
            raw = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            if event.event != "error":
                raise provider.malformed(f"undecodable stream event ({exc})") from exc
            raw = data.decode("utf-8", "replace")
        if type(raw) is dict and plain_chunk(raw) and event.event == "message":
            # Nearly every chunk: no error, usage, finish reason or tool call can be in it.
            return raw
        if event.event == "error" and not (isinstance(raw, dict) and "error" in raw):
            raw = {"error": raw if isinstance(raw, dict) else str(raw)}
        error = provider.payload_error(raw) or (provider.chunk_error(raw) if isinstance(raw, dict) else None)
        if error is not None:
            raise error
        return self._chunk(raw)

    def _chunk(self, raw: Any) -> dict[str, Any] | None:
        provider = self._provider
        try:
            chunk = normalise_chunk(raw, provider.dialect.shape)
        except Malformed as exc:
            raise provider.malformed(str(exc)) from exc
        usage = provider.chunk_usage(raw)
        if usage is not None:
            self.usage = Usage.from_openai(usage) or self.usage
        if chunk is not None:
            for choice in chunk["choices"]:
                if choice["finish_reason"] is not None:
                    self.finish_reason = choice["finish_reason"]
                calls = choice["delta"].get("tool_calls")
                if calls:
                    self._header_once(choice["index"], calls)
        return chunk

    def _header_once(self, choice: int, calls: list[dict[str, Any]]) -> None:
        """A tool call's id, type and name go out on its first delta only, as in OpenAI's
        streams: clients accumulate deltas by concatenating strings, so a backend that repeats
        them on every delta (Together's chunk type requires them on each) would otherwise
        reach them as "get_weatherget_weather". Indexes sent as floats become integers."""
        for call in calls:
            index = call.get("index")
            if isinstance(index, float) and index.is_integer():
                call["index"] = index = int(index)
            key = (choice, index)
            if key not in self._seen_calls:
                self._seen_calls.add(key)
                continue
            call.pop("id", None)
            call.pop("type", None)
            function = call.get("function")
            if isinstance(function, dict):
                function.pop("name", None)

    @property
    def released(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        chunks = self._chunks
        if chunks is not None and not self._closed:
            with contextlib.suppress(RuntimeError):  # being iterated by another task right now
                await chunks.aclose()
        self._release()

    def _release(self) -> None:
        """Hand the connection back (after [DONE]) or drop it (mid-stream), once."""
        if self._closed:
            return
        self._closed = True
        if self._done:
            self._response.release()
        else:
            self._response.close()
        if self._on_close is not None:
            self._on_close()
