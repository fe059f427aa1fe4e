"""AWS Bedrock adapter: Converse / ConverseStream, SigV4-signed, over one aiohttp session.

Translation lives in `bedrock_mapping` (pure); this file does transport, signing,
event-stream decoding and the mapping of Bedrock's errors onto `ErrorKind`.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError
from yarl import URL

from gateway.catalogue.deployments import Deployment
from gateway.config import BedrockConfig, ProviderConfig, StreamLimits
from gateway.providers.base import Completion, Provider, UpstreamStream
from gateway.providers.bedrock.mapping import (
    PARAMETERS,
    PROVIDER,
    Handling,
    StreamTranslator,
    UnsupportedRequest,
    from_converse,
    malformed,
    to_converse,
)
from gateway.providers.bounded import read_bounded, too_large
from gateway.providers.errors import ErrorKind, UpstreamError, capability_refusal
from gateway.providers.listing import fetch_json
from gateway.providers.spec import ProviderSpec
from gateway.schema.chat import ChatRequest
from gateway.schema.params import WARN_IF_DROPPED

SIGNING_NAME = "bedrock"
EVENTSTREAM_TYPE = "application/vnd.amazon.eventstream"

#: Bedrock error code (lower-cased; HTTP errors use PascalCase, stream exceptions lowerCamel).
ERROR_KINDS: dict[str, ErrorKind] = {
    "throttlingexception": ErrorKind.RATE_LIMITED,
    "servicequotaexceededexception": ErrorKind.RATE_LIMITED,
    "modelnotreadyexception": ErrorKind.OVERLOADED,
    "serviceunavailableexception": ErrorKind.OVERLOADED,
    "internalserverexception": ErrorKind.UPSTREAM_5XX,
    "modelerrorexception": ErrorKind.UPSTREAM_5XX,
    "modelstreamerrorexception": ErrorKind.UPSTREAM_5XX,
    "modeltimeoutexception": ErrorKind.TIMEOUT,
    "validationexception": ErrorKind.BAD_REQUEST,
    "accessdeniedexception": ErrorKind.AUTH,
    "unrecognizedclientexception": ErrorKind.AUTH,
    "invalidsignatureexception": ErrorKind.AUTH,
    "incompletesignatureexception": ErrorKind.AUTH,
    "missingauthenticationtokenexception": ErrorKind.AUTH,
    "expiredtokenexception": ErrorKind.AUTH,
    # A 404 is "model gone" only when its message says so (see `error_kind`).
    "resourcenotfoundexception": ErrorKind.UPSTREAM_5XX,
}
#: When the code is missing or unknown.
STATUS_KINDS: dict[int, ErrorKind] = {
    401: ErrorKind.AUTH,
    403: ErrorKind.AUTH,
    # A bare 404 (no Bedrock error code) is an endpoint not found (a wrong base URL or a
    # proxy), not a model gone: it must not take the deployment out of rotation.
    404: ErrorKind.UPSTREAM_5XX,
    408: ErrorKind.TIMEOUT,
    429: ErrorKind.RATE_LIMITED,
    503: ErrorKind.OVERLOADED,
}
#: ValidationExceptions that are really about the prompt's size or the model's existence.
_CONTEXT_TOO_LONG = re.compile(
    r"input is too long|prompt is too long|too many input tokens|context (window|length)", re.IGNORECASE
)
_MODEL_GONE = re.compile(r"model identifier is invalid|end of its life", re.IGNORECASE)
#: AWS echoes the canonical request after this on signature mismatches: never pass it on.
_ECHO_MARKER = "The Canonical String"


#: The ResourceNotFoundException texts that mean the model itself is gone for this account:
#: end of life, or Legacy and unused by this account (both quoted from the live service,
#: docs/providers.md#02-what-a-retired-or-withdrawn-model-answers), or a model ID Bedrock
#: does not know. Any other 404 (an endpoint, a profile in another region) is not.
_MODEL_GONE_404 = re.compile(
    r"end of its life|marked by provider as legacy|model (?:identifier|id)\b.*(?:invalid|not (?:found|valid))"
    r"|could not resolve the foundation model",
    re.IGNORECASE,
)


def error_kind(code: str | None, status: int | None, message: str) -> ErrorKind:
    if (code or "").lower() == "resourcenotfoundexception" and _MODEL_GONE_404.search(message):
        return ErrorKind.MODEL_GONE
    kind = ERROR_KINDS.get((code or "").lower())
    if kind is None:
        if status is not None and status in STATUS_KINDS:
            return STATUS_KINDS[status]
        return ErrorKind.UPSTREAM_5XX if status is None or status >= 500 else ErrorKind.BAD_REQUEST
    if kind is ErrorKind.BAD_REQUEST:
        if _CONTEXT_TOO_LONG.search(message):
            return ErrorKind.CONTEXT_TOO_LONG
        if _MODEL_GONE.search(message):
            return ErrorKind.MODEL_GONE
        if capability_refusal(message):
            return ErrorKind.UNSUPPORTED
    return kind


def error_code(headers: Mapping[str, str], body: Any) -> str | None:
    """From `x-amzn-ErrorType` ("Code:uri"), else the body's `__type` ("ns#Code") or `code`."""
    raw = headers.get("x-amzn-ErrorType") or headers.get("x-amzn-errortype")
    if not raw and isinstance(body, dict):
        raw = body.get("__type") or body.get("code")
    if not raw or not isinstance(raw, str):
        return None
    return raw.split(":", 1)[0].rsplit("#", 1)[-1] or None


