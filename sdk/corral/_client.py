"""`Corral` and `AsyncCorral`: the same configuration and request building (in `_BaseCorral`
and `_base`), differing only in how they send and sleep."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, Unpack

import httpx
import tenacity

from corral._base import (
    DEFAULT_BASE_URL,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    NOT_GIVEN,
    NotGiven,
    RequestOptions,
    RetryController,
    TimeoutLike,
    as_timeout,
    build_headers,
    build_request,
    check_deadline,
    check_max_retries,
    clamp_timeout,
    new_idempotency_key,
    normalize_base_url,
)
from corral._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    CorralError,
    make_status_error,
)
from corral._params import CHAT_KEYWORDS, ChatParams, MessageLike, prepare_chat
from corral._signature import documented
from corral.resources.chat import AsyncChat, Chat
from corral.resources.models import AsyncModels, Models
from corral.resources.spend import EXPLAIN_PATH, SPEND_PATH, DateLike, spend_query
from corral.types.corral import CorralInfo
from corral.types.explain import RouteExplanation
from corral.types.spend import SpendReport

__all__ = ["AsyncCorral", "Corral"]


@dataclass(slots=True)
class _Call:
    """One logical call: its request (resent as is on retries) and its retry bookkeeping."""

    request: httpx.Request
    timeout: httpx.Timeout
    controller: RetryController
    stream: bool

    def arm(self) -> httpx.Request:
        """The request with this attempt's timeout (cut to what is left of the deadline)."""
        remaining = self.controller.remaining()
        self.request.extensions["timeout"] = clamp_timeout(self.timeout, remaining).as_dict()
        return self.request


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise APIResponseValidationError("the gateway's answer is not JSON", response=response) from None
    if not isinstance(data, dict):
        raise APIResponseValidationError("the gateway's answer is not a JSON object", response=response)
    return data


def _transport_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(request=request)
    return APIConnectionError(f"Connection error: {exc}", request=request)


class _BaseCorral:
    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | httpx.URL | None,
        timeout: TimeoutLike,
        max_retries: int,
        deadline: float | None,
        default_headers: Mapping[str, str] | None,
        clock: Callable[[], float],
        rng: Callable[[], float],
    ):
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if not key:
            raise CorralError(f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable")
        self.api_key = key
        self.base_url = normalize_base_url(base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL)
        self.timeout = as_timeout(timeout)
        self.max_retries = check_max_retries(max_retries)
        self.deadline = check_deadline(deadline)
        self.default_headers = dict(default_headers or {})
        self._clock = clock
        self._rng = rng

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={str(self.base_url)!r}, max_retries={self.max_retries})"

    def _options(self, **overrides: Any) -> dict[str, Any]:
        current: dict[str, Any] = {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "deadline": self.deadline,
            "default_headers": self.default_headers,
        }
        current.update({k: v for k, v in overrides.items() if not isinstance(v, NotGiven)})
        return current

    def _prepare(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        options: RequestOptions,
        stream: bool,
    ) -> _Call:
        key = options.idempotency_key or (new_idempotency_key() if method == "POST" else None)
        headers = build_headers(
            self.api_key, self.default_headers, options, stream=stream, idempotency_key=key
        )
        url = httpx.URL(str(self.base_url).rstrip("/") + path)
        request = build_request(method, url, headers=headers, body=body, params=params)
        timeout = self.timeout if isinstance(options.timeout, NotGiven) else as_timeout(options.timeout)
        controller = RetryController(self.max_retries, self.deadline, self._clock(), self._clock, self._rng)
        return _Call(request, timeout, controller, stream)

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise make_status_error(response)
        return response


