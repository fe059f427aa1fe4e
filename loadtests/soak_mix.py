"""The soak's traffic mix: which requests it sends and what each one should get back.

Pure: a seeded `random.Random` in, request specs out. Each spec carries its class, the
JSON body, whether it streams, and what a correct gateway answers (an expected failure
for the deliberately broken requests). Requests steer their first choice of backend
with `corral.providers.order`, so every fake sees traffic while fallback stays on.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

#: Request classes and their share of the traffic.
MIX: dict[str, float] = {
    "short_chat": 0.40,
    "long_prompt": 0.10,
    "stream": 0.25,
    "tool_call": 0.14,
    "invalid_tool_args": 0.05,
    "stubborn_tool_args": 0.02,
    "bad_request": 0.04,
}
#: The only class whose requests are meant to fail (unknown model, or no messages).
FAILING_CLASS = "bad_request"
#: The error a stubborn model's requests may end in once every re-ask and fallback is spent.
STUBBORN_FAILURE = "tool_call_validation_failed"
#: First-choice backend per request, weighted roughly like a mixed fleet.
PROVIDER_WEIGHTS: dict[str, float] = {"vllm": 0.30, "groq": 0.25, "deepinfra": 0.20, "together": 0.15, "bedrock": 0.10}
MODELS = ("llama-4-scout", "llama-4-maverick")
#: About 4,000 tokens (Corral estimates four characters per token).
LONG_PROMPT_CHARS = 16_000

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "minLength": 1},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit"],
            "additionalProperties": False,
        },
    },
}
_VOCABULARY = (
    "llama alpaca herd pasture fleece valley andes shearing corral gate fence trail wool "
    "camelid guard morning river stone market weaver loom dye thread pattern harvest"
)
_WORDS = _VOCABULARY.split(" ")


@dataclass(frozen=True, slots=True)
class RequestSpec:
    kind: str
    body: dict[str, Any]
    stream: bool
    #: False only for the deliberately broken requests: a 4xx is the right answer.
    should_succeed: bool
    #: An error code that is a correct answer too (a model that never fixes its arguments).
    tolerated: str | None = None


def pick_kind(rng: random.Random) -> str:
    return rng.choices(list(MIX), weights=list(MIX.values()))[0]


def _prefs(rng: random.Random) -> dict[str, Any]:
    first = rng.choices(list(PROVIDER_WEIGHTS), weights=list(PROVIDER_WEIGHTS.values()))[0]
    return {"providers": {"order": [first]}, "tags": {"team": "soak"}}


def _prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def _chat(rng: random.Random, text: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": rng.choice(MODELS),
        "messages": [{"role": "user", "content": text}],
        "max_tokens": max_tokens,
        "corral": _prefs(rng),
        **extra,
    }


def build(kind: str, rng: random.Random) -> RequestSpec:
    """One request of class `kind`."""
    if kind == "short_chat":
        return RequestSpec(kind, _chat(rng, "Say hello to the herd in one line.", 32), False, True)
    if kind == "long_prompt":
        text = "Summarise this field log in two sentences:\n" + _prose(rng, LONG_PROMPT_CHARS)
        return RequestSpec(kind, _chat(rng, text, 64), False, True)
    if kind == "stream":
        body = _chat(rng, "Tell a short story about a llama.", 64, stream=True)
        body["stream_options"] = {"include_usage": True}
        return RequestSpec(kind, body, True, True)
    if kind in {"tool_call", "invalid_tool_args", "stubborn_tool_args"}:
        return _tool_request(kind, rng)
    if kind == FAILING_CLASS:
        if rng.random() < 0.5:
            return RequestSpec(kind, _chat(rng, "hello", 16) | {"model": "llama-9-nonexistent"}, False, False)
        return RequestSpec(kind, {"model": "llama-4-scout", "messages": []}, False, False)
    raise ValueError(f"unknown request class {kind!r}")


def _tool_request(kind: str, rng: random.Random) -> RequestSpec:
    """Tool calls with a schema. The fake obeys a directive in the last user message:
    `malformed` arguments are not JSON, so the re-ask quotes them in a new user turn and
    the model (the fake, now without the directive) answers validly. `schema_invalid`
    arguments are JSON that fails the schema: the re-ask replays them as tool calls, so the
    directive stays the last user turn and a hosted fake keeps answering wrongly; only the
    vLLM pool's constrained re-ask (or Bedrock, whose tool results are user turns) fixes
    it. Those requests may end in 502 after the whole re-ask and fallback budget."""
    text = "What is the weather in Cusco?"
    tolerated = None
    if kind == "invalid_tool_args":
        text = '[[fake: {"tool_args": "malformed"}]] ' + text
    elif kind == "stubborn_tool_args":
        text = '[[fake: {"tool_args": "schema_invalid"}]] ' + text
        tolerated = STUBBORN_FAILURE
    body = _chat(rng, text, 64, tools=[WEATHER_TOOL], tool_choice="required")
    return RequestSpec(kind, body, False, True, tolerated)


def failing_share() -> float:
    """The share of requests whose answer may be an error."""
    return MIX[FAILING_CLASS] + MIX["stubborn_tool_args"]
