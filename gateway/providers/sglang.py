"""A self-hosted SGLang server: OpenAI dialect on `{base}/v1`, like vLLM.

SGLang serves `/v1/chat/completions`, `/v1/models` and `/health`; `--api-key` (sent as
a Bearer key) is optional. It accepts the OpenAI parameters vLLM does, both output
limits included; `metadata`, `store` and `service_tier` are dropped. Streams ask for
`stream_options.include_usage` (usage comes on a final `choices: []` chunk). Errors
come flat (`{"object": "error", "message", "type", "param", "code": <status>}`); a
prompt over the window is a 400 saying the input "is longer than the model's context
length" (read in `error_map`). No rate-limit headers.

One base URL: a single server, or SGLang's own router in front of several workers
(the router balances them; Corral's vLLM pool machinery is not used here).
"""

from __future__ import annotations

from gateway.providers.openai.adapter import Dialect, OpenAICompatProvider
from gateway.providers.openai.params import OPENAI_PARAMETERS
from gateway.providers.spec import ProviderSpec

__all__ = ["SglangProvider"]


class SglangProvider(OpenAICompatProvider):
    name = "sglang"
    dialect = Dialect(params=OPENAI_PARAMETERS, stream_usage="stream_options")


SPEC = ProviderSpec(
    name="sglang",
    adapter="gateway.providers.sglang:SglangProvider",
    fake="gateway.fakes.sglang:SglangFake",
    key_env="SGLANG_API_KEY",
    credentials="url",
    demo=False,
    prior_ttft_ms=300,
    prior_tokens_per_s=95,
)
