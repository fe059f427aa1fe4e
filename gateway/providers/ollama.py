"""A local Ollama server (development only): OpenAI dialect at `http://localhost:11434/v1`.

Ollama ignores the API key (none is sent unless one is configured). Its OpenAI
compatibility accepts `max_tokens`, `temperature`, `top_p`, `seed`, `stop`,
`frequency_penalty`, `presence_penalty`, `response_format`, `tools`, `tool_choice` and
`stream_options.include_usage` (usage then comes on a final `choices: []` chunk). It
has no `n`, so `n > 1` is unsupported; `logprobs` is not relied on.

Context: Ollama runs models with a small window by default (4,096 tokens unless the
server sets `OLLAMA_CONTEXT_LENGTH` or the model's `num_ctx`) and the OpenAI endpoint
cannot change it; a longer prompt is cut silently, so the catalogue row says 4,096
and the router keeps longer prompts away (raise it with a catalogue override once the
server's window is larger). Errors use the OpenAI envelope; a missing model is a 404
"model ... not found, try pulling it first".
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.providers.openai.adapter import Dialect, OpenAICompatProvider
from gateway.providers.openai.params import DROP, EMULATED, OPENAI_PARAMETERS, Rule, output_limit_as, unsupported
from gateway.providers.spec import ProviderSpec

__all__ = ["PARAMETERS", "OllamaProvider"]

PARAMETERS: Mapping[str, Rule] = {
    **OPENAI_PARAMETERS,
    "parallel_tool_calls": EMULATED,
    **output_limit_as("max_tokens"),
    "user": DROP,
    "n": unsupported("n > 1", when=lambda v, _: isinstance(v, int) and v > 1),
    "logprobs": unsupported("logprobs"),
    "top_logprobs": DROP,
    "logit_bias": DROP,
}


class OllamaProvider(OpenAICompatProvider):
    name = "ollama"
    dialect = Dialect(params=PARAMETERS, stream_usage="stream_options")


SPEC = ProviderSpec(
    name="ollama",
    adapter="gateway.providers.ollama:OllamaProvider",
    fake="gateway.fakes.ollama:OllamaFake",
    key_env="OLLAMA_API_KEY",
    credentials="url",
    dev_only=True,
    demo=False,
    # A laptop or workstation: slow, and never a candidate unless configured explicitly.
    prior_ttft_ms=800,
    prior_tokens_per_s=25,
)
