"""Groq's wire dialect (docs/providers.md#2-groq): `POST /openai/v1/chat/completions`, RPD/TPM
rate-limit headers with Go-style reset durations, `x_groq` on bodies and streams, timing
fields in usage, and Groq's refusals of OpenAI parameters it does not support."""

from __future__ import annotations

import time
import uuid
from typing import Any, Unpack

from gateway.catalogue.deployments import Deployment
from gateway.fakes.openai.admission import BucketAdmission
from gateway.fakes.openai.answer import requested_max_tokens
from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.openai.ratelimit import Bucket, Clock, go_duration
from gateway.fakes.openai.wire import (
    MODELS_CREATED,
    Exchange,
    FakeOptions,
    Problem,
    Reply,
    random_hex,
    rate_limited_headers,
)


class GroqFake(BucketAdmission, OpenAICompatFake):
    """Groq: `POST /openai/v1/chat/completions`; RPD/TPM headers; `x_groq` on bodies and streams."""

    provider = "groq"
    api_prefix = "/openai/v1"
    default_api_key = "test-groq-key"
    min_wait_s = 0.01
    system_fingerprint = "fp_37da608fc1"
    #: Decode speed reported in usage timings when the behaviour sets no pacing.
    decode_tokens_per_s = 460.0
    #: "Please try again in ..." of a scripted 429 without `retry_after_s` (Groq always says when).
    scripted_wait_s = 6.78

    def __init__(
        self,
        *,
        requests_per_day: int = 14_400,
        tokens_per_minute: int = 18_000,
        organization: str = "org_01jcorralfake000000000000",
        clock: Clock = time.monotonic,
        **options: Unpack[FakeOptions],
    ) -> None:
        super().__init__(**options)
        self.organization = organization
        self.request_limit = Bucket(requests_per_day, 86_400, clock)
        self.token_limit = Bucket(tokens_per_minute, 60, clock)

    def rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.request_limit.limit),
            "x-ratelimit-limit-tokens": str(self.token_limit.limit),
            "x-ratelimit-remaining-requests": str(self.request_limit.remaining()),
            "x-ratelimit-remaining-tokens": str(self.token_limit.remaining()),
            "x-ratelimit-reset-requests": go_duration(self.request_limit.reset_s()),
            "x-ratelimit-reset-tokens": go_duration(self.token_limit.reset_s()),
        }

    async def admit(self, exchange: Exchange) -> Problem | None:
        exchange.request_id = f"req_01{random_hex(12)}"
        # The `max_tokens` budget counts against TPM before the request runs (observed; rule G3 of
        # docs/providers.md#24-groq-rate-limits); without one, what is reserved is unverified: the
        # planned answer.
        budget = requested_max_tokens(exchange.body)
        requested = exchange.prompt_tokens + (budget if budget is not None else exchange.completion_tokens)
        if requested > self.token_limit.limit:
            return Problem("request_too_large", model=exchange.model, limit=self.token_limit.limit, requested=requested)
        return self.take_from_buckets(exchange, requested)

    def rate_limited_problem(self, model: str, retry_after_s: float | None) -> Problem:
        used = self.token_limit.used()
        return Problem(
            "rate_limited",
            model=model,
            retry_after_s=retry_after_s,
            limit_kind="tokens",
            limit=self.token_limit.limit,
            used=used,
            requested=self.token_limit.limit - used + 1,
            headers=self.rate_headers(),
        )

    def check_params(self, body: dict[str, Any], deployment: Deployment) -> Problem | None:
        n = body.get("n")
        if n is not None and n != 1:
            return Problem("bad_request", "'n' : number must be at most 1", param="n")
        for key in ("logprobs", "top_logprobs", "logit_bias"):
            if body.get(key) not in (None, False):
                return Problem("bad_request", f"`{key}` is not supported with this model", param=key)
        for index, message in enumerate(body["messages"]):
            if "name" in message:
                role = message.get("role")
                return Problem(
                    "bad_request",
                    f"'messages.{index}' : for 'role:{role}' the following must be satisfied"
                    f"[('messages.{index}.name' : property 'name' is unsupported)]",
                    param="messages",
                )
        for key in ("max_completion_tokens", "max_tokens"):
            value = body.get(key)
            if isinstance(value, int) and value > deployment.max_output_tokens:
                return Problem(
                    "bad_request",
                    f"`{key}` must be less than or equal to `{deployment.max_output_tokens}`, the maximum value "
                    f"for `{key}` is less than the `context_window` for this model",
                    param=key,
                )
        return self._check_groq_limits(body)

    def _check_groq_limits(self, body: dict[str, Any]) -> Problem | None:
        fmt = body.get("response_format")
        if body.get("tools") and isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            return Problem("bad_request", "json mode cannot be combined with tool/function calling", "response_format")
        stop = body.get("stop")
        if isinstance(stop, list) and len(stop) > 4:
            return Problem("bad_request", "'stop' : maximum 4 items allowed", param="stop")
        tools = body.get("tools")
        if isinstance(tools, list) and len(tools) > 128:
            return Problem("bad_request", "'tools' : maximum 128 items allowed", param="tools")
        temperature = body.get("temperature")
        if isinstance(temperature, int | float) and not 0 <= temperature <= 2:
            return Problem("bad_request", "'temperature' : number must be at most 2", param="temperature")
        return None

    def render(self, problem: Problem) -> Reply:
        def error(status: int, message: str, type_: str, code: str | None = None, **extra: Any) -> Reply:
            payload: dict[str, Any] = {"message": message, "type": type_}
            if problem.param is not None and status == 400:
                payload["param"] = problem.param
            if code is not None:
                payload["code"] = code
            return Reply(status, {"error": payload | extra}, dict(problem.headers))

        model = problem.model
        match problem.kind:
            case "auth_missing" | "auth_invalid":
                return error(401, "Invalid API Key", "invalid_request_error", "invalid_api_key")
            case "model_not_found" | "model_gone":
                message = f"The model `{model}` does not exist or you do not have access to it."
                return error(404, message, "invalid_request_error", "model_not_found")
            case "model_retired":
                message = (
                    f"The model `{model}` has been decommissioned and is no longer supported. Please refer to "
                    "https://console.groq.com/docs/deprecations for a recommendation on which model to use instead."
                )
                return error(400, message, "invalid_request_error", "model_decommissioned")
            case "bad_request":
                return error(400, problem.message, "invalid_request_error")
            case "context_too_long":
                message = "Please reduce the length of the messages or completion."
                return error(400, message, "invalid_request_error", "context_length_exceeded")
            case "rate_limited":
                return self._render_rate_limited(problem)
            case "request_too_large":
                message = (
                    f"Request too large for model `{model}` in organization `{self.organization}` service tier "
                    f"`on_demand` on tokens per minute (TPM): Limit {problem.limit}, Requested {problem.requested}, "
                    "please reduce your message size and try again. Visit https://console.groq.com/docs/rate-limits "
                    "for more information."
                )
                return error(413, message, "tokens", "rate_limit_exceeded")
            case "overloaded":
                return error(503, "Service Unavailable", "internal_server_error", "service_unavailable")
            case _:
                return error(500, "Internal Server Error", "internal_server_error")

    def _render_rate_limited(self, problem: Problem) -> Reply:
        label = "requests per day (RPD)" if problem.limit_kind == "requests" else "tokens per minute (TPM)"
        wait = next(w for w in (problem.retry_after_s, problem.wait_s, self.scripted_wait_s) if w is not None)
        message = (
            f"Rate limit reached for model `{problem.model}` in organization `{self.organization}` service tier "
            f"`on_demand` on {label}: Limit {problem.limit}, Used {problem.used}, Requested {problem.requested}. "
            f"Please try again in {go_duration(wait)}. Visit https://console.groq.com/docs/rate-limits for more "
            "information."
        )
        body = {"error": {"message": message, "type": problem.limit_kind, "code": "rate_limit_exceeded"}}
        return Reply(429, body, rate_limited_headers(problem, self.scripted_wait_s))

    def completion_id(self) -> str:
        return f"chatcmpl-{uuid.UUID(bytes=bytes.fromhex(random_hex(16)), version=4)}"

    def usage(self, exchange: Exchange) -> dict[str, Any]:
        prompt, completion = exchange.prompt_tokens, exchange.completion_tokens
        prompt_time = round(0.0004 + prompt / 50_000, 6)
        completion_time = round(completion / (exchange.behaviour.tokens_per_s or self.decode_tokens_per_s), 6)
        return {
            "queue_time": round(0.02 + exchange.behaviour.latency_ms / 1000, 6),
            "prompt_tokens": prompt,
            "prompt_time": prompt_time,
            "completion_tokens": completion,
            "completion_time": completion_time,
            "total_tokens": prompt + completion,
            "total_time": round(prompt_time + completion_time, 6),
        }

    def completion_body(self, exchange: Exchange) -> dict[str, Any]:
        body = super().completion_body(exchange)
        body["system_fingerprint"] = self.system_fingerprint
        body["x_groq"] = {"id": exchange.request_id}
        body["service_tier"] = "on_demand"
        return body

    def chunk(
        self, exchange: Exchange, index: int, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        chunk = super().chunk(exchange, index, delta, finish_reason)
        chunk["system_fingerprint"] = self.system_fingerprint
        return chunk

    def first_chunk(self, exchange: Exchange, chunk: dict[str, Any]) -> None:
        chunk["x_groq"] = {"id": exchange.request_id}

    def final_chunk(self, exchange: Exchange, index: int, last: bool) -> dict[str, Any]:
        chunk = super().final_chunk(exchange, index, last)
        if last:
            x_groq: dict[str, Any] = {"id": exchange.request_id}
            if not exchange.behaviour.omit_usage:
                x_groq["usage"] = self.usage(exchange)
            chunk["x_groq"] = x_groq
        return chunk

    def usage_chunk(self, exchange: Exchange) -> dict[str, Any] | None:
        chunk = super().usage_chunk(exchange)
        if chunk is not None:
            chunk["system_fingerprint"] = self.system_fingerprint
        return chunk

    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        message = "Internal Server Error: generation stopped early"
        return {
            "error": {"message": message, "type": "internal_server_error"},
            "x_groq": {"id": exchange.request_id, "error": message},
        }

    def models_listing(self) -> Any:
        return {
            "object": "list",
            "data": [
                {
                    "id": d.model_id,
                    "object": "model",
                    "created": MODELS_CREATED,
                    "owned_by": "Meta",
                    "active": d.model_id not in self.retired_models,
                    "context_window": d.context_window,
                    "public_apps": None,
                    "max_completion_tokens": d.max_output_tokens,
                }
                for d in self.models.values()
            ],
        }
