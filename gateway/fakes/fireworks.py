"""Fireworks AI's wire dialect: `POST /inference/v1/chat/completions`, account-path model
IDs (`accounts/fireworks/models/...`), the OpenAI error envelope with `"object": "error"`
inside, usage on a stream's final chunk (unasked), Retry-After on 429s. Shapes from
third-party code and Fireworks' docs; not checked against the live service."""

from __future__ import annotations

from typing import Any

from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.openai.wire import MODELS_CREATED, Exchange, Problem, Reply, rate_limited_headers


def fireworks_error(message: str, type_: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"object": "error", "type": type_, "message": message, "param": param, "code": None}}


class FireworksFake(OpenAICompatFake):
    """Fireworks: `POST /inference/v1/chat/completions`; usage on the final stream chunk."""

    provider = "fireworks"
    api_prefix = "/inference/v1"
    default_api_key = "test-fireworks-key"
    usage_on_final_chunk = True
    #: Retry-After sent on a 429 that was not scripted with one.
    default_retry_after_s = 1.0

    def render(self, problem: Problem) -> Reply:
        def error(status: int, message: str, type_: str = "invalid_request_error") -> Reply:
            param = problem.param if status == 400 else None
            return Reply(status, fireworks_error(message, type_, param), dict(problem.headers))

        match problem.kind:
            case "auth_missing" | "auth_invalid":
                return error(401, "The API key you provided is invalid.", "authentication_error")
            case "model_not_found" | "model_gone" | "model_retired":
                return error(404, "Model not found, inaccessible, and/or not deployed", "not_found_error")
            case "bad_request":
                return error(400, problem.message)
            case "context_too_long":
                total = problem.prompt_tokens + problem.completion_tokens
                return error(
                    400, f"The prompt is too long: {total}, model maximum context length: {problem.context_window}"
                )
            case "rate_limited":
                body = fireworks_error("Request rate limit exceeded, please try again later", "rate_limit_error")
                return Reply(429, body, rate_limited_headers(problem, self.default_retry_after_s))
            case "overloaded":
                return error(503, "The server is overloaded, please try again later", "server_error")
            case _:
                return error(500, "Internal server error", "server_error")

    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        return fireworks_error("Internal server error: generation stopped", "server_error")

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
