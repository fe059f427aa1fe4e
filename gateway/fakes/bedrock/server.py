"""A faithful fake of Bedrock Runtime's Converse / ConverseStream for the Llama 4 models.

It checks SigV4 signatures like AWS (recomputed with botocore over what was received),
validates bodies the way Bedrock does, and answers per the `Script` in Bedrock's wire
format: JSON for Converse, `application/vnd.amazon.eventstream` frames for
ConverseStream, `x-amzn-ErrorType` + `{"message"}` for errors. botocore's own
bedrock-runtime client consumes it (tests/fakes/test_bedrock_fake.py).

Error texts come from docs/providers.md#68-bedrock-errors-and-http-codes and from third-party reports of real Bedrock
answers; the ones marked "unverified" there are plausible, not confirmed.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import re
import string
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway.catalogue.deployments import load_catalogue
from gateway.fakes import content
from gateway.fakes.bedrock.checks import BedrockRejection, invalid_request, validate_converse
from gateway.fakes.bedrock.eventstream import event_frame, exception_frame
from gateway.fakes.script import Behaviour, Script
from gateway.fakes.server import FakeServer, RecordedRequest

TEST_ACCESS_KEY_ID = "AKIDCORRALTEST00000"
TEST_SECRET_ACCESS_KEY = "corral-test-secret"
AMZ_DATE = "%Y%m%dT%H%M%SZ"
MAX_SKEW = timedelta(minutes=5)
#: A hanging request is held for at most an hour, checking for the client leaving.
HANG_POLL_S = 0.02
HANG_POLLS = int(3600 / HANG_POLL_S)
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
_AUTH_HEADER = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<akid>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, ?SignedHeaders=(?P<signed>[^,]+), ?Signature=(?P<signature>[0-9a-f]{64})"
)

#: Script error kind -> (HTTP status, Bedrock error code, message).
ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limited": (429, "ThrottlingException", "Too many requests, please wait before trying again."),
    "overloaded": (503, "ServiceUnavailableException", "Bedrock is unable to process your request."),
    "server_error": (
        500,
        "InternalServerException",
        "The server encountered an internal error while processing the request.",
    ),
    "bad_request": (400, "ValidationException", "Malformed input request, please reformat your input and try again."),
    "auth": (403, "AccessDeniedException", "You don't have access to the model with the specified model ID."),
    "context_too_long": (400, "ValidationException", "Input is too long for requested model."),
    "model_gone": (
        404,
        "ResourceNotFoundException",
        "This model version has reached the end of its life. Please refer to the AWS documentation for more details.",
    ),
}
#: Script error kind -> the lowerCamel exception sent mid-stream (default modelStreamErrorException).
STREAM_EXCEPTIONS = {
    "rate_limited": "throttlingException",
    "overloaded": "serviceUnavailableException",
    "server_error": "internalServerException",
    "bad_request": "validationException",
    "context_too_long": "validationException",
}
#: SigV4 failures: (code, message), all HTTP 403.
AUTH_FAILURES = {
    "missing": ("MissingAuthenticationTokenException", "Missing Authentication Token"),
    "incomplete": (
        "IncompleteSignatureException",
        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, "
        "and an X-Amz-Date header.",
    ),
    "unknown_key": ("UnrecognizedClientException", "The security token included in the request is invalid."),
    "service": ("InvalidSignatureException", "Credential should be scoped to correct service: 'bedrock'. "),
    "region": ("InvalidSignatureException", "Credential should be scoped to a valid region. "),
    "host": ("InvalidSignatureException", "'Host' must be a 'SignedHeader' in the AWS Authorization."),
    "signature": (
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS "
        "Secret Access Key and signing method. Consult the service documentation for details.",
    ),
}


def _forbidden(failure: str, message: str | None = None) -> BedrockRejection:
    code, default = AUTH_FAILURES[failure]
    return BedrockRejection(403, code, message or default)


def known_model_ids() -> frozenset[str]:
    """The catalogue's Bedrock IDs (geo profiles) plus their in-region `meta.*` forms."""
    ids: set[str] = set()
    for model in load_catalogue().models.values():
        for dep in model.deployments:
            if dep.provider == "bedrock":
                ids.add(dep.model_id)
                ids.add(dep.model_id.split(".", 1)[1] if dep.model_id.startswith("us.") else dep.model_id)
    return frozenset(ids)