def clean_message(message: Any, secrets: Iterable[str]) -> str:
    text = str(message or "").split(_ECHO_MARKER, 1)[0]
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text.strip()[:500]


def retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after") or headers.get("Retry-After")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


def http_error(status: int, headers: Mapping[str, str], raw: bytes, secrets: Iterable[str] = ()) -> UpstreamError:
    """The UpstreamError for a non-200 answer (JSON body `{"message": ...}` when there is one)."""
    try:
        body: Any = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    code = error_code(headers, body)
    message = clean_message(body.get("message") or body.get("Message") if isinstance(body, dict) else "", secrets)
    return UpstreamError(
        error_kind(code, status, message),
        f"Bedrock {code or 'error'} (HTTP {status}): {message or 'no message'}",
        provider=PROVIDER,
        status=status,
        retry_after=retry_after(headers),
        code=code,
    )


def stream_error(code: str, payload: Any, secrets: Iterable[str] = ()) -> UpstreamError:
    """The UpstreamError for an exception frame arriving mid-stream."""
    message = clean_message(payload.get("message") if isinstance(payload, dict) else "", secrets)
    return UpstreamError(
        error_kind(code, None, message),
        f"Bedrock stream {code}: {message or 'no message'}",
        provider=PROVIDER,
        code=code,
    )


def transport_error(exc: BaseException) -> UpstreamError:
    """Timeouts and connection failures (aiohttp's timeouts are TimeoutError subclasses)."""
    if isinstance(exc, TimeoutError):
        return UpstreamError(ErrorKind.TIMEOUT, "Bedrock did not answer in time", provider=PROVIDER)
    return UpstreamError(
        ErrorKind.CONNECTION, f"Bedrock connection failed: {type(exc).__name__}: {exc}", provider=PROVIDER
    )


