"""GET /status: what this gateway process is doing now, for an SRE (admin scope). Every
deployment with its state and live latency estimates, the pool's replicas, the policy in
force and recent refusals; the page itself is `gateway.api.status_page`. Read from the
live state at request time (no I/O). Signed in like the spend page (gateway.api.signin)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from gateway.api.auth import authenticate
from gateway.api.signin import sign_in_required, signed_in
from gateway.api.status_page import SignedIn, forbidden, render
from gateway.catalogue.deployments import Deployment
from gateway.runtime import Runtime

#: How far back "recent refusals" look.
RECENT_WINDOW_S = 900.0
PAGE = "/status"
SCOPE = "admin"
TITLE = "Corral status"


@dataclass(frozen=True, slots=True)
class DeploymentRow:
    key: str
    state: str
    #: Why, and for how long, when it is not active.
    detail: str
    ttft_ms: float | None
    tokens_per_s: float | None
    samples: int


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    url: str
    healthy: bool
    running: int
    waiting: int
    kv_cache_usage: float
    #: Seconds since the last good health check (None: never).
    age_s: float | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: datetime
    deployments: tuple[DeploymentRow, ...]
    replicas: tuple[ReplicaRow, ...]
    policy_name: str
    policy_file: str
    policy_digest: str
    policy_loaded_at: datetime
    refusals: dict[tuple[str, str], int]
    window_s: float


def _state(rt: Runtime, dep: Deployment, now: float) -> tuple[str, str]:
    state = rt.state
    if dep.provider not in rt.providers:
        return "not configured", "no credentials or adapter for this provider"
    if dep.retired_on(datetime.now(UTC).date()):
        return "retired", dep.retired_reason
    if dep.key in state.out_of_rotation:
        return "out of rotation", state.out_of_rotation[dep.key]
    breaker = state.breakers.get(dep.key)
    status = breaker.status(now) if breaker is not None else "closed"
    if breaker is not None and status == "open":
        return "breaker open", f"tried again in {breaker.retry_in(now):.0f} s"
    if status == "half_open":
        return "breaker half-open", "the next request probes it"
    left = state.cooldowns.get(dep.key, 0.0) - now
    if left > 0:
        return "cooling down", f"{left:.0f} s left (rate-limited upstream)"
    return "active", ""


def _row(rt: Runtime, dep: Deployment, now: float) -> DeploymentRow:
    state, detail = _state(rt, dep, now)
    stats = rt.state.stats.get(dep.key)
    if stats is None or not stats.samples:
        return DeploymentRow(dep.key, state, detail, None, None, 0)
    return DeploymentRow(dep.key, state, detail, stats.ttft_ms(now), stats.tokens_per_s(now), stats.samples)


def snapshot(rt: Runtime) -> Snapshot:
    now = rt.state.clock()
    catalogue = rt.catalogue
    rows = tuple(_row(rt, dep, now) for model in catalogue.models for dep in catalogue.deployments(model))
    mono = time.monotonic()
    replicas = tuple(
        ReplicaRow(
            r.url,
            r.healthy,
            r.running,
            r.waiting,
            r.kv_cache_usage,
            None if r.last_ok_at is None else max(0.0, mono - r.last_ok_at),
        )
        for provider in rt.providers.values()
        for r in provider.pool_state()
    )
    holder = rt.policy
    return Snapshot(
        at=datetime.now(UTC),
        deployments=rows,
        replicas=replicas,
        policy_name=holder.current.name,
        policy_file=str(holder.path) if holder.path else "(built-in default)",
        policy_digest=holder.digest or "",
        policy_loaded_at=holder.loaded_at,
        refusals=rt.metrics.recent_refusals(RECENT_WINDOW_S),
        window_s=RECENT_WINDOW_S,
    )


def make_status_handler(rt: Runtime) -> Any:
    """A bearer key with `admin` (scripts), or the browser session of the spend page's sign-in
    when its key has `admin`. No session: the sign-in form (401), which returns here; a session
    whose key lacks `admin`: a page saying so (403), never raw JSON."""

    async def status(request: Request) -> Response:
        session: SignedIn | None = None
        if "authorization" in request.headers or not rt.keys.enabled:
            authenticate(request, rt.keys, SCOPE)
        else:
            found = signed_in(request, rt)
            if found is None:
                return sign_in_required(request, page=PAGE, scope=SCOPE, title=TITLE)
            record, csrf = found[1], rt.sessions.csrf(found[0].token)
            if not record.allows(SCOPE):
                rt.keys.refusals.auth_failed("scope", SCOPE)
                return HTMLResponse(forbidden(record, csrf), status_code=403, headers={"cache-control": "no-store"})
            session = SignedIn(record.key_id or "", csrf)
        return HTMLResponse(render(snapshot(rt), session), headers={"cache-control": "no-store"})

    return status
