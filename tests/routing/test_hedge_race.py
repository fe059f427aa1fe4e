"""The hedge race on the event loop (`gateway.dispatch.hedge.Racer`): who wins, what is
cancelled, what is disposed of, and that nothing starts the hedge early or at all when the
budget says no."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from gateway.dispatch.hedge import Raced, RaceFailed, Racer


class Attempt:
    """An attempt that answers (or fails) after `seconds`, noting whether it ran to its end
    or was cancelled."""

    def __init__(self, seconds: float, answer: str = "", error: Exception | None = None) -> None:
        self.seconds, self.answer, self.error = seconds, answer, error
        self.started = self.cancelled = False

    def __call__(self) -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            self.started = True
            try:
                await asyncio.sleep(self.seconds)
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            if self.error is not None:
                raise self.error
            return self.answer

        return run


def race(first: Attempt, second: Attempt, delay_s: float = 0.05, allow: bool = True) -> tuple[Raced[str], list[str]]:
    disposed: list[str] = []

    async def dispose(result: str) -> None:
        disposed.append(result)

    async def go() -> Raced[str]:
        return await Racer().race(first(), second(), delay_s, lambda: allow, dispose)

    return asyncio.run(go()), disposed


def test_a_first_answer_within_the_delay_never_starts_the_hedge() -> None:
    first, second = Attempt(0.01, "a"), Attempt(0.01, "b")
    raced, _ = race(first, second)
    assert (raced.result, raced.winner, raced.hedged) == ("a", 0, False)
    assert not second.started


def test_the_hedge_wins_and_the_slow_first_is_cancelled() -> None:
    first, second = Attempt(5.0, "a"), Attempt(0.01, "b")
    raced, _ = race(first, second)
    assert (raced.result, raced.winner, raced.hedged, raced.cancelled) == ("b", 1, True, True)
    assert first.cancelled


def test_the_first_wins_and_the_slower_hedge_is_cancelled() -> None:
    first, second = Attempt(0.1, "a"), Attempt(5.0, "b")
    raced, _ = race(first, second)
    assert (raced.result, raced.winner, raced.cancelled) == ("a", 0, True)
    assert second.cancelled


def test_a_failed_hedge_leaves_the_first_to_answer() -> None:
    first, second = Attempt(0.15, "a"), Attempt(0.01, error=ValueError("boom"))
    raced, _ = race(first, second)
    assert (raced.result, raced.winner, raced.cancelled) == ("a", 0, False)


def test_both_failing_reports_both_errors() -> None:
    first, second = Attempt(0.1, error=ValueError("one")), Attempt(0.01, error=KeyError("two"))
    with pytest.raises(RaceFailed) as caught:
        race(first, second)
    assert sorted(i for i, _ in caught.value.errors) == [0, 1]


def test_a_first_error_before_the_delay_propagates_without_a_hedge() -> None:
    first, second = Attempt(0.01, error=ValueError("early")), Attempt(0.01, "b")
    with pytest.raises(ValueError, match="early"):
        race(first, second)
    assert not second.started


def test_no_hedge_when_the_budget_says_no() -> None:
    first, second = Attempt(0.1, "a"), Attempt(0.01, "b")
    raced, _ = race(first, second, allow=False)
    assert (raced.result, raced.hedged) == ("a", False)
    assert not second.started


def test_both_answering_at_once_disposes_of_the_loser() -> None:
    first, second = Attempt(0.0, "a"), Attempt(0.0, "b")

    async def go() -> tuple[Raced[str], list[str]]:
        disposed: list[str] = []

        async def dispose(result: str) -> None:
            disposed.append(result)

        gate = asyncio.Event()

        async def held(attempt: Attempt) -> str:
            await gate.wait()
            return await attempt()()

        async def open_gate() -> None:
            await asyncio.sleep(0.02)
            gate.set()

        opener = asyncio.ensure_future(open_gate())
        raced = await Racer().race(lambda: held(first), lambda: held(second), 0.01, lambda: True, dispose)
        await opener
        return raced, disposed

    raced, disposed = asyncio.run(go())
    assert raced.winner == 0 and raced.loser_result == "b" and disposed == ["b"]


def test_cancelling_the_race_cancels_both_attempts() -> None:
    """The request's deadline (or its client leaving) ends both attempts."""
    first, second = Attempt(5.0, "a"), Attempt(5.0, "b")

    async def go() -> None:
        async def dispose(_: str) -> None:
            return None

        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await Racer().race(first(), second(), 0.02, lambda: True, dispose)

    asyncio.run(go())
    assert first.cancelled and second.cancelled
