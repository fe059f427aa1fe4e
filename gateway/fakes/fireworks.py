"""Fireworks AI's wire dialect: `POST /inference/v1/chat/completions`, account-path model
IDs (`accounts/fireworks/models/...`), errors as the flat object seen from the live service
(`{"message", "param", "code": "NOT_FOUND", "type": "error"}`), usage on a stream's final
chunk (unasked), Retry-After on 429s. As Fireworks documents: `max_tokens` defaults to 200,
and a prompt plus `max_tokens` over the window lowers `max_tokens` to fit
(`context_length_exceeded_behavior: truncate`, the default) instead of failing; only
`error` behaviour, or a prompt that does not fit at all, is refused. Codes other than
NOT_FOUND, and the refusal's wording, have no public source (docs/providers.md#9-fireworks-ai; rules F2, F5)."""

from __future__ import annotations

from typing import Any

from gateway.catalogue.deployments import Deployment
from gateway.fakes.openai.answer import requested_max_tokens
from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.openai.wire import MODELS_CREATED, Exchange, Problem, Reply, rate_limited_headers

#: `max_tokens` when a request sets none (Fireworks' API reference).
DEFAULT_MAX_TOKENS = 200
#: Error codes by status: NOT_FOUND as observed; the rest follow its (gRPC-style) naming, unverified.
_CODES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    503: "UNAVAILABLE",
}


def _budget(body: dict[str, Any]) -> int:
    """The `max_tokens` a request asks for, 200 when it sets none."""
    requested = requested_max_tokens(body)
    return DEFAULT_MAX_TOKENS if requested is None else requested


def fireworks_error(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    return {"message": message, "param": param, "code": _CODES.get(status, "INTERNAL"), "type": "error"}


class FireworksFake(OpenAICompatFake):
    """Fireworks: `POST /inference/v1/chat/completions`; usage on the final stream chunk."""

    provider = "fireworks"
    api_prefix = "/inference/v1"
    default_api_key = "test-fireworks-key"
    usage_on_final_chunk = True
    #: Retry-After sent on a 429 that was not scripted with one.
    default_retry_after_s = 1.0

    def check_context(self, body: dict[str, Any], deployment: Deployment, prompt_tokens: int) -> Problem | None:
        if body.get("context_length_exceeded_behavior") == "error":
            return super().check_context({**body, "max_tokens": _budget(body)}, deployment, prompt_tokens)
        if prompt_tokens < deployment.context_window:
            return None  # max_tokens is lowered to fit (effective_body)
        window = deployment.context_window
        return Problem(
            "context_too_long",
            model=deployment.model_id,
            param="messages",
            prompt_tokens=prompt_tokens,
            completion_tokens=0,
            context_window=window,
        )

    def effective_body(self, body: dict[str, Any], deployment: Deployment, prompt_tokens: int) -> dict[str, Any]:
        """`max_tokens` as Fireworks acts on it: 200 when unset, lowered to what the window
        leaves after the prompt."""
        fits = min(_budget(body), max(deployment.context_window - prompt_tokens, 0))
        if fits == requested_max_tokens(body):
            return body
        return {**body, "max_tokens": fits, "max_completion_tokens": fits}

    def render(self, problem: Problem) -> Reply:
        def error(status: int, message: str) -> Reply:
            param = problem.param if status in (400, 404) else None
            return Reply(status, fireworks_error(status, message, param), dict(problem.headers))

        match problem.kind:
            case "auth_missing" | "auth_invalid":
                return error(401, "The API key you provided is invalid.")
            case "model_not_found" | "model_gone" | "model_retired":
                return error(404, "Model not found, inaccessible, and/or not deployed")
            case "bad_request":
                return error(400, problem.message)
            case "context_too_long":
                total = problem.prompt_tokens + problem.completion_tokens
                return error(
                    400, f"The prompt is too long: {total}, model maximum context length: {problem.context_window}"
                )
            case "rate_limited":
                body = fireworks_error(429, "Request rate limit exceeded, please try again later")
                return Reply(429, body, rate_limited_headers(problem, self.default_retry_after_s))
            case "overloaded":
                return error(503, "The server is overloaded, please try again later")
            case _:
                return error(500, "Internal server error")

    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        """An error inside a stream: no public source for its shape; the OpenAI envelope."""
        return {"error": {"message": "Internal server error: generation stopped", "type": "error", "code": "INTERNAL"}}

    def models_listing(self) -> Any:
        return {
            "object": "list",
            "data": [
                {
                    "id": d.model_id,
                    "object": "model",
                    "created": MODELS_CREATED,
                    "owned_by": "fireworks",
                    "kind": "HF_BASE_MODEL",
                    "supports_chat": True,
                    "supports_image_input": "images" in d.capabilities,
                    "supports_tools": "tools" in d.capabilities,
                    "context_length": d.context_window,
                }
                for d in self.models.values()
                if d.model_id not in self.retired_models
            ],
        }
