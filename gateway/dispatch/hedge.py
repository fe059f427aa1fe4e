"""The hedge race: the first attempt runs; if it has not answered (a stream's first chunk,
a whole answer) within the delay, the second starts too; the first to answer wins and the
other is cancelled at once. Cancelling an attempt's task closes its upstream connection
(the transport never returns an unfinished connection to its pool) and, on the vLLM
pool, releases the replica's slot; an opened stream that lost is closed by `dispose`.

`Racer` runs the race on the event loop's clock; the simulator substitutes one that runs
it in virtual time (`gateway.simulate.racer`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Generic, TypeVar

from gateway.catalogue.deployments import Deployment
from gateway.metering.events import AttemptRecord
from gateway.providers.base import Completion, UpstreamStream
from gateway.schema.usage import Usage

T = TypeVar("T")
#: The error kind an attempt that lost a hedge race is recorded with.
HEDGE_LOST = "hedge_lost"


@dataclass(slots=True)
class Raced(Generic[T]):
    result: T
    #: 0: the first attempt answered, 1: the hedge did.
    winner: int
    #: The hedge was started (so there was a race, and a loser unless one attempt failed).
    hedged: bool
    #: The loser was still running and was cancelled.
    cancelled: bool = False
    #: A loser that had answered too (both at once): its result, already disposed of.
    loser_result: T | None = None
    #: Errors of an attempt that failed before the other won (index 0 the first, 1 the hedge).
    errors: list[tuple[int, BaseException]] = field(default_factory=list)


class RaceFailed(Exception):
    """Both attempts failed: the errors by attempt (index 0 the first, 1 the hedge)."""

    def __init__(self, errors: list[tuple[int, BaseException]]) -> None:
        super().__init__("both hedged attempts failed")
        self.errors = errors


class Racer:
    async def race(
        self,
        first: Callable[[], Awaitable[T]],
        second: Callable[[], Awaitable[T]],
        delay_s: float,
        may_hedge: Callable[[], bool],
        dispose: Callable[[T], Awaitable[None]],
    ) -> Raced[T]:
        """An error of the first attempt before the delay propagates as it is (no race)."""
        tasks: list[asyncio.Task[T]] = [asyncio.ensure_future(first())]
        try:
            done, _ = await asyncio.wait(tasks, timeout=delay_s)
            if done or not may_hedge():
                return Raced(await tasks[0], 0, False)
            tasks.append(asyncio.ensure_future(second()))
            return await self._finish(tasks, dispose)
        except BaseException:
            await _cancel(tasks)
            raise

    async def _finish(self, tasks: list[asyncio.Task[T]], dispose: Callable[[T], Awaitable[None]]) -> Raced[T]:
        errors: list[tuple[int, BaseException]] = []
        pending: set[asyncio.Task[T]] = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            answered = [i for i, t in enumerate(tasks) if t in done and t.exception() is None]
            errors += [(i, exc) for i, t in enumerate(tasks) if t in done and (exc := t.exception()) is not None]
            if not answered:
                continue
            winner = answered[0]
            raced = Raced(tasks[winner].result(), winner, True, errors=errors)
            if len(answered) > 1:
                loser = tasks[answered[1]].result()
                raced.loser_result = loser
                await dispose(loser)
            elif pending:
                raced.cancelled = True
                await _cancel(list(pending))
            return raced
        raise RaceFailed(errors)


async def _cancel(tasks: list[asyncio.Task[T]]) -> None:
    """Cancel and wait for each (the attempt's own clean-up runs before we go on)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task


async def dispose(result: object) -> None:
    """Release what a losing attempt that did answer holds (an opened stream's connection)."""
    if isinstance(result, tuple) and result and isinstance(result[0], UpstreamStream):
        await asyncio.shield(result[0].aclose())


def mark_race(
    records: list[AttemptRecord],
    lost: Deployment,
    won: Deployment,
    answer: object,
    prompt_tokens: int,
    cost: Callable[[Deployment, Usage], Decimal],
    *,
    cancelled: bool,
) -> None:
    """Rewrite a race's records: the loser's with what its provider bills for a cancelled
    request, the winner's marked and moved last (the ledger's answering attempt).

    A cancelled attempt never got a usage report (the connection closed before one), so it
    is billed its prompt, estimated (`usage_estimated`; see docs/providers.md, 5.2); a loser
    that answered at the same moment as the winner is billed what it reported. A loser that
    had failed before the winner answered (`cancelled` false) keeps its error record. Each
    side made one try in the race, so its record is the last one of its deployment."""
    at = _last_index(records, won)
    winner = records.pop(at) if at is not None else None
    at = _last_index(records, lost) if cancelled else None
    if at is not None:
        old = records[at]
        usage = answer.usage if isinstance(answer, Completion) else Usage(prompt_tokens, 0, 0, True)
        records[at] = AttemptRecord(
            old.provider,
            old.model_id,
            HEDGE_LOST,
            None,
            old.latency_ms,
            f"lost the hedge race to {won.provider}; cancelled",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            usage_estimated=usage.estimated,
            cost_usd=cost(lost, usage),
            hedge="lost",
        )
    if winner is not None:
        records.append(replace(winner, hedge="won"))


def _last_index(records: list[AttemptRecord], dep: Deployment) -> int | None:
    for i in range(len(records) - 1, -1, -1):
        if (records[i].provider, records[i].model_id) == (dep.provider, dep.model_id):
            return i
    return None
