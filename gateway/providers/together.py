"""Together AI (docs/providers.md#3-together-ai): OpenAI dialect at `{base}/v1`.

Quirks: no `max_completion_tokens` (sent as `max_tokens`); `logprobs` is an integer
top-k, so OpenAI's `logprobs: true` + `top_logprobs: k` becomes `logprobs: max(k, 1)`
and the answer's `{tokens, token_logprobs, top_logprobs}` (or a bare float per
streamed token) is turned back into OpenAI's `{"content": [...]}`; finish_reason `eos`
means `stop`; a context overflow is a 400 ("is longer than the model's context length", or
earlier "`max_new_tokens` must be <= N") or, by Together's error-code page, a 403: all are
read as context too long; usage rides
on the final stream chunk unasked. `stream_options`, `parallel_tool_calls` and `user`
are absent from both SDK schemas [UNVERIFIED]: they are not sent (the gateway's
validator enforces `parallel_tool_calls: false`); nor is `logit_bias`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.providers.errors import ErrorKind
from gateway.providers.openai.adapter import Dialect, OpenAICompatProvider
from gateway.providers.openai.normalise import Shape
from gateway.providers.openai.params import (
    DROP,
    EMULATED,
    PASS,
    Rule,
    clean_messages,
    output_limit_as,
    translate,
)
from gateway.providers.ratelimits import TOGETHER_HEADERS
from gateway.providers.spec import ProviderSpec

__all__ = ["PARAMETERS", "TogetherProvider", "together_logprobs"]


def _logprobs(value: Any, body: Mapping[str, Any]) -> Mapping[str, Any]:
    if value is not True:
        return {}
    return {"logprobs": max(int(body.get("top_logprobs") or 0), 1)}


PARAMETERS: Mapping[str, Rule] = {
    "messages": clean_messages(drop_name=False),
    "tools": PASS,
    "tool_choice": PASS,
    "parallel_tool_calls": EMULATED,
    "response_format": PASS,
    "temperature": PASS,
    "top_p": PASS,
    **output_limit_as("max_tokens"),
    "stop": PASS,
    "seed": PASS,
    "user": DROP,
    "n": PASS,
    "frequency_penalty": PASS,
    "presence_penalty": PASS,
    "logprobs": translate(_logprobs),
    "top_logprobs": DROP,
    "logit_bias": DROP,
    "metadata": DROP,
    "store": DROP,
    "service_tier": DROP,
    "corral": DROP,
}


def _entry(token: Any, logprob: Any, top: Any) -> dict[str, Any]:
    text = token if isinstance(token, str) else ""
    alternatives = top.items() if isinstance(top, dict) else ()
    return {
        "token": text,
        "logprob": logprob if isinstance(logprob, int | float) else 0.0,
        "bytes": list(text.encode()),
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(str(t).encode())} for t, lp in alternatives],
    }


def together_logprobs(value: Any, choice: Mapping[str, Any]) -> Any:
    """Together's logprobs (a float per streamed token, or token lists) -> OpenAI's object."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        delta = choice.get("delta")
        token = delta.get("content") if isinstance(delta, dict) else None
        return {"content": [_entry(token, value, None)]}
    if not isinstance(value, dict):
        return None
    if "content" in value:
        return value
    tokens = value.get("tokens") or []
    logprobs = value.get("token_logprobs") or []
    tops = value.get("top_logprobs") or []
    return {
        "content": [
            _entry(token, logprobs[i] if i < len(logprobs) else None, tops[i] if i < len(tops) else None)
            for i, token in enumerate(tokens)
        ]
    }


class TogetherProvider(OpenAICompatProvider):
    name = "together"
    dialect = Dialect(
        params=PARAMETERS,
        shape=Shape(logprobs=together_logprobs),
        ratelimit_headers=TOGETHER_HEADERS,
        status_kinds={403: ErrorKind.CONTEXT_TOO_LONG},
        stream_usage="final_chunk",
        retry_hint_header="x-ratelimit-reset",
    )


SPEC = ProviderSpec(
    name="together",
    adapter="gateway.providers.together:TogetherProvider",
    fake="gateway.fakes.together:TogetherFake",
    base_url="https://api.together.xyz/v1",
    key_env="TOGETHER_API_KEY",
    prior_ttft_ms=450,
    prior_tokens_per_s=110,
)
