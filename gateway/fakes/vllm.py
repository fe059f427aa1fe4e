"""Fake of one self-hosted vLLM replica (docs/providers.md#7-vllm-self-hosted-pool): the OpenAI-compatible server
plus the operational surface a router reads — `/health`, `/metrics` (Prometheus, with
vLLM's metric names), `/v1/models` with `max_model_len` — and the behaviour behind those
numbers: a batch of at most `max_num_seqs` running sequences with a FIFO waiting queue,
KV-cache usage that grows with the running sequences' tokens, and a prefix cache keyed on
the first message.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import Any, Unpack

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from gateway.catalogue.deployments import Deployment
from gateway.fakes.content import count_prompt_tokens, regex_example
from gateway.fakes.openai.answer import json_example, request_seed
from gateway.fakes.openai.base import OpenAICompatFake
from gateway.fakes.openai.ratelimit import seconds_header
from gateway.fakes.openai.wire import Exchange, FakeOptions, Problem, Reply, provider_models, random_hex

SCOUT = "meta-llama/Llama-4-Scout-17B-16E-Instruct"
#: vLLM's own bucket bounds for time-to-first-token.
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
#: First messages remembered by the prefix cache.
PREFIX_CACHE_ENTRIES = 4096
ENGINE_DEAD = "EngineCore encountered an issue. See stack trace (above) for the root cause."


class BatchScheduler:
    """At most `max_num_seqs` requests run at once; the rest wait in arrival order."""

    def __init__(self, max_num_seqs: int) -> None:
        if max_num_seqs < 1:
            raise ValueError("max_num_seqs must be at least 1")
        self.max_num_seqs = max_num_seqs
        self.running = 0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def acquire(self) -> None:
        if self.running < self.max_num_seqs and not self._waiting:
            self.running += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was already handed to us: pass it on
            else:
                self._waiting.remove(future)
            raise

    def release(self) -> None:
        """Free a slot, handing it straight to the longest-waiting request if there is one."""
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(None)
                return
        self.running -= 1


class _Histogram:
    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1
                break

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            out.append((str(bound), float(running)))
        out.append(("+Inf", float(self.count)))
        return out


class _Collector:
    """Reads the fake's live state at scrape time (nothing is computed per request)."""

    def __init__(self, fake: VllmFake) -> None:
        self.fake = fake

    def collect(self) -> Iterable[Metric]:
        fake = self.fake
        names = ("model_name", "engine")
        values = (fake.model_id, "0")
        legacy = fake.legacy_metric_names

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=names)
            family.add_metric(values, value)
            return family

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc, labels=names)
            family.add_metric(values, value, created=fake.started_at)
            return family

        yield gauge("vllm:num_requests_running", "Number of requests in model execution batches.", fake.running)
        yield gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", fake.waiting)
        kv_name = "vllm:gpu_cache_usage_perc" if legacy else "vllm:kv_cache_usage_perc"
        kv_doc = ("GPU " if legacy else "") + "KV-cache usage. 1 means 100 percent usage."
        yield gauge(kv_name, kv_doc, fake.kv_cache_usage)
        prefix = "vllm:gpu_prefix_cache_" if legacy else "vllm:prefix_cache_"
        doc = "GPU prefix cache" if legacy else "Prefix cache"
        yield counter(f"{prefix}queries", f"{doc} queries, in terms of number of queried tokens.", fake.prefix_queries)
        yield counter(f"{prefix}hits", f"{doc} hits, in terms of number of cached tokens.", fake.prefix_hits)
        yield counter("vllm:prompt_tokens", "Number of prefill tokens processed.", fake.prompt_tokens_total)
        yield counter("vllm:generation_tokens", "Number of generation tokens processed.", fake.generation_tokens_total)
        ttft = HistogramMetricFamily(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels=names
        )
        ttft.add_metric(values, fake.ttft.cumulative(), fake.ttft.total)
        yield ttft


