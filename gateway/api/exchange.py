"""One client request through a chat-shaped endpoint (`/v1/chat/completions`, `/v1/responses`,
`/v1/completions`): its id, its admission, and the rule by which it is accounted for exactly
once whatever happens. The endpoints differ in how they read a body and shape an answer;
this is what they share, in one place.

    with Exchange(rt) as ex:
        ...                                   # authenticate, read, parse: ex.model = req.model
        call = await ex.admit(request, caller, req)
        ...                                   # dispatch
    total = rt.accounting.served(call, outcome, usage)

Leaving the block with a `GatewayError` counts the request as refused (before it was admitted)
or failed (after: its `Call` exists) and puts the request id on the error's headers; any other
exception counts it as crashed. A block left normally is the endpoint's to account for
(`served`, or the stream's relay).
"""

from __future__ import annotations

import itertools
import secrets
import time
from decimal import Decimal
from types import TracebackType

from starlette.requests import Request

from gateway.api.asgi import trace_carrier
from gateway.api.auth import admit
from gateway.dispatch.accounting import COST_PLACES, Call
from gateway.dispatch.loop import Outcome
from gateway.errors import GatewayError
from gateway.keys.model import KeyRecord
from gateway.runtime import Runtime
from gateway.schema.chat import ChatRequest
from gateway.schema.params import IGNORED_HEADER
from gateway.telemetry.tracing import request_span

#: A random per-process prefix and a counter: unique across replicas without a syscall per request.
_ID_PREFIX = "req_" + secrets.token_hex(6)
_ids = itertools.count(1)


def next_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):010x}"


class Exchange:
    __slots__ = ("call", "model", "request_id", "rt", "started")

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.request_id = next_request_id()
        self.started = time.perf_counter()
        #: The logical model, once the body is parsed (labels the refusal or crash).
        self.model: str | None = None
        #: The admitted request on its way, once admitted.
        self.call: Call | None = None

    def __enter__(self) -> Exchange:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, trace: TracebackType | None
    ) -> None:
        if err is None:
            return
        accounting = self.rt.accounting
        if isinstance(err, GatewayError):
            if self.call is not None:
                accounting.failed(self.call, err)
            else:
                accounting.refused(self.model, err)
            err.headers.setdefault("x-corral-request-id", self.request_id)
        elif isinstance(err, Exception):
            accounting.crashed(self.model)

    async def admit(self, request: Request, caller: KeyRecord, req: ChatRequest) -> Call:
        """Apply the caller's key (rate limits, team) and start the request's `Call`, with the
        server span continuing the caller's trace."""
        rt = self.rt
        self.model = req.model
        key_id, charge = await admit(rt.keys, caller, req, rt.policy.current.teams.require_key_team)
        span = request_span(rt.tracer, trace_carrier(request), req.model, req.request_id)
        self.call = Call(req, self.started, key_id, charge, span)
        return self.call


def chat_headers(request_id: str, outcome: Outcome, cost: Decimal, warnings: tuple[str, ...] = ()) -> dict[str, str]:
    """The `x-corral-*` headers of an answer: who served it, in how many attempts, at what cost."""
    headers = {
        "x-corral-request-id": request_id,
        "x-corral-provider": outcome.deployment.provider,
        "x-corral-model": outcome.deployment.model_id,
        "x-corral-attempts": str(len(outcome.attempts)),
        "x-corral-cost-usd": str(cost.quantize(COST_PLACES)),
    }
    if outcome.hedge_winner is not None:
        headers["x-corral-hedged"] = "true"
        headers["x-corral-hedge-winner"] = outcome.hedge_winner
    if outcome.tool_validation is not None:
        headers["x-corral-tool-validation"] = outcome.tool_validation
    if warnings:
        headers["x-corral-budget-warning"] = "; ".join(warnings)
    if outcome.ignored:
        headers[IGNORED_HEADER] = ", ".join(outcome.ignored)
    return headers
