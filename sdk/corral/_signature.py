"""Full signatures and parameter docs for the `**params: Unpack[...]` methods, so `help()` and
`inspect.signature` list every keyword (type checkers and IDEs read the TypedDict itself)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["PARAMETER_DOCS", "documented"]

F = TypeVar("F", bound=Callable[..., Any])

#: One line per keyword a chat call takes; a test keeps it complete.
PARAMETER_DOCS: Mapping[str, str] = {
    "model": "the logical model (llama-4-scout, llama-4-maverick) or an alias",
    "messages": "the conversation: mappings in OpenAI's shape or ChatCompletionMessage objects",
    "stream": "True returns a Stream of chunks (usage and cost arrive with the last one)",
    "tools": "functions, pydantic models, corral.Tool objects or OpenAI tool mappings",
    "tool_choice": '"auto", "none", "required" or {"type": "function", "function": {"name": ...}}',
    "parallel_tool_calls": "False: at most one tool call per answer (enforced by the gateway)",
    "response_format": '{"type": "json_object"} or {"type": "json_schema", "json_schema": {...}}',
    "temperature": "sampling temperature, 0-2",
    "top_p": "nucleus sampling, 0-1",
    "max_tokens": "most tokens to generate",
    "max_completion_tokens": "most tokens to generate (wins over max_tokens)",
    "stop": "up to 4 stop sequences",
    "seed": "sampling seed, where the backend has one",
    "user": "an end-user id, a hint",
    "n": "choices to return (1)",
    "frequency_penalty": "-2 to 2",
    "presence_penalty": "-2 to 2",
    "logprobs": "return token log-probabilities (routes to deployments that have them)",
    "top_logprobs": "alternatives per token with logprobs, 0-20",
    "metadata": "OpenAI stored-completion metadata (accepted, not forwarded)",
    "store": "OpenAI stored completions (accepted, not forwarded)",
    "service_tier": "OpenAI service tier (accepted, not forwarded)",
    "stream_options": "stream options; include_usage is always set by the SDK",
    "prefer": '"cost", "latency" or "balanced": what the router optimises',
    "providers": 'a list of providers to use only, or {"only", "ignore", "order"}',
    "max_price_usd": "refuse routes expected to cost more than this",
    "max_ttft_ms": "skip deployments expected to start answering later than this",
    "allow_fallbacks": "False: try only the first deployment of the plan",
    "tags": "labels for the spend report (team, feature, ...)",
    "tool_validation": '"off", "report", "repair" or "retry" (may only lower the policy\'s mode)',
    "cache_ttl_s": "seconds to keep the answer in the gateway's response cache (temperature 0 or a seed)",
    "extra_body": "merged into the request body last (fields the SDK does not know yet)",
    "extra_headers": "extra HTTP headers for this call",
    "timeout": "seconds or an httpx.Timeout for this call",
    "idempotency_key": "reused across this call's retries (a fresh one per call by default)",
}


def documented(keywords: Mapping[str, Any]) -> Callable[[F], F]:
    """Give `fn` (whose signature ends in `**params`) a signature with every keyword in
    `keywords` (a TypedDict's annotations) and an Args section from PARAMETER_DOCS."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)
        fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        named = {p.name for p in fixed}
        extra = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
            for name, annotation in keywords.items()
            if name not in named
        ]
        fn.__signature__ = signature.replace(parameters=[*fixed, *extra])  # type: ignore[attr-defined]
        lines = [
            f"    {p.name}: {PARAMETER_DOCS[p.name]}" for p in [*fixed, *extra] if p.name in PARAMETER_DOCS
        ]
        fn.__doc__ = f"{inspect.cleandoc(fn.__doc__ or '')}\n\nArgs:\n" + "\n".join(lines)
        return fn

    return decorate
