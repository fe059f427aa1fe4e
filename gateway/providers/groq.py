"""Groq (docs/providers.md#2-groq): OpenAI dialect at `{base}/openai/v1`.

Quirks: `max_completion_tokens` preferred over `max_tokens`; no `logprobs`,
`top_logprobs`, `logit_bias` or `messages[].name` (400); `metadata` / `store` not
supported; JSON mode together with tools rejected [3P]. Streams carry usage unasked in
`x_groq.usage` on the final chunk, so `stream_options` is never sent (older Groq
rejected it with a 400). `x_groq.error` in a chunk means the stream stopped early.
498 is Groq's "flex capacity exceeded" -> OVERLOADED.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.providers.openai.adapter import Dialect, OpenAICompatProvider
from gateway.providers.openai.params import DROP, PASS, Rule, clean_messages, output_limit_as, unsupported
from gateway.providers.ratelimits import GROQ_HEADERS
from gateway.providers.spec import ProviderSpec

__all__ = ["PARAMETERS", "GroqProvider"]


def _json_mode_with_tools(value: Any, body: Mapping[str, Any]) -> bool:
    kind = value.get("type") if isinstance(value, dict) else None
    return kind in ("json_object", "json_schema") and bool(body.get("tools")) and body.get("tool_choice") != "none"


PARAMETERS: Mapping[str, Rule] = {
    "messages": clean_messages(drop_name=True),
    "tools": PASS,
    "tool_choice": PASS,
    "parallel_tool_calls": PASS,
    "response_format": unsupported("JSON mode combined with tools", when=_json_mode_with_tools, otherwise_pass=True),
    "temperature": PASS,
    "top_p": PASS,
    **output_limit_as("max_completion_tokens"),
    "stop": PASS,
    "seed": PASS,
    "user": PASS,
    "n": PASS,
    "frequency_penalty": PASS,
    "presence_penalty": PASS,
    "logprobs": unsupported("logprobs"),
    "top_logprobs": DROP,
    "logit_bias": DROP,
    "metadata": DROP,
    "store": DROP,
    "service_tier": DROP,
    "corral": DROP,
}


class GroqProvider(OpenAICompatProvider):
    name = "groq"
    dialect = Dialect(
        params=PARAMETERS,
        ratelimit_headers=GROQ_HEADERS,
        status_kinds={498: ErrorKind.OVERLOADED},
        stream_usage="final_chunk",
    )

    def completion_usage(self, raw: dict[str, Any]) -> Any:
        return raw.get("usage") or _x_groq(raw).get("usage")

    def completion_timing(self, raw: dict[str, Any]) -> tuple[float, float] | None:
        """Groq's usage carries `queue_time`, `prompt_time` and `completion_time` (seconds)."""
        usage = raw.get("usage")
        if not isinstance(usage, dict):
            return None
        queue, prompt, completion = (usage.get(k) for k in ("queue_time", "prompt_time", "completion_time"))
        if not (_number(queue) and _number(prompt) and _number(completion)):
            return None
        return float(queue) + float(prompt), float(completion)

    def chunk_usage(self, chunk: dict[str, Any]) -> Any:
        return chunk.get("usage") or _x_groq(chunk).get("usage")

    def chunk_error(self, chunk: dict[str, Any]) -> UpstreamError | None:
        error = _x_groq(chunk).get("error")
        return self.payload_error({"error": error}) if error else None


def _number(value: Any) -> TypeGuard[float | int]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _x_groq(raw: dict[str, Any]) -> dict[str, Any]:
    extra = raw.get("x_groq")
    return extra if isinstance(extra, dict) else {}


SPEC = ProviderSpec(
    name="groq",
    adapter="gateway.providers.groq:GroqProvider",
    fake="gateway.fakes.groq:GroqFake",
    base_url="https://api.groq.com/openai/v1",
    key_env="GROQ_API_KEY",
    prior_ttft_ms=200,
    prior_tokens_per_s=450,
)