class VllmFake(OpenAICompatFake):
    """One vLLM replica serving `model_id`: `POST /v1/chat/completions`, `GET /v1/models`,
    `/health`, `/metrics`, `/version`, `/load`, `/ping`. `base_url` is the root URL (the
    adapter appends /v1). No auth unless `api_key` is given; no rate-limit headers."""

    provider = "vllm"
    api_prefix = "/v1"
    default_api_key = None
    done_after_stream_error = True
    vllm_version = "0.12.0"

    def __init__(
        self,
        *,
        model_id: str = SCOUT,
        max_model_len: int | None = None,
        max_num_seqs: int = 16,
        kv_cache_tokens: int = 2_097_152,
        legacy_metric_names: bool = False,
        flat_errors: bool = False,
        enable_prompt_tokens_details: bool = False,
        **options: Unpack[FakeOptions],
    ) -> None:
        super().__init__(**options)
        self.model_id = model_id
        known = provider_models("vllm").get(model_id)
        self.max_model_len = max_model_len or (known.context_window if known else 131_072)
        self.models = {model_id: self._deployment(known)}
        #: Flip to False to make /health answer 503 and chat requests fail like a dead engine.
        self.healthy = True
        self.legacy_metric_names = legacy_metric_names
        #: Errors in the old flat `{"object": "error", ...}` shape instead of the nested one.
        self.flat_errors = flat_errors
        self.enable_prompt_tokens_details = enable_prompt_tokens_details
        self.kv_cache_tokens = kv_cache_tokens
        self.scheduler = BatchScheduler(max_num_seqs)
        self.started_at = time.time()
        self.kv_tokens = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.ttft = _Histogram(TTFT_BUCKETS)
        self._prefixes: OrderedDict[int, None] = OrderedDict()
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(self))

    def _deployment(self, known: Deployment | None) -> Deployment:
        if known is not None:
            return Deployment(
                provider="vllm",
                model=known.model,
                model_id=self.model_id,
                context_window=self.max_model_len,
                max_output_tokens=known.max_output_tokens,
                capabilities=known.capabilities,
                quantization=known.quantization,
            )
        return Deployment(
            provider="vllm",
            model=self.model_id,
            model_id=self.model_id,
            context_window=self.max_model_len,
            max_output_tokens=self.max_model_len,
            capabilities=frozenset(),
        )

    # ------------------------------------------------------------------ live state

    @property
    def running(self) -> int:
        return self.scheduler.running

    @property
    def waiting(self) -> int:
        return self.scheduler.waiting

    @property
    def kv_cache_usage(self) -> float:
        return min(1.0, self.kv_tokens / self.kv_cache_tokens)

    # ------------------------------------------------------------------ routes

    @property
    def base_url(self) -> str:
        return self.url

    def routes(self) -> list[web.RouteDef]:
        return [
            *super().routes(),
            web.get("/health", self.handle_health),
            web.get("/metrics", self.handle_metrics),
            web.get("/version", self.handle_version),
            web.get("/load", self.handle_load),
            web.get("/ping", self.handle_ping),
            web.post("/ping", self.handle_ping),
        ]

    async def handle_health(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def handle_ping(self, request: web.Request) -> web.Response:
        return web.Response(status=200 if self.healthy else 503)

    async def handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self._registry), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def handle_version(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps({"version": self.vllm_version}), content_type="application/json")

    async def handle_load(self, request: web.Request) -> web.Response:
        load = {"server_load": self.running + self.waiting}
        return web.Response(body=orjson.dumps(load), content_type="application/json")

    def models_listing(self) -> Any:
        created = int(self.started_at)
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model_id,
                    "object": "model",
                    "created": created,
                    "owned_by": "vllm",
                    "root": self.model_id,
                    "parent": None,
                    "max_model_len": self.max_model_len,
                    "permission": [
                        {
                            "id": f"modelperm-{random_hex(16)}",
                            "object": "model_permission",
                            "created": created,
                            "allow_create_engine": False,
                            "allow_sampling": True,
                            "allow_logprobs": True,
                            "allow_search_indices": False,
                            "allow_view": True,
                            "allow_fine_tuning": False,
                            "organization": "*",
                            "group": None,
                            "is_blocking": False,
                        }
                    ],
                }
            ],
        }

    # ------------------------------------------------------------------ checks

    def check_params(self, body: dict[str, Any], deployment: Deployment) -> Problem | None:
        if body.get("top_logprobs") is not None and not body.get("logprobs"):
            return Problem("bad_request", "when using `top_logprobs`, `logprobs` must be set to true.")
        outputs = body.get("structured_outputs")
        if outputs is None:
            return None
        if not isinstance(outputs, dict):
            return Problem("bad_request", "structured_outputs must be an object", param="structured_outputs")
        schema = outputs.get("json")
        if isinstance(schema, str):
            try:
                orjson.loads(schema)
            except orjson.JSONDecodeError:
                return Problem("bad_request", "structured_outputs.json is not valid JSON", "structured_outputs")
        return None

    def structured_content(self, body: dict[str, Any]) -> str | None:
        outputs = body.get("structured_outputs")
        if not isinstance(outputs, dict):
            return None
        seed = request_seed(body)
        schema = outputs.get("json")
        if isinstance(schema, str):
            schema = orjson.loads(schema)
        if isinstance(schema, dict):
            return json_example(schema, seed)
        choices = outputs.get("choice")
        if isinstance(choices, list) and choices:
            return str(choices[0])
        pattern = outputs.get("regex")
        if isinstance(pattern, str):
            return regex_example(pattern, random.Random(seed))
        return None

    # ------------------------------------------------------------------ scheduling and accounting

    async def admit(self, exchange: Exchange) -> Problem | None:
        if not self.healthy:
            return Problem("server_error", ENGINE_DEAD)
        self._lookup_prefix(exchange)
        await self.scheduler.acquire()
        self.kv_tokens += exchange.prompt_tokens
        self.prompt_tokens_total += exchange.prompt_tokens
        return None

    def _lookup_prefix(self, exchange: Exchange) -> None:
        """Count a prefix-cache hit (in tokens) when this first message was seen before."""
        first = exchange.body["messages"][0]
        key = hash(orjson.dumps(first))
        self.prefix_queries += exchange.prompt_tokens
        if key in self._prefixes:
            self._prefixes.move_to_end(key)
            cached = min(count_prompt_tokens([first]), exchange.prompt_tokens)
            self.prefix_hits += cached
            exchange.cached_tokens = cached
            return
        self._prefixes[key] = None
        if len(self._prefixes) > PREFIX_CACHE_ENTRIES:
            self._prefixes.popitem(last=False)

    def on_started(self, exchange: Exchange) -> None:
        self.ttft.observe(time.monotonic() - exchange.arrived)

    def on_tokens(self, exchange: Exchange, count: int) -> None:
        super().on_tokens(exchange, count)
        self.kv_tokens += count
        self.generation_tokens_total += count

    def release(self, exchange: Exchange) -> None:
        self.kv_tokens -= exchange.prompt_tokens + exchange.generated
        self.scheduler.release()

    # ------------------------------------------------------------------ wire shapes

    def render(self, problem: Problem) -> Reply:
        match problem.kind:
            case "auth_missing" | "auth_invalid":
                return Reply(401, {"error": "Unauthorized"})
            case "model_not_found" | "model_gone" | "model_retired":
                return self._error(404, "NotFoundError", f"The model `{problem.model}` does not exist.", "model")
            case "bad_request":
                return self._error(400, "BadRequestError", problem.message, problem.param)
            case "context_too_long":
                return self._error(400, "BadRequestError", self._context_message(problem))
            case "rate_limited":
                reply = self._error(429, "TooManyRequests", "Too many requests.")
                retry = {} if problem.retry_after_s is None else {"retry-after": seconds_header(problem.retry_after_s)}
                return Reply(reply.status, reply.body, retry)
            case "overloaded":
                return self._error(503, "ServiceUnavailableError", "The engine is overloaded. Try again later.")
            case _:
                return self._error(500, "InternalServerError", problem.message or "Internal server error.")

    def _context_message(self, problem: Problem) -> str:
        """The wording of the version this fake plays (docs/providers.md, vLLM V5): releases
        with the nested envelope say what is too large; older ones (`flat_errors`) gave one
        sentence with the sum."""
        window, prompt, budget = problem.context_window, problem.prompt_tokens, problem.completion_tokens
        if self.flat_errors:
            return (
                f"This model's maximum context length is {window} tokens. However, you requested "
                f"{prompt + budget} tokens ({prompt} in the messages, {budget} in the "
                "completion). Please reduce the length of the messages or completion."
            )
        if prompt >= window:
            return (
                f"This model's maximum context length is {window} tokens. However, your request has {prompt} "
                "input tokens. Please reduce the length of the input messages."
            )
        return (
            f"'max_tokens' or 'max_completion_tokens' is too large: {budget}. This model's maximum context length "
            f"is {window} tokens and your request has {prompt} input tokens ({budget} > {window} - {prompt})."
        )

    def _error(self, status: int, type_: str, message: str, param: str | None = None) -> Reply:
        fields = {"message": message, "type": type_, "param": param, "code": status}
        return Reply(status, {"object": "error", **fields} if self.flat_errors else {"error": fields})

    def completion_id(self) -> str:
        return f"chatcmpl-{random_hex(16)}"

    def tool_call_id(self) -> str:
        return f"chatcmpl-tool-{random_hex(16)}"

    def usage(self, exchange: Exchange) -> dict[str, Any]:
        usage = super().usage(exchange)
        details = {"cached_tokens": exchange.cached_tokens} if self.enable_prompt_tokens_details else None
        usage["prompt_tokens_details"] = details
        return usage

    def message(self, exchange: Exchange) -> dict[str, Any]:
        message = super().message(exchange)
        message.setdefault("tool_calls", [])
        return {
            **message,
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "reasoning_content": None,
        }

    def choice(self, exchange: Exchange, index: int) -> dict[str, Any]:
        return {**super().choice(exchange, index), "stop_reason": None}

    def completion_body(self, exchange: Exchange) -> dict[str, Any]:
        body = super().completion_body(exchange)
        body.update(service_tier=None, system_fingerprint=None, prompt_logprobs=None, kv_transfer_params=None)
        return body

    def chunk(
        self, exchange: Exchange, index: int, delta: dict[str, Any], finish_reason: str | None = None
    ) -> dict[str, Any]:
        chunk = super().chunk(exchange, index, delta, finish_reason)
        options = exchange.body.get("stream_options")
        if exchange.include_usage and isinstance(options, dict) and options.get("continuous_usage_stats"):
            if delta.get("content") or delta.get("tool_calls"):
                exchange.built_deltas += 1
            completion = (
                exchange.completion_tokens if finish_reason else min(exchange.built_deltas, exchange.completion_tokens)
            )
            chunk["usage"] = {
                "prompt_tokens": exchange.prompt_tokens,
                "completion_tokens": completion,
                "total_tokens": exchange.prompt_tokens + completion,
            }
        return chunk

    def final_chunk(self, exchange: Exchange, index: int, last: bool) -> dict[str, Any]:
        chunk = super().final_chunk(exchange, index, last)
        chunk["choices"][0]["stop_reason"] = None
        return chunk

    def stream_error(self, exchange: Exchange) -> dict[str, Any]:
        fields = {"message": "Internal server error.", "type": "InternalServerError", "param": None, "code": 500}
        return {"object": "error", **fields} if self.flat_errors else {"error": fields}
