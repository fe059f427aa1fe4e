"""A self-hosted SGLang server's wire dialect: `POST /v1/chat/completions`, `GET /v1/models`
(with `max_model_len`), `GET /health`; no key unless one is given (`--api-key`); flat
errors `{"object": "error", "message", "type", "param", "code": <status>}`; usage on a
final `choices: []` chunk only for `stream_options.include_usage`; no rate-limit headers."""

from __future__ import annotations

import time
from typing import Any, Unpack

from aiohttp import web

from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.openai.ratelimit import seconds_header
from gateway.fakes.openai.wire import Exchange, FakeOptions, Problem, Reply


def sglang_error(status: int, type_: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": type_, "param": param, "code": status}


class SglangFake(OpenAICompatFake):
    """SGLang: the OpenAI routes under `/v1`, plus `/health` (503 once `healthy` is False)."""

    provider = "sglang"
    api_prefix = "/v1"
    default_api_key = None
    done_after_stream_error = True

    def __init__(self, **options: Unpack[FakeOptions]) -> None:
        super().__init__(**options)
        self.healthy = True
        self.started_at = int(time.time())

    def routes(self) -> list[web.RouteDef]:
        return [*super().routes(), web.get("/health", self.handle_health)]

    async def handle_health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def admit(self, exchange: Exchange) -> Problem | None:
        return None if self.healthy else Problem("server_error", "The server is not healthy.")

    def render(self, problem: Problem) -> Reply:
        def error(status: int, type_: str, message: str, param: str | None = None) -> Reply:
            return Reply(status, sglang_error(status, type_, message, param), dict(problem.headers))

        match problem.kind:
            case "auth_missing" | "auth_invalid":
                return Reply(401, {"error": "Unauthorized"})
            case "model_not_found" | "model_gone" | "model_retired":
                return error(404, "NotFoundError", f"The model `{problem.model}` does not exist.", "model")
            case "bad_request":
                return error(400, "BadRequestError", problem.message, problem.param)
            case "context_too_long":
                message = (
                    f"The input ({problem.prompt_tokens} tokens) is longer than the model's context length "
                    f"({problem.context_window} tokens)."
                )
                return error(400, "BadRequestError", message)
            case "rate_limited":
                retry = {} if problem.retry_after_s is None else {"retry-after": seconds_header(problem.retry_after_s)}
                return Reply(429, sglang_error(429, "TooManyRequestsError", "Too many requests."), retry)
            case "overloaded":
                return error(503, "ServiceUnavailableError", "The server is overloaded. Try again later.")
            case _:
                return error(500, "InternalServerError", problem.message or "Internal server error.")

    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        return {"error": sglang_error(500, "InternalServerError", "Internal server error.")}

    def models_listing(self) -> Any:
        return {
            "object": "list",
            "data": [
                {
                    "id": d.model_id,
                    "object": "model",
                    "created": self.started_at,
                    "owned_by": "sglang",
                    "root": d.model_id,
                    "max_model_len": d.context_window,
                }
                for d in self.models.values()
            ],
        }
