"""DeepInfra's wire dialect (docs/providers.md#4-deepinfra): `POST /v1/openai/chat/completions`, no
rate-limit headers but a per-model concurrency limit, `usage.estimated_cost`, usage on a
stream's final chunk."""

from __future__ import annotations

from collections import Counter
from datetime import date
from functools import lru_cache
from typing import Any, Unpack

from gateway.catalogue.prices import Price, load_price_book
from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.openai.wire import (
    MODELS_CREATED,
    Exchange,
    FakeOptions,
    Problem,
    Reply,
    openai_error,
    rate_limited_headers,
)


@lru_cache(maxsize=1)
def _deepinfra_prices() -> dict[str, Price]:
    book = load_price_book()
    today = date.today()
    return {
        model: price
        for model in ("llama-4-scout", "llama-4-maverick")
        if (price := book.at("deepinfra", model, today)) is not None
    }


class DeepInfraFake(OpenAICompatFake):
    """DeepInfra: `POST /v1/openai/chat/completions`; no rate-limit headers but a per-model
    concurrency limit (429 "Rate limited"); `usage.estimated_cost`; usage on a stream's final
    chunk."""

    provider = "deepinfra"
    api_prefix = "/v1/openai"
    default_api_key = "test-deepinfra-key"
    usage_on_final_chunk = True

    def __init__(self, *, max_concurrency: int = 200, **options: Unpack[FakeOptions]) -> None:
        super().__init__(**options)
        self.max_concurrency = max_concurrency
        #: Requests in flight per model ID.
        self.in_flight: Counter[str] = Counter()

    async def admit(self, exchange: Exchange) -> Problem | None:
        if self.in_flight[exchange.model] >= self.max_concurrency:
            return Problem("rate_limited", model=exchange.model)
        self.in_flight[exchange.model] += 1
        return None

    def release(self, exchange: Exchange) -> None:
        self.in_flight[exchange.model] -= 1

    def render(self, problem: Problem) -> Reply:
        def error(status: int, message: str, type_: str = "invalid_request_error") -> Reply:
            param = problem.param if status == 400 else None
            return Reply(status, openai_error(message, type_, param=param), dict(problem.headers))

        model = problem.model
        match problem.kind:
            case "auth_missing":
                return error(401, "Not authenticated")
            case "auth_invalid":
                return error(401, "Invalid API key")
            case "model_not_found":
                return error(404, f"The model `{model}` does not exist")
            case "model_gone" | "model_retired":
                return error(404, f"Model {model} is not available")
            case "bad_request":
                return error(400, problem.message)
            case "context_too_long":
                total = problem.prompt_tokens + problem.completion_tokens
                message = (
                    f"Requested token count exceeds the model's maximum context length of {problem.context_window} "
                    f"tokens. You requested a total of {total} tokens: {problem.prompt_tokens} tokens from the input "
                    f"messages and {problem.completion_tokens} tokens for the completion. Please reduce the number "
                    "of tokens in the input messages or the completion to fit within the limit."
                )
                return error(400, message)
            case "rate_limited":
                body = openai_error("Rate limited", "rate_limit_exceeded")
                return Reply(429, body, rate_limited_headers(problem, None))
            case "overloaded":
                return error(503, "Model busy, retry later", "server_error")
            case _:
                return error(500, "Internal server error", "server_error")

    def usage(self, exchange: Exchange) -> dict[str, Any]:
        usage = super().usage(exchange)
        price = _deepinfra_prices().get(exchange.deployment.model)
        cost = price.estimate(exchange.prompt_tokens, exchange.completion_tokens) if price else 0
        usage["estimated_cost"] = float(cost)
        return usage

    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        return openai_error("Internal server error: generation stopped early", "server_error")

    def models_listing(self) -> Any:
        return {
            "object": "list",
            "data": [
                {
                    "id": d.model_id,
                    "object": "model",
                    "created": MODELS_CREATED,
                    "owned_by": "deepinfra",
                    "metadata": {"context_length": d.context_window, "max_tokens": d.max_output_tokens},
                }
                for d in self.models.values()
                if d.model_id not in self.retired_models
            ],
        }
