"""The hedge race in virtual time. The simulated backends answer at once in real time and
add their answer's duration to the clock, so the two attempts run one after the other:
each is timed from the race's start (the hedge from the delay), and the clock is then
set to when the race was decided, as if they had overlapped. The decision, the delay,
the attempt budget and the cost cap are the real dispatcher's; only the waiting differs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

from gateway.dispatch.hedge import Raced, RaceFailed, Racer
from gateway.simulate.backend import Clock

T = TypeVar("T")
_Run = tuple[T | None, BaseException | None, float]


class VirtualRacer(Racer):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def _timed(self, attempt: Callable[[], Awaitable[T]], start_s: float) -> _Run[T]:
        self.clock.spent_s = start_s
        try:
            result = await attempt()
        except Exception as exc:  # an attempt's error is one outcome of the race
            return None, exc, self.clock.spent_s
        return result, None, self.clock.spent_s

    async def race(
        self,
        first: Callable[[], Awaitable[T]],
        second: Callable[[], Awaitable[T]],
        delay_s: float,
        may_hedge: Callable[[], bool],
        dispose: Callable[[T], Awaitable[None]],
    ) -> Raced[T]:
        start = self.clock.spent_s
        one = await self._timed(first, start)
        if one[2] - start <= delay_s or not may_hedge():
            self.clock.spent_s = one[2]
            if one[1] is not None:
                raise one[1]
            return Raced(cast(T, one[0]), 0, False)
        two = await self._timed(second, start + delay_s)
        runs = [one, two]
        answered = sorted((run[2], i) for i, run in enumerate(runs) if run[1] is None)
        if not answered:
            self.clock.spent_s = max(one[2], two[2])
            raise RaceFailed([(i, run[1]) for i, run in enumerate(runs) if run[1] is not None])
        at, winner = answered[0]
        loser = runs[1 - winner]
        self.clock.spent_s = at
        result = cast(T, runs[winner][0])
        errors = [(1 - winner, loser[1])] if loser[1] is not None and loser[2] <= at else []
        raced = Raced(result, winner, True, cancelled=loser[2] > at, errors=errors)
        if loser[1] is None:
            await dispose(cast(T, loser[0]))
        return raced
