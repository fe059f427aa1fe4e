"""The parameter policy: what Corral does with every OpenAI chat-completions field.

One row per field of OpenAI's `CompletionCreateParams` (a contract test keeps the two
in step), each with one `Handling`:

- `FORWARD`: sent to the backend where its deployment supports it. Per-provider
  wire spellings live in the providers' own tables (`providers/openai/params.py`,
  `providers/bedrock/mapping.py`); a field a deployment cannot honour either makes it
  ineligible (a capability the router checks) or, for a field marked `warn_if_dropped`,
  is left out and named in the `x-corral-ignored-params` response header.
- `EMULATED`: the gateway delivers the behaviour itself on every backend
  (`parallel_tool_calls: false`: the tool-call validator holds the answer to one call
  and re-asks when a model makes several, so no backend needs to support the flag).
- `MAPPED`: turned into another field at the edge (`functions` -> `tools`,
  `function_call` -> `tool_choice`, `prompt_cache_key` -> the vLLM pool's
  prefix-affinity key, `safety_identifier` -> `user`).
- `IGNORED`: accepted, never forwarded, and named in `x-corral-ignored-params`
  (`reasoning_effort`: Llama 4 has no reasoning mode).
- `HINT`: accepted and left out where a backend does not take it, silently: it changes
  no answer (`user`, `metadata`, `store`, `service_tier`).
- `REFUSED_WHEN`: accepted at its default; a value that asks for something no Llama 4
  deployment can produce (`modalities: ["audio"]`) gets a 400 `unsupported_parameter`.

Eligibility for the routing plan comes from the same rows: `features(body)` gives the
capabilities a deployment must list to serve the body (`schema.chat.features_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["IGNORED_HEADER", "PARAMETERS", "WARN_IF_DROPPED", "Handling", "Param", "features", "ignored_in", "refusal"]

Body = Mapping[str, Any]
#: Response header naming accepted fields that had no effect on this answer.
IGNORED_HEADER = "x-corral-ignored-params"


class Handling(Enum):
    FORWARD = "forwarded"
    EMULATED = "emulated"
    MAPPED = "mapped"
    IGNORED = "ignored"
    HINT = "hint"
    REFUSED_WHEN = "refused when"


@dataclass(frozen=True, slots=True)
class Param:
    handling: Handling
    note: str
    #: Capabilities a deployment needs for this value (FORWARD only).
    needs: Callable[[Any, Body], frozenset[str]] | None = None
    #: FORWARD: a deployment that drops it says so in `x-corral-ignored-params`.
    warn_if_dropped: bool = False
    #: REFUSED_WHEN: why this value cannot be served (None: it can).
    refuse: Callable[[Any], str | None] | None = None


_NONE: frozenset[str] = frozenset()


def _tools(value: Any, body: Body) -> frozenset[str]:
    choice = body.get("tool_choice")
    if not value or choice == "none":
        return _NONE
    found = {"tools"}
    if body.get("stream"):
        found.add("stream_tools")
    if choice is not None and choice != "auto":
        found.add("tool_choice")
    return frozenset(found)


def _stream(value: Any, body: Body) -> frozenset[str]:
    return frozenset({"stream"}) if value is True else _NONE


def _response_format(value: Any, body: Body) -> frozenset[str]:
    kind = value.get("type") if isinstance(value, Mapping) else None
    return frozenset({kind}) if kind in ("json_object", "json_schema") else _NONE


def _logprobs(value: Any, body: Body) -> frozenset[str]:
    return frozenset({"logprobs"}) if value is True else _NONE


def _images(value: Any, body: Body) -> frozenset[str]:
    for message in value if isinstance(value, list) else ():
        content = message.get("content") if isinstance(message, Mapping) and message.get("role") == "user" else None
        if isinstance(content, list) and any(isinstance(p, Mapping) and p.get("type") == "image_url" for p in content):
            return frozenset({"images"})
    return _NONE


def _audio_out(value: Any) -> str | None:
    if isinstance(value, list) and any(m != "text" for m in value):
        return "modalities other than 'text' (Llama 4 writes text only)"
    return None


def _set(what: str) -> Callable[[Any], str | None]:
    return lambda value: None if value is None else what


F, E, M, IG, H, R = (
    Handling.FORWARD,
    Handling.EMULATED,
    Handling.MAPPED,
    Handling.IGNORED,
    Handling.HINT,
    Handling.REFUSED_WHEN,
)

PARAMETERS: Mapping[str, Param] = {
    "model": Param(F, "the logical model or an alias; each deployment's own model ID is sent"),
    "messages": Param(F, "developer -> system where a template lacks it", needs=_images),
    "stream": Param(F, "server-sent events, `data: [DONE]` at the end", needs=_stream),
    "stream_options": Param(F, "include_usage: a final usage chunk, whatever the backend does"),
    "tools": Param(F, "function tools, checked by the tool-call validator", needs=_tools),
    "tool_choice": Param(F, "auto, none, required or a named function"),
    "parallel_tool_calls": Param(E, "false: at most one call per answer, enforced by the tool-call validator"),
    "response_format": Param(F, "json_object / json_schema where the deployment has it", needs=_response_format),
    "temperature": Param(F, "0-2 (Bedrock: above 1 makes it ineligible)"),
    "top_p": Param(F, ""),
    "max_tokens": Param(F, "sent as each backend's output limit"),
    "max_completion_tokens": Param(F, "wins over max_tokens when both are set"),
    "stop": Param(F, "up to 4 sequences"),
    "seed": Param(F, "where a backend has none (Bedrock), named in x-corral-ignored-params", warn_if_dropped=True),
    "n": Param(F, "1 only: more choices are a 400"),
    "frequency_penalty": Param(F, ""),
    "presence_penalty": Param(F, ""),
    "logprobs": Param(F, "only deployments listing `logprobs`", needs=_logprobs),
    "top_logprobs": Param(F, "with logprobs"),
    "logit_bias": Param(F, "the vLLM pool takes it; elsewhere named in x-corral-ignored-params", warn_if_dropped=True),
    "user": Param(H, "an end-user id, sent where the backend takes it"),
    "metadata": Param(H, "OpenAI stored-completion metadata, not sent"),
    "store": Param(H, "OpenAI stored completions, not sent"),
    "service_tier": Param(H, "OpenAI tiers, not sent"),
    "functions": Param(M, "legacy: becomes `tools`; the answer's call is also given as `function_call`"),
    "function_call": Param(M, "legacy: becomes `tool_choice`"),
    "prompt_cache_key": Param(M, "the vLLM pool's prefix-affinity key (same key, same replica)"),
    "safety_identifier": Param(M, "becomes `user` when `user` is not set"),
    "reasoning_effort": Param(IG, "Llama 4 has no reasoning mode"),
    "verbosity": Param(IG, "no Llama 4 equivalent"),
    "prediction": Param(IG, "predicted outputs are a latency hint; the answer is the same without"),
    "prompt_cache_retention": Param(IG, "cache lifetime is each backend's own"),
    "prompt_cache_options": Param(IG, "cache lifetime is each backend's own"),
    "web_search_options": Param(IG, "no built-in web search"),
    "moderation": Param(IG, "no OpenAI moderation on these backends"),
    "modalities": Param(R, '["text"] accepted; audio output refused', refuse=_audio_out),
    "audio": Param(R, "audio output refused", refuse=_set("audio output (Llama 4 writes text only)")),
}


#: Fields a deployment may leave out only by saying so in `x-corral-ignored-params`.
WARN_IF_DROPPED = frozenset(k for k, p in PARAMETERS.items() if p.warn_if_dropped)


_IGNORED = frozenset(k for k, p in PARAMETERS.items() if p.handling is Handling.IGNORED)
#: The rows with a check, by field: a request's fields are matched against these key sets
#: at once (most requests carry none of the refusable or ignored fields).
_NEEDS = {k: p.needs for k, p in PARAMETERS.items() if p.needs is not None}
_REFUSE = {k: p.refuse for k, p in PARAMETERS.items() if p.refuse is not None}


def features(body: Body) -> frozenset[str]:
    """Capabilities a deployment must have to serve `body` faithfully."""
    found: set[str] = set()
    for key in body.keys() & _NEEDS.keys():
        found |= _NEEDS[key](body[key], body)
    return frozenset(found)


def refusal(body: Body) -> tuple[str, str] | None:
    """(field, reason) for the first value (in the body's order) no deployment can serve, or None."""
    if body.keys().isdisjoint(_REFUSE):
        return None
    for key, value in body.items():
        refuse = _REFUSE.get(key)
        if refuse is not None and (reason := refuse(value)) is not None:
            return key, reason
    return None


def ignored_in(body: Body) -> tuple[str, ...]:
    """Fields of `body` that are accepted and ignored whichever deployment serves it (in the body's order)."""
    if body.keys().isdisjoint(_IGNORED):
        return ()
    return tuple(key for key in body if key in _IGNORED)