class Corral(_BaseCorral):
    """The synchronous client.

    Usage:
        with corral.Corral() as client:           # CORRAL_BASE_URL, CORRAL_API_KEY
            completion = client.chat.completions.create(
                model="llama-4-scout", messages=[{"role": "user", "content": "Hi"}], prefer="cost")
            print(completion.choices[0].message.content, completion.corral.provider)

    Parameters:
        api_key: defaults to $CORRAL_API_KEY (required).
        base_url: the gateway's root; defaults to $CORRAL_BASE_URL, then http://127.0.0.1:8080.
        timeout: seconds or an httpx.Timeout per attempt (default 600 s, 5 s to connect); None for none.
        max_retries: retries on connection errors, 429 and 503 (default 2).
        deadline: seconds for the whole call including retries and waits (default 600); None for none.
        default_headers: sent with every request.
        http_client: an httpx.Client to use (and not close); by default the client makes its own.
        sleep, clock, rng: injectable for tests (time.sleep, time.monotonic, random.random).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        deadline: float | None = DEFAULT_DEADLINE,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ):
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            deadline=deadline,
            default_headers=default_headers,
            clock=clock,
            rng=rng,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.Client()
        self._sleep = sleep
        self.chat = Chat(self)
        self.models = Models(self)

    def with_options(
        self,
        *,
        api_key: str | NotGiven = NOT_GIVEN,
        base_url: str | httpx.URL | NotGiven = NOT_GIVEN,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        default_headers: Mapping[str, str] | NotGiven = NOT_GIVEN,
    ) -> Corral:
        """A copy with some settings changed, sharing this client's connections."""
        options = self._options(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            deadline=deadline,
            default_headers=default_headers,
        )
        return Corral(**options, http_client=self._http, sleep=self._sleep, clock=self._clock, rng=self._rng)

    @documented(CHAT_KEYWORDS)
    def explain(
        self, *, model: str, messages: Iterable[MessageLike], **params: Unpack[ChatParams]
    ) -> RouteExplanation:
        """The route the gateway would take for this request, with the reason for each backend."""
        prepared = prepare_chat(model, messages, stream=False, params=params, tools=params.get("tools") or ())
        data, info = self._post_json(EXPLAIN_PATH, prepared.body, prepared.options)
        return RouteExplanation.from_dict(data, corral=info)

    def spend(
        self,
        *,
        start: DateLike,
        end: DateLike | None = None,
        group_by: str | Sequence[str] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> SpendReport:
        """Spend from `start` to `end` (inclusive days), grouped by provider, model, team and/or day."""
        data, info = self._get_json(SPEND_PATH, spend_query(start, end, group_by, filters), RequestOptions())
        return SpendReport.from_dict(data, corral=info)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- sending --------------------------------------------------------------------------

    def _post(
        self, path: str, body: Mapping[str, Any], options: RequestOptions, *, stream: bool = False
    ) -> tuple[httpx.Response, CorralInfo]:
        call = self._prepare("POST", path, body=body, params=None, options=options, stream=stream)
        return self._send(call)

    def _post_json(
        self, path: str, body: Mapping[str, Any], options: RequestOptions
    ) -> tuple[dict[str, Any], CorralInfo]:
        response, info = self._post(path, body, options)
        return _json_body(response), info

    def _get_json(
        self, path: str, params: Mapping[str, str] | None, options: RequestOptions
    ) -> tuple[dict[str, Any], CorralInfo]:
        call = self._prepare("GET", path, body=None, params=params, options=options, stream=False)
        response, info = self._send(call)
        return _json_body(response), info

    def _send(self, call: _Call) -> tuple[httpx.Response, CorralInfo]:
        attempts = 0
        response: httpx.Response | None = None
        for attempt in tenacity.Retrying(sleep=self._sleep, **call.controller.tenacity_kwargs()):
            with attempt:
                attempts += 1
                response = self._send_once(call)
        assert response is not None
        return response, CorralInfo.from_headers(response.headers, retries=attempts - 1)

    def _send_once(self, call: _Call) -> httpx.Response:
        request = call.arm()
        try:
            response = self._http.send(request, stream=call.stream)
        except httpx.TransportError as exc:
            raise _transport_error(exc, request) from exc
        if response.status_code >= 400 and call.stream:
            try:
                response.read()
            finally:
                response.close()
        return self._checked(response)


class AsyncCorral(_BaseCorral):
    """The asyncio client; the same parameters as `Corral`, with an httpx.AsyncClient and an
    async `sleep`.

    Usage:
        async with corral.AsyncCorral() as client:
            completion = await client.chat.completions.create(model="llama-4-scout", messages=[...])
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutLike = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        deadline: float | None = DEFAULT_DEADLINE,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ):
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            deadline=deadline,
            default_headers=default_headers,
            clock=clock,
            rng=rng,
        )
        self._owns_http = http_client is None
        self._http = http_client if http_client is not None else httpx.AsyncClient()
        self._sleep = sleep
        self.chat = AsyncChat(self)
        self.models = AsyncModels(self)

    def with_options(
        self,
        *,
        api_key: str | NotGiven = NOT_GIVEN,
        base_url: str | httpx.URL | NotGiven = NOT_GIVEN,
        timeout: TimeoutLike | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        deadline: float | NotGiven | None = NOT_GIVEN,
        default_headers: Mapping[str, str] | NotGiven = NOT_GIVEN,
    ) -> AsyncCorral:
        """A copy with some settings changed, sharing this client's connections."""
        options = self._options(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            deadline=deadline,
            default_headers=default_headers,
        )
        return AsyncCorral(
            **options, http_client=self._http, sleep=self._sleep, clock=self._clock, rng=self._rng
        )

    @documented(CHAT_KEYWORDS)
    async def explain(
        self, *, model: str, messages: Iterable[MessageLike], **params: Unpack[ChatParams]
    ) -> RouteExplanation:
        """The route the gateway would take for this request, with the reason for each backend."""
        prepared = prepare_chat(model, messages, stream=False, params=params, tools=params.get("tools") or ())
        data, info = await self._post_json(EXPLAIN_PATH, prepared.body, prepared.options)
        return RouteExplanation.from_dict(data, corral=info)

    async def spend(
        self,
        *,
        start: DateLike,
        end: DateLike | None = None,
        group_by: str | Sequence[str] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> SpendReport:
        """Spend from `start` to `end` (inclusive days), grouped by provider, model, team and/or day."""
        query = spend_query(start, end, group_by, filters)
        data, info = await self._get_json(SPEND_PATH, query, RequestOptions())
        return SpendReport.from_dict(data, corral=info)

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- sending --------------------------------------------------------------------------

    async def _post(
        self, path: str, body: Mapping[str, Any], options: RequestOptions, *, stream: bool = False
    ) -> tuple[httpx.Response, CorralInfo]:
        call = self._prepare("POST", path, body=body, params=None, options=options, stream=stream)
        return await self._send(call)

    async def _post_json(
        self, path: str, body: Mapping[str, Any], options: RequestOptions
    ) -> tuple[dict[str, Any], CorralInfo]:
        response, info = await self._post(path, body, options)
        return _json_body(response), info

    async def _get_json(
        self, path: str, params: Mapping[str, str] | None, options: RequestOptions
    ) -> tuple[dict[str, Any], CorralInfo]:
        call = self._prepare("GET", path, body=None, params=params, options=options, stream=False)
        response, info = await self._send(call)
        return _json_body(response), info

    async def _send(self, call: _Call) -> tuple[httpx.Response, CorralInfo]:
        attempts = 0
        response: httpx.Response | None = None
        async for attempt in tenacity.AsyncRetrying(sleep=self._sleep, **call.controller.tenacity_kwargs()):
            with attempt:
                attempts += 1
                response = await self._send_once(call)
        assert response is not None
        return response, CorralInfo.from_headers(response.headers, retries=attempts - 1)

    async def _send_once(self, call: _Call) -> httpx.Response:
        request = call.arm()
        try:
            response = await self._http.send(request, stream=call.stream)
        except httpx.TransportError as exc:
            raise _transport_error(exc, request) from exc
        if response.status_code >= 400 and call.stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return self._checked(response)
