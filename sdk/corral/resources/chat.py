"""`client.chat.completions`: create (plain or streamed), parse (tool calls typed by the
pydantic models given) and run_tools (the tool loop)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

from corral._params import (
    CHAT_KEYWORDS,
    REQUEST_KEYWORDS,
    ChatParams,
    MessageLike,
    RequestParams,
    prepare_chat,
)
from corral._signature import documented
from corral._streaming import AsyncStream, Stream
from corral._tool_loop import arun_tools, run_tools
from corral.tools import DEFAULT_MAX_ROUNDS, ToolLike, ToolRunResult, models_only
from corral.types.chat import ChatCompletion

if TYPE_CHECKING:
    from corral._client import AsyncCorral, Corral

CHAT_PATH = "/v1/chat/completions"
M = TypeVar("M")


class Completions:
    def __init__(self, client: Corral):
        self._client = client

    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        stream: Literal[False] = False,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion: ...
    @overload
    def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        stream: Literal[True],
        **params: Unpack[ChatParams],
    ) -> Stream: ...
    @overload
    def create(
        self, *, model: str, messages: Iterable[MessageLike], stream: bool, **params: Unpack[ChatParams]
    ) -> ChatCompletion | Stream: ...
    @documented(CHAT_KEYWORDS)
    def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        stream: bool = False,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion | Stream:
        """Create a chat completion; `stream=True` returns a `Stream` of chunks."""
        prepared = prepare_chat(
            model, messages, stream=stream, params=params, tools=params.get("tools") or ()
        )
        if stream:
            response, info = self._client._post(CHAT_PATH, prepared.body, prepared.options, stream=True)
            return Stream(response, corral=info, tools=prepared.tools)
        data, info = self._client._post_json(CHAT_PATH, prepared.body, prepared.options)
        return prepared.tools.parse_completion(ChatCompletion.from_dict(data, corral=info))

    @documented(REQUEST_KEYWORDS)
    def parse(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        tools: Sequence[type[M]],
        **params: Unpack[RequestParams],
    ) -> ChatCompletion[M]:
        """Like `create()` (not streamed) with pydantic models as the tools: the answer is a
        `ChatCompletion[Model]`, so type checkers see each call's `function.parsed_arguments`
        as `Model | None` (None, with `parse_error`, when the arguments did not validate). With
        several models the type is their common base. Raises TypeError for other kinds of tools."""
        models_only(tools)
        prepared = prepare_chat(model, messages, stream=False, params=params, tools=tools)
        data, info = self._client._post_json(CHAT_PATH, prepared.body, prepared.options)
        completion: ChatCompletion[M] = ChatCompletion.from_dict(data, corral=info)
        return prepared.tools.parse_typed(completion)

    @documented(REQUEST_KEYWORDS)
    def run_tools(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        tools: Sequence[ToolLike],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        **params: Unpack[RequestParams],
    ) -> ToolRunResult:
        """Call the model, run the tools it asks for, send back the results, and repeat until it
        answers without tool calls; raises MaxToolRoundsExceeded after `max_rounds` rounds."""

        def create(**kwargs: Any) -> ChatCompletion:
            completion: ChatCompletion = self.create(stream=False, **kwargs)
            return completion

        return run_tools(
            create, model=model, messages=messages, tools=tools, max_rounds=max_rounds, params=dict(params)
        )


class AsyncCompletions:
    def __init__(self, client: AsyncCorral):
        self._client = client

    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        stream: Literal[False] = False,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion: ...
    @overload
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        stream: Literal[True],
        **params: Unpack[ChatParams],
    ) -> AsyncStream: ...
    @overload
    async def create(
        self, *, model: str, messages: Iterable[MessageLike], stream: bool, **params: Unpack[ChatParams]
    ) -> ChatCompletion | AsyncStream: ...
    @documented(CHAT_KEYWORDS)
    async def create(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        stream: bool = False,
        **params: Unpack[ChatParams],
    ) -> ChatCompletion | AsyncStream:
        """Create a chat completion; `stream=True` returns an `AsyncStream` of chunks."""
        prepared = prepare_chat(
            model, messages, stream=stream, params=params, tools=params.get("tools") or ()
        )
        if stream:
            response, info = await self._client._post(CHAT_PATH, prepared.body, prepared.options, stream=True)
            return AsyncStream(response, corral=info, tools=prepared.tools)
        data, info = await self._client._post_json(CHAT_PATH, prepared.body, prepared.options)
        return prepared.tools.parse_completion(ChatCompletion.from_dict(data, corral=info))

    @documented(REQUEST_KEYWORDS)
    async def parse(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        tools: Sequence[type[M]],
        **params: Unpack[RequestParams],
    ) -> ChatCompletion[M]:
        """The async `parse()`: like `create()` (not streamed) with pydantic models as the tools;
        returns a `ChatCompletion[Model]` (see `Completions.parse`)."""
        models_only(tools)
        prepared = prepare_chat(model, messages, stream=False, params=params, tools=tools)
        data, info = await self._client._post_json(CHAT_PATH, prepared.body, prepared.options)
        completion: ChatCompletion[M] = ChatCompletion.from_dict(data, corral=info)
        return prepared.tools.parse_typed(completion)

    @documented(REQUEST_KEYWORDS)
    async def run_tools(
        self,
        *,
        model: str,
        messages: Iterable[MessageLike],
        tools: Sequence[ToolLike],
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        **params: Unpack[RequestParams],
    ) -> ToolRunResult:
        """The async tool loop; async handlers are awaited, and one round's calls run concurrently."""

        async def create(**kwargs: Any) -> ChatCompletion:
            completion: ChatCompletion = await self.create(stream=False, **kwargs)
            return completion

        return await arun_tools(
            create, model=model, messages=messages, tools=tools, max_rounds=max_rounds, params=dict(params)
        )


class Chat:
    def __init__(self, client: Corral):
        self.completions = Completions(client)


class AsyncChat:
    def __init__(self, client: AsyncCorral):
        self.completions = AsyncCompletions(client)
