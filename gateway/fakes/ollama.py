"""A local Ollama server's OpenAI-compatible dialect: `POST /v1/chat/completions`, any (or
no) API key accepted, `llama4:scout` as the model ID, no opening role chunk, usage on a
final `choices: []` chunk for `stream_options.include_usage`, the OpenAI error envelope
with `type` "api_error" / "invalid_request_error", and prompts longer than the window cut
silently (so no context error unless one is scripted). Ollama has no rate limits: when
its queue is full it answers 503 "server busy"."""

from __future__ import annotations

from typing import Any, Unpack

from gateway.catalogue.deployments import Deployment
from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.openai.wire import MODELS_CREATED, Exchange, FakeOptions, Problem, Reply, openai_error

#: Ollama's queue-full answer (OLLAMA_MAX_QUEUE); it sends no 429 of its own.
BUSY = "server busy, please try again.  maximum pending requests exceeded"


class OllamaFake(OpenAICompatFake):
    """Ollama: `POST /v1/chat/completions`; keys ignored; 503 "server busy" instead of 429."""

    provider = "ollama"
    api_prefix = "/v1"
    default_api_key = None
    role_chunk = False
    sends_429 = False

    def check_context(self, body: dict[str, Any], deployment: Deployment, prompt_tokens: int) -> Problem | None:
        """Ollama truncates a prompt longer than its window instead of refusing it."""
        return None

    def render(self, problem: Problem) -> Reply:
        def error(status: int, message: str, type_: str = "invalid_request_error") -> Reply:
            return Reply(status, openai_error(message, type_, param=None), dict(problem.headers))

        match problem.kind:
            case "auth_missing" | "auth_invalid":
                return error(401, "unauthorized", "api_error")
            case "model_not_found" | "model_gone" | "model_retired":
                return error(404, f'model "{problem.model}" not found, try pulling it first', "api_error")
            case "bad_request":
                return error(400, problem.message)
            case "context_too_long":
                over = problem.prompt_tokens + problem.completion_tokens - problem.context_window
                return error(400, f"prompt too long; exceeded max context length by {max(over, 1)} tokens")
            case "rate_limited" | "overloaded":
                return error(503, BUSY, "api_error")
            case _:
                return error(500, "an error was encountered while running the model", "api_error")

    def __init__(self, **options: Unpack[FakeOptions]) -> None:
        super().__init__(**options)
        self.answered = 0

    def completion_id(self) -> str:
        """Ollama numbers its completions (`chatcmpl-123`)."""
        self.answered += 1
        return f"chatcmpl-{self.answered}"

    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        return openai_error("an error was encountered while running the model", "api_error")

    def models_listing(self) -> Any:
        return {
            "object": "list",
            "data": [
                {"id": d.model_id, "object": "model", "created": MODELS_CREATED, "owned_by": "library"}
                for d in self.models.values()
            ],
        }
