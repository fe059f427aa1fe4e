"""A stand-in for the gateway at the HTTP level (an httpx.MockTransport handler), speaking the
contract the SDK is built against: chat (plain and SSE), route/explain, spend, models,
x-corral-* headers and OpenAI-shaped errors. Scripted responses are consumed first."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

import corral

Handler = Callable[[httpx.Request], httpx.Response]

HEADERS = {
    "x-corral-request-id": "req_123",
    "x-corral-provider": "groq",
    "x-corral-model": "meta-llama/llama-4-scout-17b-16e-instruct",
    "x-corral-attempts": "1",
    "x-corral-cost-usd": "0.000012345",
}


def chat_body(
    content: str | None = "Hello!",
    tool_calls: list[dict[str, Any]] | None = None,
    model: str = "llama-4-scout",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17},
    }


def tool_call(name: str, arguments: dict[str, Any] | str, call_id: str = "call_1") -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def error_response(
    status: int,
    code: str,
    message: str = "nope",
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    error = {"message": message, "type": type_, "code": code, "param": param, **extra}
    return httpx.Response(status, json={"error": error}, headers={**HEADERS, **(headers or {})})


def sse(
    events: Iterable[dict[str, Any] | str], *, done: bool = True, headers: dict[str, str] | None = None
) -> httpx.Response:
    frames = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    if done:
        frames.append("data: [DONE]\n\n")
    return httpx.Response(
        200,
        content="".join(frames).encode(),
        headers={"content-type": "text/event-stream", **HEADERS, **(headers or {})},
    )


def chunk(
    delta: dict[str, Any] | None = None,
    *,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
    choices: bool = True,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "llama-4-scout",
        "choices": [],
    }
    if choices:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    if usage is not None:
        body["usage"] = usage
    return body


def text_stream(text: str, *, pieces: int = 3) -> list[dict[str, Any]]:
    size = max(1, len(text) // pieces)
    parts = [text[i : i + size] for i in range(0, len(text), size)]
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": part}) for part in parts]
    events.append(chunk({}, finish="stop"))
    events.append(
        chunk(
            choices=False,
            usage={"prompt_tokens": 9, "completion_tokens": len(parts), "total_tokens": 9 + len(parts)},
        )
    )
    return events


@dataclass
class FakeGateway:
    """Use as `httpx.MockTransport(gateway)`. `tool_args` gives the arguments the fake model
    sends when a request offers tools and the last message is not a tool result."""

    reply: str = "Hello from the fake gateway."
    tool_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    script: deque[httpx.Response | Handler] = field(default_factory=deque)

    def push(self, *responses: httpx.Response | Handler) -> None:
        self.script.extend(responses)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.script:
            scripted = self.script.popleft()
            return scripted(request) if callable(scripted) else scripted
        path = request.url.path
        if path == "/v1/chat/completions":
            return self._chat(json.loads(request.content))
        if path == "/v1/route/explain":
            return httpx.Response(200, json=EXPLAIN, headers=HEADERS)
        if path == "/v1/spend":
            return httpx.Response(200, json=SPEND, headers=HEADERS)
        if path == "/v1/models":
            return httpx.Response(200, json=MODELS, headers=HEADERS)
        return error_response(404, "not_found", f"no route {path}")

    def _chat(self, body: dict[str, Any]) -> httpx.Response:
        calls = self._tool_calls(body)
        if body.get("stream"):
            if calls:
                return sse(tool_call_stream(calls), headers={"x-corral-tool-validation": "valid"})
            return sse(text_stream(self.reply))
        extra = {"x-corral-tool-validation": "valid"} if body.get("tools") else {}
        return httpx.Response(
            200, json=chat_body(None if calls else self.reply, calls or None), headers={**HEADERS, **extra}
        )

    def _tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        tools = body.get("tools") or []
        if not tools or body["messages"][-1].get("role") == "tool":
            return []
        name = tools[0]["function"]["name"]
        return [tool_call(name, self.tool_args.get(name, {}))]

    def sent_json(self, index: int = -1) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[index].content)
        return body

    def client(self, **kwargs: Any) -> corral.Corral:
        kwargs.setdefault("api_key", "sk-test")
        kwargs.setdefault("base_url", "http://gateway.test")
        kwargs.setdefault("sleep", lambda _seconds: None)
        return corral.Corral(http_client=httpx.Client(transport=httpx.MockTransport(self)), **kwargs)

    def async_client(self, **kwargs: Any) -> corral.AsyncCorral:
        async def no_sleep(_seconds: float) -> None:
            return None

        kwargs.setdefault("api_key", "sk-test")
        kwargs.setdefault("base_url", "http://gateway.test")
        kwargs.setdefault("sleep", no_sleep)
        return corral.AsyncCorral(
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(self)), **kwargs
        )


def tool_call_stream(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool calls split the way OpenAI-dialect backends stream them: id and name first, then
    the arguments in pieces."""
    events = [chunk({"role": "assistant", "content": None})]
    for index, call in enumerate(calls):
        args = call["function"]["arguments"]
        head = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        events.append(chunk({"tool_calls": [head]}))
        for start in range(0, len(args), 4):
            piece = {"index": index, "function": {"arguments": args[start : start + 4]}}
            events.append(chunk({"tool_calls": [piece]}))
    events.append(chunk({}, finish="tool_calls"))
    events.append(
        chunk(choices=False, usage={"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28})
    )
    return events


EXPLAIN = {
    "model": "llama-4-scout",
    "rule": "default",
    "rejected": None,
    "objective": {"prefer": "cost", "max_ttft_ms": None},
    "plan": [
        {
            "rank": 1,
            "provider": "vllm",
            "model_id": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
            "expected_cost_usd": "0.00001",
            "reason": "cheapest",
            "breaker": "closed",
        },
        {
            "rank": 2,
            "provider": "groq",
            "model_id": "meta-llama/llama-4-scout-17b-16e-instruct",
            "expected_cost_usd": "0.00003",
            "reason": "fallback",
            "score": 0.7,
        },
    ],
    "dropped": [{"provider": "bedrock", "model_id": "meta.llama4-scout", "reason": "ignored by request"}],
}

SPEND = {
    "rows": [
        {
            "provider": "groq",
            "day": "2025-06-01",
            "requests": 10,
            "prompt_tokens": 1000,
            "completion_tokens": 200,
            "cost_usd": "0.000310",
        },
        {
            "provider": "vllm",
            "day": "2025-06-01",
            "requests": 5,
            "prompt_tokens": 500,
            "completion_tokens": 100,
            "cost_usd": "0.000100",
        },
    ],
    "total_cost_usd": "0.000410",
}

MODELS = {
    "object": "list",
    "data": [
        {"id": "llama-4-scout", "object": "model", "owned_by": "meta", "context_length": 131072},
        {"id": "llama-4-maverick", "object": "model", "owned_by": "meta"},
    ],
}
