"""Turning `create(...)` keyword arguments into the request body, including the `corral` object."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypedDict, get_args, get_type_hints

from corral._base import NOT_GIVEN, RequestOptions, TimeoutLike
from corral.tools import ToolLike, ToolRegistry
from corral.types.chat import ChatCompletionMessage
from corral.types.corral import Prefer, ProviderPrefs, ToolValidationMode

MessageLike = Mapping[str, Any] | ChatCompletionMessage

#: OpenAI request members passed through as given when not None.
OPENAI_PARAMS = (
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "user",
    "n",
    "frequency_penalty",
    "presence_penalty",
    "logprobs",
    "top_logprobs",
    "metadata",
    "store",
    "service_tier",
)
_PROVIDER_KEYS = frozenset({"only", "ignore", "order"})


class RoutingParams(TypedDict, total=False):
    """Routing preferences, sent as the body's `corral` object."""

    prefer: Prefer
    #: A list of names means "only these"; a mapping may set `only`, `ignore` and `order`.
    providers: Sequence[str] | ProviderPrefs
    max_price_usd: float | Decimal
    max_ttft_ms: float
    allow_fallbacks: bool
    tags: Mapping[str, str]
    tool_validation: ToolValidationMode
    #: Answer from the gateway's response cache when the request may be (temperature 0 or a
    #: seed), keeping a fresh answer this many seconds: the body's `corral.cache.ttl_s`.
    cache_ttl_s: int


class RequestParams(RoutingParams, total=False):
    """The OpenAI request members and per-call options (everything but `tools`)."""

    tool_choice: str | Mapping[str, Any]
    parallel_tool_calls: bool
    response_format: Mapping[str, Any]
    temperature: float
    top_p: float
    max_tokens: int
    max_completion_tokens: int
    stop: str | Sequence[str]
    seed: int
    user: str
    n: int
    frequency_penalty: float
    presence_penalty: float
    logprobs: bool
    top_logprobs: int
    metadata: Mapping[str, str]
    store: bool
    service_tier: str
    stream_options: Mapping[str, Any]
    #: Merged into the body last (members the SDK does not know yet).
    extra_body: Mapping[str, Any]
    extra_headers: Mapping[str, str]
    timeout: TimeoutLike
    #: Defaults to a fresh key per call, reused across that call's retries.
    idempotency_key: str


class ChatParams(RequestParams, total=False):
    """Everything `chat.completions.create` accepts besides `model`, `messages` and `stream`."""

    tools: Sequence[ToolLike]


#: Every keyword a chat call takes (besides `model`, `messages` and `stream`), with its type.
CHAT_KEYWORDS: Mapping[str, Any] = get_type_hints(ChatParams)
REQUEST_KEYWORDS: Mapping[str, Any] = get_type_hints(RequestParams)
KEYWORDS = frozenset(CHAT_KEYWORDS)


def check_keywords(params: Mapping[str, Any], allowed: frozenset[str] = KEYWORDS) -> None:
    """Raise TypeError for a keyword no chat call takes, naming the nearest valid one, as
    Python (and openai-python) do, instead of sending a body without it."""
    for name in params:
        if name not in allowed:
            close = difflib.get_close_matches(name, sorted(allowed | {"model", "messages", "stream"}), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"create() got an unexpected keyword argument {name!r}{hint}")


@dataclass(frozen=True, slots=True)
class PreparedChat:
    body: dict[str, Any]
    tools: ToolRegistry
    options: RequestOptions


def message_param(message: MessageLike) -> dict[str, Any]:
    if isinstance(message, ChatCompletionMessage):
        return message.to_param()
    if not isinstance(message, Mapping):
        raise TypeError(
            f"messages must be mappings or ChatCompletionMessage objects, got {type(message).__name__}"
        )
    return dict(message)


def corral_object(params: RoutingParams) -> dict[str, Any]:
    """The body's `corral` object from the routing keyword arguments (empty when none given)."""
    out: dict[str, Any] = {}
    prefer = params.get("prefer")
    if prefer is not None:
        if prefer not in get_args(Prefer):
            raise ValueError(f"prefer must be one of {get_args(Prefer)}, got {prefer!r}")
        out["prefer"] = prefer
    providers = params.get("providers")
    if providers is not None:
        out["providers"] = _providers(providers)
    for name in ("max_price_usd", "max_ttft_ms"):
        value = params.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
            out[name] = float(value)
    allow = params.get("allow_fallbacks")
    if allow is not None:
        out["allow_fallbacks"] = bool(allow)
    tags = params.get("tags")
    if tags is not None:
        out["tags"] = _tags(tags)
    mode = params.get("tool_validation")
    if mode is not None:
        if mode not in get_args(ToolValidationMode):
            raise ValueError(f"tool_validation must be one of {get_args(ToolValidationMode)}, got {mode!r}")
        out["tool_validation"] = mode
    ttl = params.get("cache_ttl_s")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0:
            raise ValueError(f"cache_ttl_s must be a positive whole number of seconds, got {ttl!r}")
        out["cache"] = {"ttl_s": ttl}
    return out


def _providers(value: Sequence[str] | ProviderPrefs) -> dict[str, list[str]]:
    if isinstance(value, str):
        return {"only": [value]}
    if isinstance(value, Mapping):
        unknown = set(value) - _PROVIDER_KEYS
        if unknown:
            raise ValueError(f"providers accepts only {sorted(_PROVIDER_KEYS)}, got {sorted(unknown)}")
        return {key: _names(key, names) for key, names in value.items() if names is not None}
    return {"only": _names("providers", value)}


def _names(key: str, names: object) -> list[str]:
    if (
        isinstance(names, str)
        or not isinstance(names, Sequence)
        or not all(isinstance(n, str) for n in names)
    ):
        raise TypeError(f"providers[{key!r}] must be a list of provider names, got {names!r}")
    return list(names)


def _tags(tags: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(tags, Mapping):
        raise TypeError(f"tags must be a mapping of str to str, got {type(tags).__name__}")
    for key, value in tags.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise TypeError(f"tags must map non-empty str to str, got {key!r}: {value!r}")
    return dict(tags)


def prepare_chat(
    model: str,
    messages: Iterable[MessageLike],
    *,
    stream: bool,
    params: RequestParams,
    tools: Sequence[ToolLike] = (),
) -> PreparedChat:
    """The body, tool registry and request options for one chat call."""
    check_keywords(params)
    if not isinstance(model, str) or not model:
        raise ValueError("model must be a non-empty string, e.g. 'llama-4-scout'")
    body: dict[str, Any] = {"model": model, "messages": [message_param(m) for m in messages]}
    if not body["messages"]:
        raise ValueError("messages must not be empty")
    registry = ToolRegistry(tools)
    if registry:
        body["tools"] = registry.params()
    for name in OPENAI_PARAMS:
        value = params.get(name)
        if value is not None:
            body[name] = value
    if stream:
        body["stream"] = True
        body["stream_options"] = {**(params.get("stream_options") or {}), "include_usage": True}
    corral = corral_object(params)
    if corral:
        body["corral"] = corral
    body.update(params.get("extra_body") or {})
    options = RequestOptions(
        extra_headers=params.get("extra_headers"),
        timeout=params.get("timeout", NOT_GIVEN),
        idempotency_key=params.get("idempotency_key"),
    )
    return PreparedChat(body=body, tools=registry, options=options)
