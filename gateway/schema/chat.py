"""The OpenAI chat-completions request, validated once at the edge.

The validated pydantic model is used to *check* the body and to derive the
`ChatRequest` summary; the original dict (minus our `corral` object) is what
adapters translate, so nothing is serialised twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from gateway.schema.params import features

NonEmptyStr = Annotated[str, Field(min_length=1)]

#: Rough token cost of one image in a Llama 4 prompt, for routing estimates only.
IMAGE_TOKEN_ESTIMATE = 600
#: Characters per token for the prompt-size estimate used before any backend is asked.
CHARS_PER_TOKEN = 4


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImageURL(_Strict):
    url: NonEmptyStr
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ImagePart(_Strict):
    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class FunctionCall(_Loose):
    name: NonEmptyStr
    arguments: str


class ToolCall(_Loose):
    id: NonEmptyStr
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Loose):
    role: Literal["system", "developer"]
    content: str | list[TextPart]


class UserMessage(_Loose):
    role: Literal["user"]
    content: str | Annotated[list[ContentPart], Field(min_length=1)]


class AssistantMessage(_Loose):
    role: Literal["assistant"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(_Loose):
    role: Literal["tool"]
    tool_call_id: NonEmptyStr
    content: str | list[TextPart]


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


class FunctionDef(_Loose):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Strict):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Strict):
    name: NonEmptyStr


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class JSONSchemaFormat(_Loose):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Loose):
    include_usage: StrictBool | None = None


class ProviderPrefs(_Strict):
    only: list[NonEmptyStr] | None = None
    ignore: list[NonEmptyStr] | None = None
    order: list[NonEmptyStr] | None = None


class CachePrefs(_Strict):
    """`corral.cache`: answer this request from the response cache when it may be (see
    gateway.cache.decide), keeping a fresh answer for `ttl_s` seconds."""

    ttl_s: Annotated[StrictInt, Field(ge=1, le=2_592_000)]


class CorralPrefs(_Strict):
    """Per-request routing preferences (the OpenAI SDK's `extra_body={"corral": ...}`)."""

    prefer: Literal["cost", "latency", "balanced"] | None = None
    providers: ProviderPrefs | None = None
    max_price_usd: Annotated[float, Field(gt=0)] | None = None
    max_ttft_ms: Annotated[float, Field(gt=0)] | None = None
    allow_fallbacks: StrictBool | None = None
    tags: dict[NonEmptyStr, str] | None = None
    tool_validation: Literal["off", "report", "repair", "retry"] | None = None
    cache: CachePrefs | None = None


class ChatCompletionRequest(_Strict):
    model: NonEmptyStr
    messages: Annotated[list[Message], Field(min_length=1)]
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    response_format: ResponseFormat | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[StrictInt, Field(ge=1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: StrictInt | None = None
    user: str | None = None
    n: Annotated[StrictInt, Field(ge=1, le=1)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: Annotated[StrictInt, Field(ge=0, le=20)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    metadata: dict[str, str] | None = None
    store: StrictBool | None = None
    service_tier: str | None = None
    corral: CorralPrefs | None = None


@dataclass(slots=True)
class ChatRequest:
    """What the router, dispatch loop and adapters need to know about one request."""

    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    features: frozenset[str]
    prompt_tokens_estimate: int
    max_output_tokens: int | None
    prefs: CorralPrefs = field(default_factory=CorralPrefs)
    request_id: str = ""
    #: The compiled tool / response_format schemas (gateway.toolcalls.Contract), None without either.
    tool_contract: Any = None
    #: The client's `prompt_cache_key`: requests sharing it share a cache (the pool's replica affinity).
    cache_key: str | None = None
    #: Fields accepted and ignored (the parameter policy's IGNORED rows), for `x-corral-ignored-params`.
    ignored: tuple[str, ...] = ()
    #: The client sent legacy `functions`: the answer's call is also given as `message.function_call`.
    legacy_functions: bool = False


def features_of(body: Mapping[str, Any]) -> frozenset[str]:
    """Capabilities a deployment must have to serve this body faithfully (from the
    parameter policy's rows, `gateway.schema.params`)."""
    return features(body)


def estimate_prompt_tokens(body: dict[str, Any]) -> int:
    """Cheap prompt-size estimate (characters / 4, a flat cost per image)."""
    chars = 0
    images = 0
    for message in body.get("messages", ()):
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    chars += len(part.get("text", ""))
                else:
                    images += 1
        chars += _arguments_chars(message.get("tool_calls"))
    for tool in body.get("tools") or ():
        chars += len(str(tool))
    return chars // CHARS_PER_TOKEN + images * IMAGE_TOKEN_ESTIMATE + 4 * len(body.get("messages", ()))


def _arguments_chars(calls: Any) -> int:
    """Characters of tool-call arguments. Only an assistant message's `tool_calls` are
    validated; other roles may carry the field as an unchecked extra of any shape."""
    if not isinstance(calls, list):
        return 0
    total = 0
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str):
            total += len(arguments)
    return total