@dataclass(slots=True)
class Answer:
    """What the fake model says: text and/or tool calls, then a stop reason."""

    text_tokens: list[str] = field(default_factory=list)
    tool_uses: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"
    input_tokens: int = 1

    @property
    def output_tokens(self) -> int:
        tool_chars = sum(len(orjson.dumps(t["input"])) for t in self.tool_uses)
        return len(self.text_tokens) + tool_chars // 4 + 4 * len(self.tool_uses)

    def content(self) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"text": "".join(self.text_tokens)}] if self.text_tokens else []
        return blocks + [{"toolUse": t} for t in self.tool_uses]

    def usage(self) -> dict[str, int]:
        out = self.output_tokens
        return {"inputTokens": self.input_tokens, "outputTokens": out, "totalTokens": self.input_tokens + out}


class BedrockFake(FakeServer):
    provider = "bedrock"

    def __init__(
        self,
        *,
        access_key_id: str = TEST_ACCESS_KEY_ID,
        secret_access_key: str = TEST_SECRET_ACCESS_KEY,
        region: str = "us-east-1",
        session_token: str | None = None,
        stream_tools: bool = False,
        model_ids: frozenset[str] | None = None,
        script: Script | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(script=script, host=host, port=port)
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = region
        self.session_token = session_token
        #: Accept tools on ConverseStream (real Llama 4 refuses them, docs/providers.md#69-llama-4-tool-use-on-bedrock).
        self.stream_tools = stream_tools
        self.model_ids = model_ids if model_ids is not None else known_model_ids()
        self._signer = SigV4Auth(Credentials(access_key_id, secret_access_key), "bedrock", region)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(r"/model/{model_id:.+}/{operation:converse|converse-stream}", self.handle),
            web.get("/foundation-models", self.handle_listing),
        ]

    async def handle_listing(self, request: web.Request) -> web.StreamResponse:
        """ListFoundationModels (the control plane's `GET /foundation-models`, signed like the
        runtime calls; botocore's bedrock service model): the in-region `meta.*` models this
        fake serves, filtered by `byProvider` as the service does (case-insensitively)."""
        try:
            self.verify_signature(request, b"")
        except BedrockRejection as exc:
            return error_response(exc.status, exc.code, exc.message)
        wanted = request.query.get("byProvider", "").lower()
        ids = sorted({m.split(".", 1)[1] if m.startswith("us.") else m for m in self.model_ids})
        summaries = [
            {
                "modelId": model_id,
                "modelArn": f"arn:aws:bedrock:{self.region}::foundation-model/{model_id}",
                "providerName": "Meta",
                "modelLifecycle": {"status": "ACTIVE"},
            }
            for model_id in ids
            if not wanted or wanted == "meta"
        ]
        return web.json_response({"modelSummaries": summaries})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            self.verify_signature(request, raw)
        except BedrockRejection as exc:
            self._record_rejected(request, raw)
            return error_response(exc.status, exc.code, exc.message)
        recorded, behaviour = await self.read(request)
        streaming = request.match_info["operation"] == "converse-stream"
        try:
            if request.match_info["model_id"] not in self.model_ids:
                raise invalid_request("The provided model identifier is invalid.")
            validate_converse(recorded.json, streaming=streaming, stream_tools=self.stream_tools)
        except BedrockRejection as exc:
            return error_response(exc.status, exc.code, exc.message)
        return await self._answer(request, recorded, behaviour, streaming)

    def _record_rejected(self, request: web.Request, raw: bytes) -> None:
        if self.record:
            self.requests.append(RecordedRequest(request.method, request.path_qs, dict(request.headers), raw, None))

    # --- SigV4 --------------------------------------------------------------------------

    def verify_signature(self, request: web.Request, raw: bytes) -> None:
        """Recompute the SigV4 signature over what was received, as AWS does."""
        header = request.headers.get("Authorization")
        if not header:
            raise _forbidden("missing")
        auth = _AUTH_HEADER.fullmatch(header.strip())
        amz_date = request.headers.get("X-Amz-Date", "")
        if auth is None or not amz_date:
            raise _forbidden("incomplete")
        token = request.headers.get("X-Amz-Security-Token")
        if auth["akid"] != self.access_key_id or (self.session_token and token != self.session_token):
            raise _forbidden("unknown_key")
        if auth["service"] != "bedrock":
            raise _forbidden("service")
        if auth["region"] != self.region:
            raise _forbidden("region")
        _check_clock(amz_date, auth["date"])
        signed = auth["signed"].split(";")
        if "host" not in signed:
            raise _forbidden("host")
        headers = {name: request.headers.get(name, "") for name in signed}
        aws = AWSRequest(request.method, f"http://{request.host}{request.raw_path}", data=raw, headers=headers)
        aws.context["timestamp"] = amz_date
        expected = self._signer.signature(self._signer.string_to_sign(aws, self._signer.canonical_request(aws)), aws)
        if not hmac.compare_digest(expected, auth["signature"]):
            raise _forbidden("signature")

    # --- answers ------------------------------------------------------------------------

    async def _answer(
        self, request: web.Request, recorded: RecordedRequest, behaviour: Behaviour, streaming: bool
    ) -> web.StreamResponse:
        started = time.monotonic()
        if behaviour.latency_ms:
            await asyncio.sleep(behaviour.latency_ms / 1000)
        if behaviour.hang:
            await _wait_for_disconnect(request)
            return web.Response(status=504)
        in_stream_error = streaming and behaviour.mid_stream_error_after is not None
        if behaviour.error == "malformed_body":
            return _garbage(streaming)
        if behaviour.error and not in_stream_error:
            status, code, message = ERRORS[behaviour.error]
            return error_response(status, code, message, retry_after=behaviour.retry_after_s)
        answer = plan_answer(recorded.json, behaviour, seed=zlib.crc32(recorded.body))
        if streaming:
            return await self._stream(request, answer, behaviour)
        if behaviour.tokens_per_s:
            await asyncio.sleep(answer.output_tokens / behaviour.tokens_per_s)
        body = {
            "output": {"message": {"role": "assistant", "content": answer.content()}},
            "stopReason": answer.stop_reason,
            "usage": answer.usage(),
            # ConverseMetrics.latencyMs: "The latency of the call to Converse, in milliseconds"
            # (botocore's service model): the whole call, generation included.
            "metrics": {"latencyMs": 1 + int((time.monotonic() - started) * 1000)},
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json", headers=_request_id())

    async def _stream(self, request: web.Request, answer: Answer, behaviour: Behaviour) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream", **_request_id()})
        await response.prepare(request)
        delay = 1 / behaviour.tokens_per_s if behaviour.tokens_per_s else 0.0
        sent = 0
        try:
            for frame in _stream_frames(answer, behaviour):
                if frame is None:
                    sent += 1
                    if behaviour.disconnect_after_chunks is not None and sent > behaviour.disconnect_after_chunks:
                        _drop(request)
                        return response
                    if behaviour.mid_stream_error_after is not None and sent > behaviour.mid_stream_error_after:
                        await response.write(_stream_exception(behaviour))
                        await response.write_eof()
                        return response
                    if delay:
                        await asyncio.sleep(delay)
                    continue
                await response.write(frame)
            await response.write_eof()
        except ConnectionError:
            pass
        return response


def _stream_frames(answer: Answer, behaviour: Behaviour) -> list[bytes | None]:
    """The ConverseStream frames for an answer; a None precedes every content delta so the
    writer can pace, drop or fail the stream after N content chunks."""
    frames: list[bytes | None] = [event_frame("messageStart", {"role": "assistant"})]
    index = 0
    if answer.text_tokens:
        for token in answer.text_tokens:
            frames += [None, event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": token}})]
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
        index = 1
    for tool in answer.tool_uses:
        start = {"toolUse": {"toolUseId": tool["toolUseId"], "name": tool["name"]}}
        frames.append(event_frame("contentBlockStart", {"contentBlockIndex": index, "start": start}))
        text = orjson.dumps(tool["input"]).decode()
        step = max(1, len(text) // 3)
        for i in range(0, len(text), step):
            delta = {"toolUse": {"input": text[i : i + step]}}
            frames += [None, event_frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})]
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    frames.append(event_frame("messageStop", {"stopReason": answer.stop_reason}))
    frames.append(
        event_frame("metadata", {"usage": answer.usage(), "metrics": {"latencyMs": 1 + int(behaviour.latency_ms)}})
    )
    return frames


def _stream_exception(behaviour: Behaviour) -> bytes:
    kind = STREAM_EXCEPTIONS.get(behaviour.error or "", "modelStreamErrorException")
    if kind == "modelStreamErrorException":
        payload = {
            "message": "The model encountered an error while generating the response.",
            "originalStatusCode": 500,
            "originalMessage": "model worker failed",
        }
        return exception_frame(kind, payload)
    return exception_frame(kind, {"message": ERRORS[behaviour.error or "server_error"][2]})


def _garbage(streaming: bool) -> web.Response:
    if streaming:
        return web.Response(
            body=b"\x00\x00\x00\x20garbage-not-an-event-stream-frame!!",
            content_type="application/vnd.amazon.eventstream",
            headers=_request_id(),
        )
    return web.Response(
        body=b"<html><body>502 upstream garbled</body></html>", content_type="application/json", headers=_request_id()
    )


def _drop(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


async def _wait_for_disconnect(request: web.Request) -> None:
    """Hold the request open until the client gives up (polling: aiohttp does not cancel
    handlers on disconnect, and a plain sleep would stall server shutdown)."""
    for _ in range(HANG_POLLS):
        if request.transport is None or request.transport.is_closing():
            return
        await asyncio.sleep(HANG_POLL_S)


def _request_id() -> dict[str, str]:
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def error_response(status: int, code: str, message: str, *, retry_after: float | None = None) -> web.Response:
    headers = {"x-amzn-ErrorType": f"{code}:{ERROR_NAMESPACE}", **_request_id()}
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    return web.Response(
        status=status, body=orjson.dumps({"message": message}), content_type="application/json", headers=headers
    )


def _check_clock(amz_date: str, scope_date: str) -> None:
    """AWS refuses signatures more than 5 minutes off its clock, and a scope dated otherwise."""
    try:
        signed_at = datetime.strptime(amz_date, AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise _forbidden("incomplete", f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'.") from None
    now = datetime.now(UTC).replace(microsecond=0)
    early, late = f"{now - MAX_SKEW:{AMZ_DATE}}", f"{now + MAX_SKEW:{AMZ_DATE}}"
    if signed_at < now - MAX_SKEW:
        raise _forbidden(
            "signature", f"Signature expired: {amz_date} is now earlier than {early} ({now:{AMZ_DATE}} - 5 min.)"
        )
    if signed_at > now + MAX_SKEW:
        raise _forbidden(
            "signature", f"Signature not yet current: {amz_date} is still later than {late} ({now:{AMZ_DATE}} + 5 min.)"
        )
    if scope_date != amz_date[:8]:
        raise _forbidden(
            "signature",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
            f"'{scope_date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )


# --- answer planning ----------------------------------------------------------------------


def plan_answer(body: dict[str, Any], behaviour: Behaviour, *, seed: int) -> Answer:
    answer = Answer(input_tokens=max(1, len(orjson.dumps([body.get("system"), body["messages"]])) // 4))
    inference = body.get("inferenceConfig") or {}
    tool = _tool_to_call(body)
    if tool is not None:
        _plan_tool(answer, tool, behaviour, seed)
        return answer
    text = behaviour.text if behaviour.text is not None else content.generate_text(behaviour.completion_tokens)
    for stop in inference.get("stopSequences") or []:
        if stop in text:
            text = text[: text.index(stop)]
            answer.stop_reason = "stop_sequence"
    tokens = list(content.split_text(text)) if text else []
    limit = inference.get("maxTokens")
    if isinstance(limit, int) and len(tokens) > limit:
        tokens, answer.stop_reason = tokens[:limit], "max_tokens"
    answer.text_tokens = tokens
    return answer


def _tool_to_call(body: dict[str, Any]) -> dict[str, Any] | None:
    """The toolSpec to call, or None to answer in text (auto after a tool result)."""
    config = body.get("toolConfig")
    if not config:
        return None
    specs: list[dict[str, Any]] = [t["toolSpec"] for t in config["tools"] if "toolSpec" in t]
    choice = config.get("toolChoice") or {"auto": {}}
    if "tool" in choice:
        named: dict[str, Any] = next(s for s in specs if s["name"] == choice["tool"]["name"])
        return named
    last = body["messages"][-1]
    answered = last["role"] == "user" and any("toolResult" in b for b in last["content"])
    return specs[0] if "any" in choice or not answered else None


def _plan_tool(answer: Answer, spec: dict[str, Any], behaviour: Behaviour, seed: int) -> None:
    """A toolUse whose input fits the schema; `malformed` is what Bedrock reports when
    Llama's tool-call text does not parse: stopReason malformed_tool_use."""
    schema = spec["inputSchema"]["json"]
    try:
        value = content.example_from_schema(schema, seed)
    except content.SchemaError:
        value = {}
    if behaviour.tool_args == "malformed":
        answer.text_tokens = list(content.split_text(spec["name"] + content.malformed(value, seed)))
        answer.stop_reason = "malformed_tool_use"
        return
    if behaviour.tool_args == "schema_invalid":
        value = content.schema_invalid(value, schema, seed)
    rng = random.Random(seed)
    tool_id = "tooluse_" + "".join(rng.choices(string.ascii_letters + string.digits, k=22))
    answer.tool_uses.append({"toolUseId": tool_id, "name": spec["name"], "input": value})
    answer.stop_reason = "tool_use"
