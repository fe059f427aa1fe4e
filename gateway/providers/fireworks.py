"""Fireworks AI: OpenAI dialect at `https://api.fireworks.ai/inference/v1`.

Model IDs are account paths (`accounts/fireworks/models/llama4-scout-instruct-basic`).
Quirks, as far as third-party code and docs show (nothing checked against the live
service): the output limit goes as `max_tokens`; `response_format` takes `json_object`
and `json_schema`; tools and `tool_choice` are accepted; `logprobs` is not relied on
(unsupported rather than sent and hoped for); `parallel_tool_calls` and `logit_bias` are
not sent (the gateway's validator enforces `parallel_tool_calls: false`);
`stream_options` is not sent, usage is read from the final chunk when it comes (else
the gateway estimates). Errors use the OpenAI envelope (sometimes with an extra
`"object": "error"` inside); a prompt over the window is a 400 whose message says
"maximum context length". Only Retry-After is read on 429s.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.providers.openai.adapter import Dialect, OpenAICompatProvider
from gateway.providers.openai.params import DROP, EMULATED, OPENAI_PARAMETERS, Rule, output_limit_as, unsupported
from gateway.providers.spec import ProviderSpec

__all__ = ["PARAMETERS", "FireworksProvider"]

PARAMETERS: Mapping[str, Rule] = {
    **OPENAI_PARAMETERS,
    "parallel_tool_calls": EMULATED,
    **output_limit_as("max_tokens"),
    "logprobs": unsupported("logprobs"),
    "top_logprobs": DROP,
    "logit_bias": DROP,
}


class FireworksProvider(OpenAICompatProvider):
    name = "fireworks"
    dialect = Dialect(params=PARAMETERS, stream_usage="final_chunk")


SPEC = ProviderSpec(
    name="fireworks",
    adapter="gateway.providers.fireworks:FireworksProvider",
    fake="gateway.fakes.fireworks:FireworksFake",
    base_url="https://api.fireworks.ai/inference/v1",
    key_env="FIREWORKS_API_KEY",
    prior_ttft_ms=400,
    prior_tokens_per_s=120,
)