class BedrockProvider(Provider):
    name = "bedrock"

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        bedrock = config.bedrock or BedrockConfig()
        self.region = bedrock.region
        self.endpoint = (config.base_url or f"https://bedrock-runtime.{self.region}.amazonaws.com").rstrip("/")
        secrets = [
            s.get_secret_value()
            for s in (bedrock.access_key_id, bedrock.secret_access_key, bedrock.session_token)
            if s is not None
        ]
        self._secrets = tuple(secrets)
        self._signer: SigV4Auth | None = None
        if bedrock.access_key_id is not None and bedrock.secret_access_key is not None:
            token = bedrock.session_token.get_secret_value() if bedrock.session_token else None
            credentials = Credentials(
                bedrock.access_key_id.get_secret_value(), bedrock.secret_access_key.get_secret_value(), token
            )
            self._signer = SigV4Auth(credentials, SIGNING_NAME, self.region)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        timeouts = self.config.timeouts
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.config.pool_size, limit_per_host=self.config.pool_size),
            timeout=aiohttp.ClientTimeout(
                total=timeouts.total_s, connect=timeouts.connect_s, sock_read=timeouts.first_byte_s
            ),
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def dropped(self, request: ChatRequest) -> tuple[str, ...]:
        return tuple(
            key
            for key in request.body
            if key in WARN_IF_DROPPED and (p := PARAMETERS.get(key)) is not None and p.handling is Handling.DROPPED
        )

    def unsupported(self, request: ChatRequest, deployment: Deployment) -> str | None:
        try:
            to_converse(request.body, deployment)
        except UnsupportedRequest as exc:
            return str(exc)
        return None

    async def served_models(self) -> frozenset[str] | None:
        """ListFoundationModels (`GET /foundation-models?byProvider=meta` on the control plane,
        signed like the runtime calls), with each listed model also under its cross-region
        inference profile (`us.meta.…` in a us-* region), the form the catalogue uses."""
        if self._signer is None:
            return None
        base = self.config.base_url or f"https://bedrock.{self.region}.amazonaws.com"
        url = base.rstrip("/") + "/foundation-models?byProvider=meta"
        aws_request = AWSRequest(method="GET", url=url, data=b"")
        self._signer.add_auth(aws_request)
        body = await fetch_json(url, dict(aws_request.headers.items()), self.config.timeouts.first_byte_s)
        summaries = body.get("modelSummaries") if isinstance(body, dict) else None
        if not isinstance(summaries, list):
            return None
        geo = self.region.split("-", 1)[0]
        listed = [str(s["modelId"]) for s in summaries if isinstance(s, dict) and "modelId" in s]
        return frozenset(listed) | frozenset(f"{geo}.{m}" for m in listed)

    def url(self, deployment: Deployment, operation: str) -> str:
        return f"{self.endpoint}/model/{quote(deployment.model_id, safe='')}/{operation}"

    def sign(self, url: str, body: bytes) -> dict[str, str]:
        """SigV4 headers (Authorization, X-Amz-Date, ...) for a POST of `body` to `url`."""
        if self._signer is None:
            raise UpstreamError(ErrorKind.AUTH, "no AWS credentials are configured for Bedrock", provider=PROVIDER)
        aws_request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
        self._signer.add_auth(aws_request)
        return dict(aws_request.headers.items())

    async def complete(self, request: ChatRequest, deployment: Deployment) -> Completion:
        response = await self._send(request, deployment, "converse")
        try:
            raw = await read_bounded(response)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(exc) from None
        finally:
            response.release()
        if response.status != 200:
            raise http_error(response.status, response.headers, raw or b"", self._secrets)
        if raw is None:
            raise malformed(too_large(response.content_length))
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise malformed("Bedrock answered 200 with a body that is not JSON") from None
        request_id = _request_id(response)
        body, usage = from_converse(
            parsed, completion_id=f"chatcmpl-{request_id}", model=deployment.model_id, created=int(time.time())
        )
        return Completion(body=body, usage=usage, upstream_request_id=request_id, reported_total_s=_latency_s(parsed))

    async def stream(self, request: ChatRequest, deployment: Deployment) -> UpstreamStream:
        response = await self._send(request, deployment, "converse-stream")
        content_type = response.headers.get("Content-Type", "")
        if response.status != 200 or not content_type.startswith(EVENTSTREAM_TYPE):
            try:
                raw = await response.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise transport_error(exc) from None
            finally:
                response.release()
            if response.status != 200:
                raise http_error(response.status, response.headers, raw, self._secrets)
            raise malformed(f"Bedrock stream answered with content type {content_type!r}")
        request_id = _request_id(response)
        translator = StreamTranslator(
            chunk_id=f"chatcmpl-{request_id}", created=int(time.time()), model=deployment.model_id
        )
        return BedrockStream(response, translator, request_id, self._secrets, self.config.streams)

    async def _send(self, request: ChatRequest, deployment: Deployment, operation: str) -> aiohttp.ClientResponse:
        if self._session is None:
            raise RuntimeError("BedrockProvider.start() was not awaited")
        try:
            body = orjson.dumps(to_converse(request.body, deployment))
        except UnsupportedRequest as exc:
            raise UpstreamError(
                ErrorKind.BAD_REQUEST,
                f"Bedrock cannot serve this request: {exc}",
                provider=PROVIDER,
                code="unsupported_by_backend",
            ) from None
        url = self.url(deployment, operation)
        headers = self.sign(url, body)
        try:
            return await self._session.post(URL(url, encoded=True), data=body, headers=headers)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(exc) from None


