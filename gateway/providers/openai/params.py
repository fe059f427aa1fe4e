"""Per-provider parameter tables: how each OpenAI request field reaches a backend.

A table maps every OpenAI chat-completions field to a `Rule`:

- `PASS`: send as is;
- `rename(to)`: send under another name (Groq's `max_completion_tokens`);
- `translate(fn)`: `fn(value, body)` returns the fields to send (Together's integer
  `logprobs`, message clean-up); an empty dict drops the field;
- `DROP`: a harmless hint the backend rejects or ignores (`metadata`, `store`);
- `EMULATED`: never sent; the gateway delivers the behaviour itself on every backend
  (`parallel_tool_calls`: the tool-call validator, see `gateway.schema.params`);
- `unsupported(reason, when)`: the request needs something the backend lacks; the
  router skips the deployment (via `Provider.unsupported`). When `when` is false for
  the value (e.g. `logprobs: false`) the field is dropped instead, or sent as is with
  `otherwise_pass=True` (a `response_format` that is fine unless combined with tools).

Any rule may carry `unless=<field>`: drop this field when that one is also present
(so `max_completion_tokens` wins over `max_tokens` whatever the key order).
Fields missing from a table are never forwarded; `model`, `stream` and
`stream_options` are set by the adapter itself. Translation is one pass over the
body's keys with one dict lookup each: this runs on every request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = [
    "DROP",
    "EMULATED",
    "PASS",
    "Action",
    "Rule",
    "Unsupported",
    "clean_messages",
    "dropped",
    "find_unsupported",
    "output_limit_as",
    "rename",
    "translate",
    "translate_body",
    "unsupported",
]

Body = Mapping[str, Any]
Translator = Callable[[Any, Body], Mapping[str, Any]]
Predicate = Callable[[Any, Body], bool]


class Action(Enum):
    PASS = "pass"
    RENAME = "rename"
    TRANSLATE = "translate"
    DROP = "drop"
    EMULATE = "emulated by the gateway"
    UNSUPPORTED = "unsupported"


class Unsupported(Exception):
    """The request needs a feature this backend lacks (the router should have skipped it)."""


def _truthy(value: Any, body: Body) -> bool:
    return value is not None and value is not False and value != 0


@dataclass(frozen=True, slots=True)
class Rule:
    action: Action
    to: str | None = None
    fn: Translator | None = None
    reason: str = ""
    when: Predicate = _truthy
    unless: str | None = None
    #: UNSUPPORTED only: send the field as is when `when` is false (else drop it).
    otherwise_pass: bool = False

    def describe(self) -> str:
        """One word or phrase for reports and docs ("rename -> max_tokens")."""
        if self.action is Action.RENAME:
            return f"rename -> {self.to}"
        if self.action is Action.UNSUPPORTED:
            otherwise = "pass" if self.otherwise_pass else "drop"
            return f"unsupported: {self.reason} (otherwise {otherwise})"
        return str(self.action.value)


PASS = Rule(Action.PASS)
DROP = Rule(Action.DROP)
EMULATED = Rule(Action.EMULATE)


def rename(to: str, *, unless: str | None = None) -> Rule:
    return Rule(Action.RENAME, to=to, unless=unless)


def translate(fn: Translator, *, unless: str | None = None) -> Rule:
    return Rule(Action.TRANSLATE, fn=fn, unless=unless)


def unsupported(reason: str, when: Predicate = _truthy, *, otherwise_pass: bool = False) -> Rule:
    return Rule(Action.UNSUPPORTED, reason=reason, when=when, otherwise_pass=otherwise_pass)


def output_limit_as(name: str) -> dict[str, Rule]:
    """Rules sending the output-token limit as `name` ("max_tokens" or "max_completion_tokens");
    `max_completion_tokens` wins when a client sets both, as at OpenAI."""
    if name == "max_completion_tokens":
        return {"max_completion_tokens": PASS, "max_tokens": rename(name, unless="max_completion_tokens")}
    return {
        "max_completion_tokens": rename(name),
        "max_tokens": Rule(Action.PASS, unless="max_completion_tokens"),
    }


def translate_body(body: Body, table: Mapping[str, Rule], model_id: str) -> dict[str, Any]:
    """The backend's request body for `body`; raises `Unsupported` with the reason."""
    out: dict[str, Any] = {"model": model_id}
    for key, value in body.items():
        rule = table.get(key)
        if rule is None or (rule.unless is not None and rule.unless in body):
            continue
        action = rule.action
        if action is Action.PASS:
            out[key] = value
        elif action is Action.RENAME:
            out[rule.to or key] = value
        elif action is Action.TRANSLATE:
            assert rule.fn is not None
            out.update(rule.fn(value, body))
        elif action is Action.UNSUPPORTED:
            if rule.when(value, body):
                raise Unsupported(rule.reason)
            if rule.otherwise_pass:
                out[key] = value
    return out


def dropped(body: Body, table: Mapping[str, Rule], watched: frozenset[str]) -> tuple[str, ...]:
    """Fields of `body` among `watched` that this table does not send (missing, dropped or emulated)."""
    out = []
    for key in body:
        if key in watched:
            rule = table.get(key)
            if rule is None or rule.action in (Action.DROP, Action.EMULATE):
                out.append(key)
    return tuple(out)


def find_unsupported(body: Body, table: Mapping[str, Rule]) -> str | None:
    """Why this backend cannot serve `body` faithfully, or None."""
    for key, value in body.items():
        rule = table.get(key)
        if rule is not None and rule.action is Action.UNSUPPORTED and rule.when(value, body):
            return rule.reason
    return None


def clean_messages(*, drop_name: bool) -> Rule:
    """`messages` with the `developer` role sent as `system` (Llama 4's chat templates
    know only system/user/assistant/tool) and, if asked, `name` removed. Copies a
    message only when it changes."""

    def fix(messages: Any, body: Body) -> Mapping[str, Any]:
        if not isinstance(messages, list):
            return {"messages": messages}
        out: list[Any] | None = None
        for i, message in enumerate(messages):
            if not isinstance(message, dict):
                continue
            renamed = message.get("role") == "developer"
            named = drop_name and "name" in message
            if renamed or named:
                if out is None:
                    out = list(messages)
                fixed = {k: v for k, v in message.items() if not (named and k == "name")}
                if renamed:
                    fixed["role"] = "system"
                out[i] = fixed
        return {"messages": messages if out is None else out}

    return translate(fix)


#: Every OpenAI chat field Corral forwards, passed as is: the table of a backend that
#: speaks the whole dialect (vLLM, SGLang, litellm). Other tables start from it and
#: override only what their backend does differently.
OPENAI_PARAMETERS: Mapping[str, Rule] = {
    "messages": clean_messages(drop_name=False),
    "tools": PASS,
    "tool_choice": PASS,
    "parallel_tool_calls": PASS,
    "response_format": PASS,
    "temperature": PASS,
    "top_p": PASS,
    "max_tokens": PASS,
    "max_completion_tokens": PASS,
    "stop": PASS,
    "seed": PASS,
    "user": PASS,
    "n": PASS,
    "frequency_penalty": PASS,
    "presence_penalty": PASS,
    "logprobs": PASS,
    "top_logprobs": PASS,
    "logit_bias": PASS,
    "metadata": DROP,
    "store": DROP,
    "service_tier": DROP,
    "corral": DROP,
}
