"""A stream on its way to the client: chunks as they arrived upstream, relabelled with the
model the client asked for, and, once it ends (finished, failed mid-way, or abandoned by
the client), its accounting: usage (reported, or estimated from the text relayed), cost,
latency statistics, ledger row, token bucket. A failure mid-stream becomes the error
object to send in the stream's last event, so the HTTP edge never sees an upstream error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from gateway.dispatch.accounting import Accounting, Call
from gateway.dispatch.loop import OpenStream
from gateway.errors import Code
from gateway.providers.errors import UpstreamError
from gateway.schema.chat import CHARS_PER_TOKEN
from gateway.schema.usage import Usage
from gateway.telemetry.tracing import attach, detach

Batch = list[dict[str, Any]]


class Relay:
    def __init__(self, accounting: Accounting, opened: OpenStream, call: Call) -> None:
        self.accounting = accounting
        self.opened = opened
        self.call = call
        #: "ok" once the upstream stream ended well, "error" when it failed mid-way;
        #: "cancelled" while running and when the client left before the end.
        self.status = "cancelled"
        #: The error object to send as the stream's last event when it failed mid-way.
        self.error: dict[str, Any] | None = None
        self.usage = Usage()
        #: Cost of the answer plus any billed re-asks (set once accounted).
        self.total_cost = Decimal(0)
        #: The last chunk relayed (the closing usage chunk copies its id and created time).
        self.last: dict[str, Any] = opened.first[0] if opened.first else {}
        self._chars = 0
        self._ttft_ms: float | None = None
        self._closed = False

    async def batches(self) -> AsyncIterator[Batch]:
        """Chunks grouped as they arrived upstream (the tool-call gate releases them one by
        one), relabelled. One generator over the upstream's batches, not two: each layer of
        async generators costs every batch of every stream a resumption."""
        model = self.call.req.model
        opened = self.opened
        # Re-asks made while relaying become children of the request span.
        token = attach(self.call.span)
        try:
            if opened.guarded is not None:
                async for chunk in opened.guarded:
                    yield self._relabelled([chunk], model)
            else:
                if opened.first:
                    yield self._relabelled(opened.first, model)
                async for batch in opened.batches:
                    yield self._relabelled(batch, model)
            self.status = "ok"
        except UpstreamError as exc:
            self.status = "error"
            self.error = self._error_body(exc)
        finally:
            detach(token)

    @property
    def ended(self) -> bool:
        """The upstream has said its stream is over: the batch just yielded is the last, and
        the rest of the iteration reads nothing. The HTTP edge holds that batch back to send
        it in one write with the closing frames (a stream that arrives whole, as short
        answers do, then costs one write and one wake-up of the client, not two). Never
        with the tool-call gate, which releases chunks one by one."""
        return not self.gated and self.opened.stream.ended

    @property
    def gated(self) -> bool:
        """The tool-call gate stands between upstream and client (it may hold chunks back)."""
        return self.opened.guarded is not None

    def _relabelled(self, batch: Batch, model: str) -> Batch:
        """`batch` with the client's model name, its characters counted (the usage estimate
        when a backend reports none) and the time to its first chunk taken."""
        if self._ttft_ms is None:
            self._ttft_ms = (time.perf_counter() - self.call.started) * 1000
        chars = 0
        for chunk in batch:
            chunk["model"] = model
            for choice in chunk.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    chars += len(content)
        if batch:
            self._chars += chars
            self.last = batch[-1]
        return batch

    def _error_body(self, exc: UpstreamError) -> dict[str, Any]:
        guarded = self.opened.guarded
        if guarded is not None and guarded.failure is exc:
            return guarded.guard.failure().body()
        message = f"{exc.provider} failed mid-stream: {exc.message}"
        return {"error": {"message": message, "type": "upstream_error", "code": Code.UPSTREAM_FAILED, "param": None}}

    async def close(self) -> None:
        """Account for the stream and release its connection (once, whatever happened)."""
        if self._closed:
            return
        self._closed = True
        opened, req = self.opened, self.call.req
        guarded = opened.guarded
        reported = guarded.usage if guarded is not None else opened.stream.usage
        self.usage = reported or Usage(req.prompt_tokens_estimate, self._chars // CHARS_PER_TOKEN, 0, True)
        outcome = opened.outcome
        if guarded is not None and guarded.billed:
            # The invalid streamed answers came before the one delivered (the last attempt).
            outcome.attempts[-1:-1] = guarded.billed
        if guarded is not None:
            outcome.tool_validation = guarded.guard.verdict
        if self.status == "ok" and self._ttft_ms is not None:
            generation_s = time.perf_counter() - self.call.started - self._ttft_ms / 1000
            waited_ms = max(opened.attempt_started - self.call.started, 0.0) * 1000 if opened.attempt_started else 0.0
            self.accounting.dispatcher.observe_stream(
                outcome.deployment, self._ttft_ms, self.usage.completion_tokens, generation_s, waited_ms=waited_ms
            )
        self.total_cost = self.accounting.served(self.call, outcome, self.usage, self.status, self._ttft_ms)
        stream = guarded.stream if guarded is not None else opened.stream
        if not stream.released:  # a stream read to its end released its connection itself
            await asyncio.shield(stream.aclose())
