"""The engine shared by the OpenAI-dialect fakes (Groq, Together, DeepInfra, vLLM).

One request goes: read + script -> auth -> shape checks -> model -> scripted error ->
dialect parameter checks -> context check -> planned answer -> admission (rate limits,
concurrency, vLLM's batch queue) -> latency -> answer (whole, or SSE with pacing and
faults). Dialects override the hooks that differ on the wire: error bodies, extra fields,
usage, finish reasons, headers.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from gateway.catalogue.deployments import Deployment
from gateway.fakes.content import chunk_string, count_prompt_tokens
from gateway.fakes.openai.answer import JSON_DELTA_CHARS, Answer, Finish, plan_answer, requested_max_tokens
from gateway.fakes.openai.wire import (
    DEFAULT_KEY,
    DONE,
    DefaultKey,
    Event,
    Exchange,
    Problem,
    Reply,
    provider_models,
    random_hex,
    sse,
)
from gateway.fakes.script import Behaviour, Script
from gateway.fakes.server import FakeServer

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_TOOL_CHOICES = frozenset({"none", "auto", "required"})


class OpenAICompatFake(FakeServer):
    """Base of the OpenAI-dialect fakes; a subclass is one provider's wire dialect."""

    #: Path prefix of the provider's OpenAI-compatible API (what `base_url` adds to `url`).
    api_prefix: str = "/v1"
    default_api_key: str | None = None
    #: The finish_reason a natural stop has on this provider's wire.
    natural_stop: str = "stop"
    #: Streams open with a `{"role": "assistant", "content": ""}` chunk (else the role rides
    #: on the first content delta).
    role_chunk: bool = True
    #: Send `data: [DONE]` after an in-stream error (vLLM does; the hosted APIs stop).
    done_after_stream_error: bool = False
    #: Emit OpenAI's extra usage chunk (`choices: []`) for `stream_options.include_usage`.
    honours_include_usage: bool = True
    #: Usage rides on the stream's last finish chunk, asked for or not (Together, DeepInfra, Fireworks).
    usage_on_final_chunk: bool = False
    #: The backend answers rate limits with a 429 (Ollama has none: its full queue is a 503).
    sends_429: bool = True
    handler_cancellation = True
    shutdown_timeout_s = 2.0

    def __init__(
        self,
        *,
        api_key: str | DefaultKey | None = DEFAULT_KEY,
        retired_models: Iterable[str] = (),
        script: Script | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        record: bool = True,
    ) -> None:
        super().__init__(script=script, host=host, port=port, record=record)
        self.api_key: str | None = self.default_api_key if isinstance(api_key, DefaultKey) else api_key
        #: Model IDs answered as withdrawn (Groq: 400 model_decommissioned).
        self.retired_models: set[str] = set(retired_models)
        self.models: dict[str, Deployment] = provider_models(self.provider)

    # ------------------------------------------------------------------ routes

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(f"{self.api_prefix}/chat/completions", self.handle_chat),
            web.get(f"{self.api_prefix}/models", self.handle_models),
        ]

    @property
    def base_url(self) -> str:
        return self.url + self.api_prefix

    async def handle_models(self, request: web.Request) -> web.StreamResponse:
        problem = self.check_auth(request)
        if problem is not None:
            return self.respond(self.render(problem))
        return self.respond(Reply(200, self.models_listing()))

    async def handle_chat(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        try:
            recorded, behaviour = await self.read(request)
        except ValueError as exc:
            return self.respond(self.render(Problem("bad_request", f"fake behaviour directive: {exc}")))
        outcome = self.prepare(request, recorded.json, recorded.body, behaviour, arrived)
        if isinstance(outcome, Problem):
            return await self.refuse(outcome, behaviour)
        exchange = outcome
        refusal = await self.admit(exchange)
        if refusal is not None:
            return await self.refuse(refusal, behaviour)
        self.chat_count += 1
        latency_ms = behaviour.latency_for(self.chat_count)
        try:
            if behaviour.hang:
                await asyncio.Event().wait()
            if latency_ms > 0 and not await self.pause(request, recorded, latency_ms / 1000):
                return web.Response(status=499)
            self.on_started(exchange)
            if exchange.stream:
                return await self.send_stream(request, exchange)
            return await self.send_completion(exchange)
        finally:
            self.release(exchange)

    async def refuse(self, problem: Problem, behaviour: Behaviour) -> web.StreamResponse:
        if behaviour.hang:
            await asyncio.Event().wait()
        if behaviour.latency_ms > 0:
            await asyncio.sleep(behaviour.latency_ms / 1000)
        return self.respond(self.render(problem))

    def respond(self, reply: Reply) -> web.Response:
        headers = dict(reply.headers)
        if reply.body is None:
            return web.Response(status=reply.status, headers=headers)
        body = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
        headers.setdefault("Content-Type", "application/json")
        return web.Response(status=reply.status, body=body, headers=headers)

    # ------------------------------------------------------------------ request checks

    def check_auth(self, request: web.Request) -> Problem | None:
        if self.api_key is None:
            return None
        header = request.headers.get("Authorization")
        if not header:
            return Problem("auth_missing")
        if header != f"Bearer {self.api_key}":
            return Problem("auth_invalid")
        return None

    def prepare(
        self, request: web.Request, body: Any, raw: bytes, behaviour: Behaviour, arrived: float
    ) -> Exchange | Problem:
        problem = self.check_auth(request)
        if problem is not None:
            return problem
        if not isinstance(body, dict):
            what = "not valid JSON" if raw else "empty"
            return Problem("bad_request", f"The request body is {what}; expected a JSON object.")
        problem = self.check_shape(body)
        if problem is not None:
            return problem
        model = body["model"]
        deployment = self.models.get(model)
        if deployment is None:
            return Problem("model_not_found", model=model, param="model")
        if model in self.retired_models:
            return Problem("model_retired", model=model, param="model")
        prompt_tokens = count_prompt_tokens(body["messages"])
        if behaviour.error is not None and behaviour.error != "malformed_body":
            return self.scripted_problem(behaviour, body, deployment, prompt_tokens)
        problem = self.check_params(body, deployment) or self.check_context(body, deployment, prompt_tokens)
        if problem is not None:
            return problem
        stream_options = body.get("stream_options")
        return Exchange(
            body=body,
            behaviour=behaviour,
            deployment=deployment,
            model=model,
            stream=body.get("stream") is True,
            include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
            n=body.get("n") or 1,
            prompt_tokens=prompt_tokens,
            answer=plan_answer(
                self.effective_body(body, deployment, prompt_tokens),
                behaviour,
                make_tool_id=self.tool_call_id,
                structured=self.structured_content(body),
            ),
            id=self.completion_id(),
            created=int(time.time()),
            arrived=arrived,
        )

    def check_shape(self, body: dict[str, Any]) -> Problem | None:
        """What every OpenAI-compatible server rejects, whatever the provider."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return Problem("bad_request", "'model' is required and must be a string.", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return Problem("bad_request", "'messages' must be a non-empty array.", param="messages")
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if not isinstance(role, str) or role not in _ROLES:
                return Problem(
                    "bad_request", f"'messages.{index}' must be an object with a valid 'role'.", param="messages"
                )
        for key, kind in (("stream", bool), ("n", int), ("max_tokens", int), ("max_completion_tokens", int)):
            value = body.get(key)
            if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
                return Problem("bad_request", f"'{key}' must be of type {kind.__name__}.", param=key)
        for key in ("n", "max_tokens", "max_completion_tokens"):
            value = body.get(key)
            if isinstance(value, int) and value < 1:
                return Problem("bad_request", f"'{key}' must be at least 1.", param=key)
        return self.check_tools(body)

    def check_tools(self, body: dict[str, Any]) -> Problem | None:
        tools = body.get("tools")
        choice = body.get("tool_choice")
        if tools is None:
            if choice is not None and choice != "none":
                return Problem("bad_request", "'tool_choice' is only allowed when 'tools' are given.", "tool_choice")
            return None
        if not isinstance(tools, list):
            return Problem("bad_request", "'tools' must be an array.", param="tools")
        names = set()
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                return Problem("bad_request", f"'tools.{index}.function.name' is required.", param="tools")
            names.add(function["name"])
        if isinstance(choice, dict):
            function = choice.get("function")
            wanted = function.get("name") if isinstance(function, dict) else None
            if not isinstance(wanted, str) or wanted not in names:
                return Problem("bad_request", f"Tool choice '{wanted}' is not in 'tools'.", param="tool_choice")
        elif choice is not None and (not isinstance(choice, str) or choice not in _TOOL_CHOICES):
            return Problem("bad_request", "'tool_choice' must be none, auto, required or a named function.")
        return None

    def check_params(self, body: dict[str, Any], deployment: Deployment) -> Problem | None:
        """Parameters this provider refuses (Groq: n > 1, logprobs, ...)."""
        return None

    def effective_body(self, body: dict[str, Any], deployment: Deployment, prompt_tokens: int) -> dict[str, Any]:
        """The request as the provider acts on it, where it fills in or lowers values (Fireworks'
        `max_tokens`); the body as sent by default. The body as sent stays what was received."""
        return body

    def check_context(self, body: dict[str, Any], deployment: Deployment, prompt_tokens: int) -> Problem | None:
        window = deployment.context_window
        completion = requested_max_tokens(body) or 0
        if prompt_tokens + completion <= window:
            return None
        return Problem(
            "context_too_long",
            model=deployment.model_id,
            param="messages",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion,
            context_window=window,
        )

    def scripted_problem(
        self, behaviour: Behaviour, body: dict[str, Any], deployment: Deployment, prompt_tokens: int
    ) -> Problem:
        """The refusal a `Behaviour.error` asks for, with plausible numbers in its message."""
        model = deployment.model_id
        match behaviour.error:
            case "rate_limited":
                return self.rate_limited_problem(model, behaviour.retry_after_s)
            case "context_too_long":
                window = deployment.context_window
                completion = requested_max_tokens(body) or 1024
                return Problem(
                    "context_too_long",
                    model=model,
                    param="messages",
                    prompt_tokens=max(prompt_tokens, window - completion + 1),
                    completion_tokens=completion,
                    context_window=window,
                )
            case "auth":
                return Problem("auth_invalid", model=model)
            case "bad_request":
                return Problem("bad_request", "Invalid request (scripted by the fake's behaviour).", model=model)
            case "model_gone":
                return Problem("model_gone", model=model, param="model")
            case "overloaded":
                return Problem("overloaded", model=model, retry_after_s=behaviour.retry_after_s)
            case _:
                return Problem("server_error", model=model)

    def rate_limited_problem(self, model: str, retry_after_s: float | None) -> Problem:
        """A scripted 429; dialects with live counters fill in their numbers and headers."""
        return Problem("rate_limited", model=model, retry_after_s=retry_after_s)

    # ------------------------------------------------------------------ admission and accounting

    async def admit(self, exchange: Exchange) -> Problem | None:
        """Charge rate limits / take a concurrency slot; set `exchange.headers`."""
        return None

    def release(self, exchange: Exchange) -> None:
        """The request is over (answered, failed or abandoned)."""

    def on_started(self, exchange: Exchange) -> None:
        """Latency is over: the first token is about to go out."""

    def on_tokens(self, exchange: Exchange, count: int) -> None:
        """`count` more tokens went out."""
        exchange.generated += count

    # ------------------------------------------------------------------ rendering hooks

    @abstractmethod
    def render(self, problem: Problem) -> Reply: ...

    @abstractmethod
    def models_listing(self) -> Any: ...

    def completion_id(self) -> str:
        return f"chatcmpl-{random_hex(16)}"

    def tool_call_id(self) -> str:
        return f"call_{random_hex(12)}"

    def structured_content(self, body: dict[str, Any]) -> str | None:
        """Dialect-specific structured output (vLLM's `structured_outputs`)."""
        return None

    def wire_finish(self, finish: Finish) -> str:
        return self.natural_stop if finish == "stop" else finish

    def usage(self, exchange: Exchange) -> dict[str, Any]:
        completion = exchange.completion_tokens
        return {
            "prompt_tokens": exchange.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": exchange.prompt_tokens + completion,
        }

    def message(self, exchange: Exchange) -> dict[str, Any]:
        answer = exchange.answer
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in answer.tool_calls
            ]
        return message

    def choice(self, exchange: Exchange, index: int) -> dict[str, Any]:
        return {
            "index": index,
            "message": self.message(exchange),
            "logprobs": None,
            "finish_reason": self.wire_finish(exchange.answer.finish),
        }

    def completion_body(self, exchange: Exchange) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": exchange.id,
            "object": "chat.completion",
            "created": exchange.created,
            "model": exchange.model,
            "choices": [self.choice(exchange, i) for i in range(exchange.n)],
        }
        if not exchange.behaviour.omit_usage:
            body["usage"] = self.usage(exchange)
        return body

    def chunk(
        self, exchange: Exchange, index: int, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": exchange.id,
            "object": "chat.completion.chunk",
            "created": exchange.created,
            "model": exchange.model,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def first_chunk(self, exchange: Exchange, chunk: dict[str, Any]) -> None:
        """Decorate the stream's first chunk in place (Groq adds x_groq.id)."""

    def final_chunk(self, exchange: Exchange, index: int, last: bool) -> dict[str, Any]:
        chunk = self.chunk(exchange, index, {}, self.wire_finish(exchange.answer.finish))
        if last and self.usage_on_final_chunk and not exchange.behaviour.omit_usage:
            chunk["usage"] = self.usage(exchange)
        return chunk

    def usage_chunk(self, exchange: Exchange) -> dict[str, Any] | None:
        if not (self.honours_include_usage and exchange.include_usage) or exchange.behaviour.omit_usage:
            return None
        return {
            "id": exchange.id,
            "object": "chat.completion.chunk",
            "created": exchange.created,
            "model": exchange.model,
            "choices": [],
            "usage": self.usage(exchange),
        }

    @abstractmethod
    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        """The data payload a provider sends when generation fails mid-stream."""

    # ------------------------------------------------------------------ sending

    async def send_completion(self, exchange: Exchange) -> web.Response:
        behaviour = exchange.behaviour
        if behaviour.tokens_per_s:
            await asyncio.sleep(exchange.answer.completion_tokens / behaviour.tokens_per_s)
        self.on_tokens(exchange, exchange.completion_tokens)
        headers = {**exchange.headers, "Content-Type": "application/json"}
        if behaviour.error == "malformed_body":
            whole = orjson.dumps(self.completion_body(exchange))
            return web.Response(status=200, body=whole[: len(whole) // 2], headers=headers)
        return web.Response(status=200, body=orjson.dumps(self.completion_body(exchange)), headers=headers)

    def deltas(self, answer: Answer) -> list[dict[str, Any]]:
        """The stream deltas of one choice: content runs, or per tool call a header delta
        (index, id, type, name, empty arguments) followed by argument fragments."""
        if answer.tool_calls:
            out: list[dict[str, Any]] = []
            for i, call in enumerate(answer.tool_calls):
                head = {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
                out.append({"tool_calls": [head]})
                out.extend(
                    {"tool_calls": [{"index": i, "function": {"arguments": part}}]}
                    for part in chunk_string(call.arguments, JSON_DELTA_CHARS)
                    if part
                )
            return out
        return [{"content": piece} for piece in answer.pieces] or [{"content": ""}]

    def stream_events(self, exchange: Exchange) -> list[Event]:
        events: list[Event] = []
        for index in range(exchange.n):
            deltas = self.deltas(exchange.answer)
            if self.role_chunk:
                role = self.chunk(exchange, index, {"role": "assistant", "content": ""})
                if index == 0:
                    self.first_chunk(exchange, role)
                events.append(Event(sse(role), "role"))
            else:
                deltas[0] = {"role": "assistant", **deltas[0]}
            for position, delta in enumerate(deltas):
                chunk = self.chunk(exchange, index, delta)
                if index == 0 and position == 0 and not self.role_chunk:
                    self.first_chunk(exchange, chunk)
                events.append(Event(sse(chunk), "content"))
            events.append(Event(sse(self.final_chunk(exchange, index, index == exchange.n - 1)), "final"))
        usage = self.usage_chunk(exchange)
        if usage is not None:
            events.append(Event(sse(usage), "usage"))
        return events

    async def send_stream(self, request: web.Request, exchange: Exchange) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200, headers={**exchange.headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
        except ConnectionResetError:
            return response  # the client left before the answer began (a load generator stopping)
        events = self.stream_events(exchange)
        behaviour = exchange.behaviour
        faulty = (
            behaviour.disconnect_after_chunks is not None
            or behaviour.mid_stream_error_after is not None
            or behaviour.error == "malformed_body"
        )
        if not faulty and not behaviour.tokens_per_s:
            await response.write(b"".join(e.data for e in events) + DONE)
            self.on_tokens(exchange, exchange.completion_tokens)
            return response
        await self.write_paced(request, response, exchange, events)
        return response

    async def write_paced(
        self, request: web.Request, response: web.StreamResponse, exchange: Exchange, events: list[Event]
    ) -> None:
        """Write events one by one, pacing content at `tokens_per_s` and injecting faults."""
        behaviour = exchange.behaviour
        delay = 1 / behaviour.tokens_per_s if behaviour.tokens_per_s else 0.0
        sent = 0
        for event in events:
            if event.kind in ("content", "final"):
                if behaviour.disconnect_after_chunks is not None and sent >= behaviour.disconnect_after_chunks:
                    if request.transport is not None:
                        request.transport.abort()
                    return
                if behaviour.mid_stream_error_after is not None and sent >= behaviour.mid_stream_error_after:
                    await response.write(sse(self.stream_error(exchange)))
                    if self.done_after_stream_error:
                        await response.write(DONE)
                    return
                if behaviour.error == "malformed_body" and sent >= 1:
                    await response.write(b'data: {"id": "' + exchange.id.encode() + b'", "choices": [{"delta": \n\n')
                    await response.write(DONE)
                    return
            if event.kind == "content" and delay and sent:
                await asyncio.sleep(delay)
            await response.write(event.data)
            if event.kind == "content":
                sent += 1
                self.on_tokens(exchange, 1)
        await response.write(DONE)
        self.on_tokens(exchange, max(0, exchange.completion_tokens - exchange.generated))
