"""The tool loop: call the model, run the functions it asks for, send the results, repeat —
at most `max_rounds` times."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from corral._params import MessageLike, message_param
from corral.tools import (
    MaxToolRoundsExceeded,
    Tool,
    ToolArgumentsError,
    ToolLike,
    ToolRegistry,
    ToolRunResult,
)
from corral.tools import tool_result_content as _content
from corral.types.chat import ChatCompletion, ChatCompletionMessage, ToolCall


def start(
    messages: Iterable[MessageLike], tools: Sequence[ToolLike], max_rounds: int
) -> tuple[list[dict[str, Any]], ToolRegistry]:
    if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 0:
        raise ValueError(f"max_rounds must be an int >= 0, got {max_rounds!r}")
    registry = ToolRegistry(tools)
    if not registry:
        raise ValueError("run_tools needs at least one tool")
    missing = [t.name for t in registry if t.handler is None]
    if missing:
        raise ValueError(f"tools without a handler cannot run: {missing}; use corral.tool(Model, handler=fn)")
    return [message_param(m) for m in messages], registry


def _reply(completion: ChatCompletion) -> ChatCompletionMessage:
    if not completion.choices:
        return ChatCompletionMessage()
    return completion.choices[0].message


def _resolve(registry: ToolRegistry, call: ToolCall) -> tuple[Tool, Any] | str:
    """The tool and its parsed arguments, or the text to send back instead of running it."""
    found = registry.get(call.function.name)
    if found is None:
        return f"Error: there is no tool named {call.function.name!r}."
    if call.function.parse_error is not None:
        return f"Error: invalid arguments: {call.function.parse_error}. Fix the errors and try again."
    return found, call.function.parsed_arguments


def _tool_message(call: ToolCall, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "content": content}


def _failure(exc: Exception) -> str:
    if isinstance(exc, ToolArgumentsError):
        return f"Error: invalid arguments: {'; '.join(exc.errors)}. Fix the errors and try again."
    return f"Error: {type(exc).__name__}: {exc}"


def _run(found: Tool, parsed: Any) -> str:
    try:
        result = found.invoke(parsed)
    except Exception as exc:
        return _failure(exc)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if callable(close):
            close()  # never awaited: close it so Python does not warn
        raise TypeError(f"tool {found.name!r} is async; run it with AsyncCorral")
    return _content(result)


async def _arun(found: Tool, parsed: Any) -> str:
    try:
        result = found.invoke(parsed)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        return _failure(exc)
    return _content(result)


def run_calls(registry: ToolRegistry, message: ChatCompletionMessage) -> list[dict[str, Any]]:
    """Run one round's tool calls in order; the tool messages to send back."""
    out = []
    for call in message.tool_calls or ():
        resolved = _resolve(registry, call)
        out.append(_tool_message(call, resolved if isinstance(resolved, str) else _run(*resolved)))
    return out


async def arun_calls(registry: ToolRegistry, message: ChatCompletionMessage) -> list[dict[str, Any]]:
    """Run one round's tool calls concurrently; the tool messages, in the calls' order."""

    async def one(call: ToolCall) -> dict[str, Any]:
        resolved = _resolve(registry, call)
        return _tool_message(call, resolved if isinstance(resolved, str) else await _arun(*resolved))

    return list(await asyncio.gather(*(one(call) for call in message.tool_calls or ())))


def run_tools(
    create: Callable[..., ChatCompletion],
    *,
    model: str,
    messages: Iterable[MessageLike],
    tools: Sequence[ToolLike],
    max_rounds: int,
    params: dict[str, Any],
) -> ToolRunResult:
    transcript, registry = start(messages, tools, max_rounds)
    completions: list[ChatCompletion] = []
    while True:
        completion = create(model=model, messages=transcript, tools=list(registry), **params)
        completions.append(completion)
        reply = _reply(completion)
        transcript.append(reply.to_param())
        result = ToolRunResult(completion, transcript, completions)
        if not reply.tool_calls:
            return result
        if len(completions) > max_rounds:
            raise MaxToolRoundsExceeded(max_rounds, result)
        transcript.extend(run_calls(registry, reply))


async def arun_tools(
    create: Callable[..., Awaitable[ChatCompletion]],
    *,
    model: str,
    messages: Iterable[MessageLike],
    tools: Sequence[ToolLike],
    max_rounds: int,
    params: dict[str, Any],
) -> ToolRunResult:
    transcript, registry = start(messages, tools, max_rounds)
    completions: list[ChatCompletion] = []
    while True:
        completion = await create(model=model, messages=transcript, tools=list(registry), **params)
        completions.append(completion)
        reply = _reply(completion)
        transcript.append(reply.to_param())
        result = ToolRunResult(completion, transcript, completions)
        if not reply.tool_calls:
            return result
        if len(completions) > max_rounds:
            raise MaxToolRoundsExceeded(max_rounds, result)
        transcript.extend(await arun_calls(registry, reply))
