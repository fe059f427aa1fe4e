"""DeepInfra (docs/providers.md#4-deepinfra): OpenAI dialect at `{base}/v1/openai`.

Much of DeepInfra's surface is [UNVERIFIED]; this table only sends what its docs and
catalogs list: `max_tokens` (so `max_completion_tokens` is renamed), `response_format`
`json_object` (not `json_schema`), tools. `logprobs` and `json_schema` are unsupported
rather than sent and hoped for; `parallel_tool_calls` is not sent (the gateway's
validator enforces `false`), nor is `logit_bias`; `stream_options` is not
sent (usage is read from the final chunk when it is there, else the gateway estimates).
Errors come as `{"error": {...}}` or the older `{"detail": {"error": ...}}`; no
rate-limit headers are documented, only Retry-After is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.providers.openai.adapter import Dialect, OpenAICompatProvider
from gateway.providers.openai.params import DROP, EMULATED, PASS, Rule, clean_messages, output_limit_as, unsupported
from gateway.providers.spec import ProviderSpec

__all__ = ["PARAMETERS", "DeepInfraProvider"]


def _json_schema(value: Any, body: Mapping[str, Any]) -> bool:
    return isinstance(value, dict) and value.get("type") == "json_schema"


PARAMETERS: Mapping[str, Rule] = {
    "messages": clean_messages(drop_name=False),
    "tools": PASS,
    "tool_choice": PASS,
    "parallel_tool_calls": EMULATED,
    "response_format": unsupported("response_format json_schema", when=_json_schema, otherwise_pass=True),
    "temperature": PASS,
    "top_p": PASS,
    **output_limit_as("max_tokens"),
    "stop": PASS,
    "seed": PASS,
    "user": DROP,
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


class DeepInfraProvider(OpenAICompatProvider):
    name = "deepinfra"
    dialect = Dialect(params=PARAMETERS, stream_usage="final_chunk")


SPEC = ProviderSpec(
    name="deepinfra",
    adapter="gateway.providers.deepinfra:DeepInfraProvider",
    fake="gateway.fakes.deepinfra:DeepInfraFake",
    base_url="https://api.deepinfra.com/v1/openai",
    key_env="DEEPINFRA_API_KEY",
    prior_ttft_ms=550,
    prior_tokens_per_s=80,
)
