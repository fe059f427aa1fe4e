"""Legacy OpenAI completions request -> chat-completions body (pure).

`POST /v1/completions` is served over the chat path: the prompt becomes one user message,
so the deployment's chat template applies (Llama 4 is served as a chat model everywhere;
the answer is a reply to the prompt, not a raw continuation of its text). Everything after
that — the parameter policy, routing, metering, budgets, policies — is the chat path's.

What the legacy API has and the chat path cannot do truthfully is refused with a 400
naming the parameter: token-array prompts (token ids belong to one tokenizer, and the chat
path takes text), several prompts or `n`/`best_of` above 1 (as `n` above 1 on chat),
`logprobs` (the legacy per-token format is not produced), `suffix` (no insertion mode).
`echo` is supported: the prompt is put before the answer's text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import Code, GatewayError, bad_request

__all__ = ["DEFAULT_MAX_TOKENS", "Completion", "to_chat_body"]

#: OpenAI's documented default for the legacy endpoint's `max_tokens`.
DEFAULT_MAX_TOKENS = 16
#: Request fields passed to the chat body as they are (the parameter policy decides them).
_PASSED = (
    "model",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "user",
    "stream_options",
    "corral",
)
_KNOWN = frozenset({*_PASSED, "prompt", "max_tokens", "stream", "n", "best_of", "echo", "logprobs", "suffix"})


@dataclass(frozen=True, slots=True)
class Completion:
    """What the answer needs from the request besides the chat answer."""

    chat: dict[str, Any]
    prompt: str
    echo: bool


def to_chat_body(body: Mapping[str, Any]) -> Completion:
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise _unsupported(unknown[0], f"unrecognized request argument: '{unknown[0]}'")
    prompt = _prompt(body.get("prompt", _MISSING))
    for name in ("n", "best_of"):
        value = body.get(name)
        if value is not None and value != 1:
            raise _unsupported(name, f"'{name}' above 1 is not supported: send one request per completion")
    if body.get("logprobs") is not None:
        raise _unsupported("logprobs", "'logprobs' is not supported on /v1/completions (use /v1/chat/completions)")
    if body.get("suffix") not in (None, ""):
        raise _unsupported("suffix", "'suffix' is not supported: Llama 4 is served without an insertion mode")
    echo = body.get("echo")
    if echo is not None and not isinstance(echo, bool):
        raise bad_request("invalid value for 'echo': expected a boolean", param="echo")
    chat: dict[str, Any] = {k: body[k] for k in _PASSED if k in body}
    chat["messages"] = [{"role": "user", "content": prompt}]
    max_tokens = body.get("max_tokens")
    chat["max_tokens"] = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    if body.get("stream") is not None:
        chat["stream"] = body["stream"]
    return Completion(chat, prompt, bool(echo))


_MISSING = object()


def _prompt(raw: Any) -> str:
    if raw is _MISSING or raw is None:
        raise bad_request("missing required parameter: 'prompt'", param="prompt", code=Code.MISSING_REQUIRED_PARAMETER)
    if isinstance(raw, str):
        return raw
    if isinstance(raw, list) and raw and all(isinstance(p, str) for p in raw):
        if len(raw) == 1:
            return str(raw[0])
        raise _unsupported("prompt", "several prompts in one request are not supported: send one request per prompt")
    if isinstance(raw, list) and raw and all(isinstance(p, (int, list)) for p in raw):
        raise _unsupported(
            "prompt", "token-array prompts are not supported: token ids belong to one tokenizer; send the text"
        )
    raise bad_request("invalid value for 'prompt': expected a string or a list of strings", param="prompt")


def _unsupported(param: str, message: str) -> GatewayError:
    return bad_request(message, param=param, code=Code.UNSUPPORTED_PARAMETER)