def _request_id(response: aiohttp.ClientResponse) -> str:
    return response.headers.get("x-amzn-RequestId") or uuid.uuid4().hex


class BedrockStream(UpstreamStream):
    """Decodes the event stream frame by frame as bytes arrive."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        translator: StreamTranslator,
        request_id: str,
        secrets: tuple[str, ...] = (),
        limits: StreamLimits | None = None,
    ) -> None:
        self._response = response
        #: botocore bounds one frame (16 MiB); the whole stream and idle time are bounded here.
        self._limits = limits or StreamLimits()
        self._translator = translator
        self._secrets = secrets
        self._buffer = EventStreamBuffer()
        self._iterator: AsyncGenerator[dict[str, Any], None] | None = None
        self._closed = False
        self.upstream_request_id = request_id

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        if self._iterator is None:
            self._iterator = self._chunks()
        return self._iterator

    async def _chunks(self) -> AsyncGenerator[dict[str, Any], None]:
        limits = self._limits
        clock = asyncio.get_running_loop().time
        idle_until = clock() + limits.event_idle_s
        total = 0
        try:
            async for data in self._response.content.iter_any():
                total += len(data)
                if total > limits.max_answer_bytes:
                    raise malformed(f"Bedrock stream is over the {limits.max_answer_bytes:,}-byte limit for an answer")
                self._buffer.add_data(data)
                framed = False
                while (message := self._next_frame()) is not None:
                    framed = True
                    chunk = self._on_frame(message)
                    if chunk is not None:
                        yield chunk
                now = clock()
                if framed:
                    idle_until = now + limits.event_idle_s
                elif now > idle_until:
                    raise UpstreamError(
                        ErrorKind.TIMEOUT,
                        f"Bedrock sent no complete event within {limits.event_idle_s:g} s",
                        provider=PROVIDER,
                        code="event_idle_timeout",
                    )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise transport_error(exc) from None
        finally:
            self._release()
        if not self._translator.stopped:
            raise UpstreamError(ErrorKind.CONNECTION, "Bedrock stream ended before messageStop", provider=PROVIDER)

    def _next_frame(self) -> EventStreamMessage | None:
        try:
            return next(self._buffer)
        except StopIteration:
            return None
        except ParserError as exc:
            raise malformed(f"Bedrock sent a corrupt event-stream frame ({type(exc).__name__})") from None

    def _on_frame(self, message: EventStreamMessage) -> dict[str, Any] | None:
        headers = message.headers
        kind = headers.get(":message-type")
        if kind == "error":
            code = str(headers.get(":error-code", "error"))
            raise stream_error(code, {"message": headers.get(":error-message", "")}, self._secrets)
        try:
            payload = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            raise malformed("Bedrock sent an event whose payload is not JSON") from None
        if kind == "exception":
            raise stream_error(str(headers.get(":exception-type", "exception")), payload, self._secrets)
        if kind != "event" or not isinstance(payload, dict):
            raise malformed(f"Bedrock sent an unexpected event-stream message type {kind!r}")
        chunk = self._translator.event(str(headers.get(":event-type", "")), payload)
        self.finish_reason = self._translator.finish_reason
        self.usage = self._translator.usage
        return chunk

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()
        self._release()


SPEC = ProviderSpec(
    name="bedrock",
    adapter="gateway.providers.bedrock.adapter:BedrockProvider",
    fake="gateway.fakes.bedrock.server:BedrockFake",
    credentials="aws",  # the endpoint is derived from the region
    prior_ttft_ms=750,
    prior_tokens_per_s=70,
    billing_export="aws_cur",
)


def _latency_s(parsed: Any) -> float | None:
    """Converse's `metrics.latencyMs` (the whole call, measured by Bedrock), in seconds."""
    metrics = parsed.get("metrics") if isinstance(parsed, dict) else None
    value = metrics.get("latencyMs") if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value) / 1000
