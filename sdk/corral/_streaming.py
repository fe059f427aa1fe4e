"""Server-sent-event streams of chat chunks: `Stream` (sync) and `AsyncStream`.

Iterating yields typed chunks; meanwhile the stream assembles the final completion (content,
tool calls with parsed arguments, usage). It stops at `data: [DONE]`, raises on an event that
carries an `error` object, and always closes the response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from corral._accumulate import ChunkAccumulator
from corral._errors import APIConnectionError, APIResponseValidationError, APITimeoutError, make_stream_error
from corral.tools import ToolRegistry
from corral.types.chat import ChatCompletion, Usage
from corral.types.chunk import ChatCompletionChunk
from corral.types.corral import CorralInfo

__all__ = ["AsyncStream", "SSEDecoder", "SSEEvent", "Stream"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None


@dataclass(slots=True)
class SSEDecoder:
    """Lines in, events out (the parts of the SSE format a chat stream uses)."""

    _data: list[str] = field(default_factory=list)
    _event: str | None = None

    def feed(self, line: str) -> SSEEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def flush(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        event = SSEEvent("\n".join(self._data), self._event)
        self._data, self._event = [], None
        return event


class _StreamState:
    """What Stream and AsyncStream share: events to chunks, and the completion so far."""

    def __init__(self, response: httpx.Response, corral: CorralInfo, tools: ToolRegistry):
        self.response = response
        self.base_corral = corral
        self.tools = tools
        self.decoder = SSEDecoder()
        self.accumulator = ChunkAccumulator()
        self.done = False

    @property
    def corral(self) -> CorralInfo:
        extra = self.accumulator.corral
        return self.base_corral.updated(extra) if extra else self.base_corral

    def on_line(self, line: str) -> ChatCompletionChunk | None:
        event = self.decoder.feed(line)
        return self._on_event(event) if event is not None else None

    def on_end(self) -> ChatCompletionChunk | None:
        event = self.decoder.flush()
        chunk = self._on_event(event) if event is not None and not self.done else None
        if not self.done:
            raise APIConnectionError("The stream ended before [DONE].", request=self.response.request)
        return chunk

    def _on_event(self, event: SSEEvent) -> ChatCompletionChunk | None:
        data = event.data.strip()
        if data == "[DONE]":
            self.done = True
            return None
        try:
            parsed: Any = json.loads(data)
        except ValueError:
            raise APIResponseValidationError(
                f"unreadable stream event: {data[:200]!r}", response=self.response
            ) from None
        if not isinstance(parsed, dict):
            raise APIResponseValidationError(
                f"stream event is not an object: {data[:200]!r}", response=self.response
            )
        error = parsed.get("error")
        if isinstance(error, dict) or event.event == "error":
            raise make_stream_error(error if isinstance(error, dict) else parsed, self.response)
        chunk = ChatCompletionChunk.from_dict(parsed)
        self.accumulator.add(chunk)
        return chunk

    def final(self) -> ChatCompletion:
        completion = self.accumulator.completion()
        completion.corral = self.corral
        return self.tools.parse_completion(completion)


def _transport_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(request=request)
    return APIConnectionError(f"Connection error while streaming: {exc}", request=request)


class _StreamBase:
    def __init__(self, response: httpx.Response, *, corral: CorralInfo, tools: ToolRegistry):
        self.response = response
        self._state = _StreamState(response, corral, tools)

    @property
    def corral(self) -> CorralInfo:
        """What served the stream (headers, updated by a `corral` object in a chunk if one comes)."""
        return self._state.corral

    @property
    def usage(self) -> Usage | None:
        """Token usage; set once the final chunk has arrived."""
        return self._state.accumulator.usage

    @property
    def text(self) -> str:
        """The first choice's content received so far."""
        return self._state.accumulator.content

    @property
    def done(self) -> bool:
        return self._state.done


class Stream(_StreamBase):
    """Usage:
    with client.chat.completions.create(model=..., messages=..., stream=True) as stream:
        for chunk in stream:
            print(chunk.choices[0].delta.content or "", end="") if chunk.choices else None
    completion = stream.get_final_completion()   # assembled message, tool calls, usage
    """

    def __init__(self, response: httpx.Response, *, corral: CorralInfo, tools: ToolRegistry):
        super().__init__(response, corral=corral, tools=tools)
        self._iterator = self._iterate()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        return self

    def __next__(self) -> ChatCompletionChunk:
        return next(self._iterator)

    def _iterate(self) -> Generator[ChatCompletionChunk, None, None]:
        try:
            try:
                for line in self.response.iter_lines():
                    chunk = self._state.on_line(line)
                    if chunk is not None:
                        yield chunk
                    if self._state.done:
                        return
            except httpx.TransportError as exc:
                raise _transport_error(exc, self.response.request) from exc
            chunk = self._state.on_end()
            if chunk is not None:
                yield chunk
        finally:
            self.response.close()

    def until_done(self) -> Stream:
        """Read the rest of the stream."""
        for _ in self:
            pass
        return self

    def get_final_completion(self) -> ChatCompletion:
        """Read the rest of the stream and return it as one completion."""
        return self.until_done()._state.final()

    def close(self) -> None:
        self._iterator.close()
        self.response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncStream(_StreamBase):
    """Usage:
    stream = await client.chat.completions.create(model=..., messages=..., stream=True)
    async with stream:
        async for chunk in stream: ...
    completion = await stream.get_final_completion()
    """

    def __init__(self, response: httpx.Response, *, corral: CorralInfo, tools: ToolRegistry):
        super().__init__(response, corral=corral, tools=tools)
        self._iterator = self._iterate()

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        return await self._iterator.__anext__()

    async def _iterate(self) -> AsyncGenerator[ChatCompletionChunk, None]:
        try:
            try:
                async for line in self.response.aiter_lines():
                    chunk = self._state.on_line(line)
                    if chunk is not None:
                        yield chunk
                    if self._state.done:
                        return
            except httpx.TransportError as exc:
                raise _transport_error(exc, self.response.request) from exc
            chunk = self._state.on_end()
            if chunk is not None:
                yield chunk
        finally:
            await self.response.aclose()

    async def until_done(self) -> AsyncStream:
        async for _ in self:
            pass
        return self

    async def get_final_completion(self) -> ChatCompletion:
        return (await self.until_done())._state.final()

    async def close(self) -> None:
        await self._iterator.aclose()
        await self.response.aclose()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
