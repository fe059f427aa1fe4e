"""Spend budgets per team and per API key, from the policy's `budgets`.

Spend so far in the period is read from the ledger at start (so it survives restarts),
then kept up to date from every usage event the gateway records. With Redis, every
replica adds its spend to shared counters and reads everyone's back in the background,
so the check on the request path stays a dictionary lookup. Past `warn_at` a request is
served with an `x-corral-budget-warning` header (and a log line); past the limit it is
refused with 402 `budget_exceeded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine

from gateway.errors import Code, error
from gateway.metering.events import UsageEvent
from gateway.metering.reports import ReportError, SpendQuery, spend
from gateway.routing.policy.model import Budget, Policy

log = logging.getLogger("corral.budgets")

#: Redis counters hold spend in units of 1e-10 USD (integers add exactly).
UNITS = Decimal("1e10")
SYNC_INTERVAL_S = 0.5


def period_start(budget: Budget, today: date) -> date:
    return today if budget.period == "day" else today.replace(day=1)


def _subject(budget: Budget) -> tuple[str, str]:
    return ("team", budget.team) if budget.team is not None else ("key", budget.key or "")


def usd(amount: Decimal) -> str:
    """An amount as people read it: cents from a cent up ("12.50"), two significant digits
    below ("0.000021"), never a rounded-away "0.00" for a budget of fractions of a cent."""
    if amount == 0:
        return "0"
    if abs(amount) >= Decimal("0.01"):
        return f"{amount:.2f}"
    return format(amount.quantize(Decimal(1).scaleb(amount.adjusted() - 1)).normalize(), "f")


@dataclass(frozen=True, slots=True)
class Verdict:
    warnings: tuple[str, ...] = ()


class Budgets:
    def __init__(self, policy: Callable[[], Policy], today: Callable[[], date] = date.today) -> None:
        self.policy = policy
        self.today = today
        #: (kind, subject, period start) -> spend in USD
        self.spent: dict[tuple[str, str, date], Decimal] = {}
        #: What the ledger held at start: the value a shared counter starts from.
        self._ledger: dict[tuple[str, str, date], Decimal] = {}
        self._pending: dict[str, int] = {}
        self._logged: set[str] = set()
        self._redis: aioredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    def _key(self, budget: Budget) -> tuple[str, str, date]:
        kind, subject = _subject(budget)
        return kind, subject, period_start(budget, self.today())

    def seed_from_ledger(self, engine: Engine) -> None:
        """Spend already in the ledger for each budget's current period (blocking: run in a thread)."""
        for budget in self.policy().budgets:
            kind, subject, start = self._key(budget)
            query = SpendQuery(start, self.today(), by=(kind,), filters=((kind, subject),))
            try:
                report = spend(engine, query)
            except ReportError as exc:
                log.warning("budget %s %s: cannot read the ledger: %s", kind, subject, exc)
                continue
            self._ledger[(kind, subject, start)] = report.total.cost_usd
            self.spent[(kind, subject, start)] = report.total.cost_usd + self.spent.get((kind, subject, start), 0)

    def record(self, event: UsageEvent) -> None:
        """Add a finished request's cost (re-asks included) to every budget it falls under."""
        budgets = self.policy().budgets
        if not budgets:
            return
        cost = event.cost_usd + sum((a.cost_usd for a in event.attempts), Decimal(0))
        if not cost:
            return
        for budget in budgets:
            kind, subject = _subject(budget)
            if (kind == "team" and event.team == subject) or (kind == "key" and event.api_key_id == subject):
                slot = self._key(budget)
                self.spent[slot] = self.spent.get(slot, Decimal(0)) + cost
                if self._redis is not None:
                    name = _redis_name(slot)
                    self._pending[name] = self._pending.get(name, 0) + int(cost * UNITS)

    def check(self, team: str | None, key: str | None) -> Verdict:
        """Raise 402 when a budget this request falls under is spent; else any warnings."""
        warnings = []
        for budget in self.policy().budgets:
            kind, subject = _subject(budget)
            if (kind == "team" and team != subject) or (kind == "key" and key != subject):
                continue
            spent = self.spent.get(self._key(budget), Decimal(0))
            what = f"{kind} {subject} budget of {usd(budget.limit_usd)} USD per {budget.period}"
            if spent >= budget.limit_usd:
                raise error(
                    Code.BUDGET_EXCEEDED,
                    f"{what} is spent ({usd(spent)} USD); requests are refused until the period resets",
                    extra={
                        "budget": {
                            "kind": kind,
                            "subject": subject,
                            "limit_usd": str(budget.limit_usd),
                            "spent_usd": f"{spent:.6f}",
                            "period": budget.period,
                        }
                    },
                )
            if spent >= budget.limit_usd * Decimal(str(budget.warn_at)):
                warning = f"{what}: {spent / budget.limit_usd:.0%} used"
                warnings.append(warning)
                self._log_once(warning)
        return Verdict(tuple(warnings))

    def _log_once(self, warning: str) -> None:
        """One log line per budget and percentage point, not one per request."""
        if warning not in self._logged:
            self._logged.add(warning)
            log.warning("budget warning: %s", warning)

    def usage(self) -> list[tuple[str, str, str, float]]:
        """(kind, subject, period, fraction used) for every budget, for /metrics."""
        out: list[tuple[str, str, str, float]] = []
        for budget in self.policy().budgets:
            kind, subject = _subject(budget)
            spent = self.spent.get(self._key(budget), Decimal(0))
            out.append((kind, subject, budget.period, float(spent / budget.limit_usd) if budget.limit_usd else 0.0))
        return out

    # -- sharing across replicas -----------------------------------------------------------

    async def share(self, url: str) -> None:
        """Keep the counters in Redis (seeded from our ledger view if absent) and follow them."""
        self._redis = aioredis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        self._task = asyncio.create_task(self._sync_forever(), name="corral-budgets")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._sync()
            await self._redis.aclose()

    async def _sync_forever(self) -> None:
        while True:
            try:
                await self._sync()
            except (RedisError, OSError) as exc:
                log.warning("budgets: redis unavailable (%s); enforcing on this replica's view", type(exc).__name__)
            await asyncio.sleep(SYNC_INTERVAL_S)

    async def _sync(self) -> None:
        assert self._redis is not None
        slots = [self._key(b) for b in self.policy().budgets]
        if not slots:
            return
        pending, self._pending = self._pending, {}
        pipe = self._redis.pipeline(transaction=False)
        for slot in slots:
            name = _redis_name(slot)
            pipe.set(name, int(self._ledger.get(slot, Decimal(0)) * UNITS), nx=True, ex=40 * 86400)
            if pending.get(name):
                pipe.incrby(name, pending[name])
        for slot in slots:
            pipe.get(_redis_name(slot))
        results = await pipe.execute()
        for slot, value in zip(slots, results[-len(slots) :], strict=True):
            if value is not None:
                self.spent[slot] = Decimal(int(value)) / UNITS


def _redis_name(slot: tuple[str, str, date]) -> str:
    kind, subject, start = slot
    return f"corral:budget:{kind}:{subject}:{start.isoformat()}"
