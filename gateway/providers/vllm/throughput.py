"""What the pool is generating now, measured from its replicas' own counters
(`vllm:prompt_tokens_total`, `vllm:generation_tokens_total`, labelled by `model_name`;
docs/providers.md#73-vllm-prometheus-metrics): each replica's `/metrics` is read twice,
`seconds` apart, and the counters' growth divided by the time between the reads.

This is the throughput under the load of that moment, not the pool's capacity, and it is
only shown beside the stated figure (`corral prices --measure-s`): a price is never derived
from it, so no estimate is ever fed back into itself. Used by the CLI only (one short-lived
session per call, never on the request path)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

_COUNTERS = {"vllm:prompt_tokens_total": 0, "vllm:generation_tokens_total": 1}
_FAMILIES = ("vllm:prompt_tokens", "vllm:generation_tokens")


@dataclass(frozen=True, slots=True)
class Measured:
    """Tokens per second over `over_s`, summed over the replicas serving one model id."""

    model_id: str
    input_tokens_per_s: float
    output_tokens_per_s: float
    over_s: float
    replicas: int


def token_counters(text: str) -> dict[str, tuple[float, float]]:
    """model_name -> (prompt tokens, generation tokens) so far, summed over engines."""
    keep = [line for line in text.splitlines() if line.startswith(_FAMILIES) or line.startswith("# TYPE vllm:")]
    found: dict[str, list[float]] = {}
    for family in text_string_to_metric_families("\n".join(keep) + "\n"):
        for sample in family.samples:
            index = _COUNTERS.get(sample.name)
            if index is None:
                continue
            model = sample.labels.get("model_name", "")
            found.setdefault(model, [0.0, 0.0])[index] += sample.value
    return {model: (values[0], values[1]) for model, values in found.items()}


async def _scrape(session: aiohttp.ClientSession, url: str) -> dict[str, tuple[float, float]]:
    async with session.get(f"{url.rstrip('/')}/metrics") as response:
        response.raise_for_status()
        return token_counters(await response.text())


async def measure(
    urls: list[str],
    seconds: float,
    api_key: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[Measured]:
    """Each model's input and output tokens/s across `urls` over about `seconds`. A replica
    that cannot be read, or whose counters went back (a restart), is left out."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        first, started = await _read_all(session, urls), time.monotonic()
        await sleep(seconds)
        second, elapsed = await _read_all(session, urls), time.monotonic() - started
    rates: dict[str, list[float]] = {}
    for url, after in second.items():
        before = first.get(url, {})
        for model, (prompt, generation) in after.items():
            if model not in before or prompt < before[model][0] or generation < before[model][1]:
                continue
            entry = rates.setdefault(model, [0.0, 0.0, 0.0])
            entry[0] += prompt - before[model][0]
            entry[1] += generation - before[model][1]
            entry[2] += 1
    span = max(elapsed, 1e-9)
    return [Measured(m, p / span, g / span, elapsed, int(n)) for m, (p, g, n) in sorted(rates.items())]


async def _read_all(session: aiohttp.ClientSession, urls: list[str]) -> dict[str, dict[str, tuple[float, float]]]:
    results = await asyncio.gather(*(_scrape(session, url) for url in urls), return_exceptions=True)
    return {url: r for url, r in zip(urls, results, strict=True) if not isinstance(r, BaseException)}
