"""The values passed between the OpenAI-dialect engine (`oai_base`) and its dialects:
refusals before rendering, rendered replies, accepted exchanges, stream events."""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, TypedDict

import orjson

from gateway.catalogue.deployments import Deployment, load_catalogue
from gateway.fakes.openai.answer import Answer
from gateway.fakes.openai.ratelimit import seconds_header
from gateway.fakes.script import Behaviour, Script

ProblemKind = Literal[
    "auth_missing",
    "auth_invalid",
    "model_not_found",
    "model_gone",
    "model_retired",
    "bad_request",
    "context_too_long",
    "rate_limited",
    "request_too_large",
    "overloaded",
    "server_error",
]
DONE = b"data: [DONE]\n\n"


class DefaultKey(enum.Enum):
    KEY = "the provider's test key"


DEFAULT_KEY = DefaultKey.KEY


class FakeOptions(TypedDict, total=False):
    """Constructor options every OpenAI-dialect fake takes (see `OpenAICompatFake`)."""

    api_key: str | DefaultKey | None
    retired_models: Iterable[str]
    script: Script | None
    host: str
    port: int
    record: bool


@dataclass(frozen=True, slots=True)
class Problem:
    """A refusal, before a dialect renders it into its status, body and headers."""

    kind: ProblemKind
    message: str = ""
    param: str | None = None
    model: str = ""
    #: A scripted retry-after (Behaviour.retry_after_s): sent exactly as given.
    retry_after_s: float | None = None
    #: The provider's own estimate of when the limit frees up (live counters).
    wait_s: float | None = None
    #: Rate limits: which limit ("requests" or "tokens") and its numbers for the message.
    limit_kind: str = "requests"
    limit: int = 0
    used: int = 0
    requested: int = 0
    #: Context errors.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    context_window: int = 0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    #: JSON-able body, raw bytes, or None for an empty body.
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Exchange:
    """One accepted chat request on its way to an answer."""

    body: dict[str, Any]
    behaviour: Behaviour
    deployment: Deployment
    model: str
    stream: bool
    include_usage: bool
    n: int
    prompt_tokens: int
    answer: Answer
    id: str
    created: int
    arrived: float
    headers: dict[str, str] = field(default_factory=dict)
    cached_tokens: int = 0
    #: Provider request id (Groq's x_groq.id, Together's x-request-id), when it has one.
    request_id: str = ""
    #: Tokens actually sent so far (a cut stream sends fewer than planned).
    generated: int = 0
    #: Content deltas built so far, for dialects that report running usage per chunk.
    built_deltas: int = 0

    @property
    def completion_tokens(self) -> int:
        return self.answer.completion_tokens * self.n


@dataclass(frozen=True, slots=True)
class Event:
    data: bytes
    kind: Literal["role", "content", "final", "usage"]


@lru_cache(maxsize=1)
def _catalogue_deployments() -> tuple[Deployment, ...]:
    catalogue = load_catalogue()
    return tuple(d for model in catalogue.models.values() for d in model.deployments)


def provider_models(provider: str) -> dict[str, Deployment]:
    """The model IDs a provider serves, per the catalogue (read once per process)."""
    return {d.model_id: d for d in _catalogue_deployments() if d.provider == provider}


def random_hex(nbytes: int) -> str:
    return os.urandom(nbytes).hex()


def sse(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


#: `created` of the hosted fakes' model listings (Llama 4's release day).
MODELS_CREATED = 1743811200


def openai_error(message: str, type_: str, *, param: str | None = None, code: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def rate_limited_headers(problem: Problem, default_retry_after: float | None) -> dict[str, str]:
    """The problem's headers plus `retry-after`: the scripted value as given, else the live
    counters' wait in whole seconds, else the provider's default (None: no header)."""
    headers = dict(problem.headers)
    if problem.retry_after_s is not None:
        headers["retry-after"] = seconds_header(problem.retry_after_s)
    elif problem.wait_s is not None:
        headers["retry-after"] = str(max(1, math.ceil(problem.wait_s)))
    elif default_retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(default_retry_after)))
    return headers
