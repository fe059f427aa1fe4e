"""The self-hosted pool's per-token prices, derived in this one place from what the pool
costs and what it serves: its GPU count, its $/GPU-hour and, per model, its stated
throughput (output tokens/s while decoding, input tokens/s while prefilling).

The pool costs `gpus x gpu_hour_usd` per hour whatever it does (for a model served by part
of the pool's GPUs, those GPUs). A request occupies the
pool for `prompt / input_tokens_per_s + completion / output_tokens_per_s` seconds at the
stated rates, so its share of that cost is

    input  USD/1M = gpus x gpu_hour_usd / 3600 / input_tokens_per_s  x 1M
    output USD/1M = gpus x gpu_hour_usd / 3600 / output_tokens_per_s x 1M

and a pool serving exactly its stated throughput for an hour is charged, request by
request, exactly what its GPUs cost for that hour. The price book's `basis: gpu_hours`
rows carry no numbers of their own: they are filled in from here (`derive`), with the
configured pool (`providers.vllm.vllm` in the config file) or, without one, the stated
defaults below. Throughput here is always stated, never measured: a price derived from it
is never fed back into it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

PER = Decimal(1_000_000)
SECONDS_PER_HOUR = Decimal(3600)
#: Derived prices are kept to 1e-6 USD per 1M tokens (1e-12 USD a token).
PRICE_PLACES = Decimal("0.000001")

#: The pool the project ships with: 8x H100 (one node, one model) at $2.50 per GPU-hour.
DEFAULT_GPUS = 8
DEFAULT_GPU_HOUR_USD = Decimal("2.50")


@dataclass(frozen=True, slots=True)
class Throughput:
    """What the pool's GPUs serve of one model, together, under load (tokens per second)."""

    output_tokens_per_s: Decimal
    input_tokens_per_s: Decimal
    #: Where the figures come from (docs/providers.md says whether each is verified).
    source: str = ""
    #: The GPUs serving this model when the pool splits its GPUs between models (one node per
    #: model); None: the whole pool's.
    gpus: int | None = None


#: The stated throughput (docs/providers.md, "Self-hosted pool throughput"): 9,000 output
#: tokens/s is the figure the project was planned with, unverified (no public measurement of
#: Llama 4 on 8x H100 with vLLM was found); the prefill rate is an assumption (4x decode,
#: the 1:4 input:output ratio of the hosted list prices), unverified too.
STATED_SOURCE = "stated, unverified: docs/providers.md"
STATED: Mapping[str, Throughput] = {
    "llama-4-scout": Throughput(Decimal(9000), Decimal(36000), STATED_SOURCE),
    "llama-4-maverick": Throughput(Decimal(9000), Decimal(36000), STATED_SOURCE),
}


@dataclass(frozen=True, slots=True)
class PoolBasis:
    """What the pool costs and serves: the one source of its per-token prices and its fixed cost."""

    gpus: int = DEFAULT_GPUS
    gpu_hour_usd: Decimal = DEFAULT_GPU_HOUR_USD
    throughput: Mapping[str, Throughput] = field(default_factory=lambda: dict(STATED))

    @property
    def hourly_usd(self) -> Decimal:
        return self.gpus * self.gpu_hour_usd


@dataclass(frozen=True, slots=True)
class Derived:
    """A pool price and how it was worked out (shown by `corral prices`)."""

    input: Decimal
    output: Decimal
    gpus: int
    gpu_hour_usd: Decimal
    throughput: Throughput

    def explain(self) -> str:
        t = self.throughput
        return (
            f"{self.gpus} GPUs x {self.gpu_hour_usd:,.2f} USD/GPU-hour / "
            f"{t.input_tokens_per_s:,.0f} input | {t.output_tokens_per_s:,.0f} output tok/s "
            f"({t.source or 'configured'})"
        )


class NoThroughput(ValueError):
    """The pool has no throughput stated for a model the price book prices by GPU-hours."""


def per_1m(hourly_usd: Decimal, tokens_per_s: Decimal) -> Decimal:
    return (hourly_usd / SECONDS_PER_HOUR / tokens_per_s * PER).quantize(PRICE_PLACES)


def derive(basis: PoolBasis, model: str) -> Derived:
    """The pool's input and output USD per 1M tokens for `model`."""
    rate = basis.throughput.get(model)
    if rate is None:
        raise NoThroughput(
            f"the pool has no throughput stated for {model} "
            f"(providers.vllm.vllm.throughput.{model}: output_tokens_per_s, input_tokens_per_s)"
        )
    gpus = rate.gpus if rate.gpus is not None else basis.gpus
    hourly = gpus * basis.gpu_hour_usd
    return Derived(
        input=per_1m(hourly, rate.input_tokens_per_s),
        output=per_1m(hourly, rate.output_tokens_per_s),
        gpus=gpus,
        gpu_hour_usd=basis.gpu_hour_usd,
        throughput=rate,
    )
