"""The second fence around tool-call validation: a run that could be expensive leaves the
event loop and runs in a child process under a CPU budget.

RE2 (linear_regex.py) keeps every pattern linear, but a client's schema and a model's
answer can still make jsonschema work for seconds: a long `enum` against a long array, a
`$ref` that doubles the work per level, `uniqueItems` over thousands of objects. Such a
run on the event loop would hold every other request and `/healthz` of the worker.

- **Inline when cheap.** `cost.py` estimates a run from the schema's expanded weight and
  the answer's size; at most `INLINE_UNITS` (~1 ms in the worst shape measured) and
  `INLINE_BYTES` it runs on the loop as before (a typical tool call: ~35 µs, no hop; a
  round trip to a validation process costs ~260 µs).
- **Otherwise off the loop, bounded.** One of `workers` threads hands the run to its own
  child process (`fence_child.py`) and waits on the pipe, so the loop only awaits a
  future. At most `workers` runs at a time per gateway worker; more wait their turn (and
  the request's deadline still applies to the wait).
- **A CPU budget per run.** The child stops the run when it has used `cpu_budget_s` of
  CPU; the parent kills a child that has not answered within the budget plus
  `WALL_GRACE_S` (stuck in C code, or starved) and starts another for the next run.

A run stopped by the budget gives an `Attempt` with `over_budget` set and one error
saying so: the answer is unverified, so it is not delivered (in `report` mode it is, with
the verdict `invalid`), it is not re-asked (the same schema would spend the budget again),
and the client gets 502 `tool_call_validation_failed` naming the budget, like any answer
that could not be made valid, after the other deployments of the plan had their turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from gateway.toolcalls.contract import Contract
from gateway.toolcalls.cost import INLINE_BYTES, INLINE_UNITS, UNBOUNDED, answer_nodes
from gateway.toolcalls.fence_child import BUDGET_ENV, MEMORY_ENV, READY, read_frame, write_frame
from gateway.toolcalls.model import Attempt, new_call_id
from gateway.toolcalls.schemas import CompiledSchema
from gateway.toolcalls.validate import check_message

__all__ = ["Fence", "FenceLimits", "close", "configure", "current", "fenced_check", "runs", "runs_inline"]

log = logging.getLogger("corral.toolcalls")

#: How much longer than the CPU budget the parent waits before killing the child.
WALL_GRACE_S = 2.0
#: The child's command (`-c`, not `-m`: the package already imports the module).
_CHILD = "from gateway.toolcalls.fence_child import main; main()"
#: Longest wait for a new child to import the validator and say READY.
START_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class FenceLimits:
    """The `validation:` section of the configuration (gateway.config.ValidationLimits)."""

    cpu_budget_s: float = 2.0
    workers: int = 2
    max_memory_mb: int = 1024


def runs_inline(contract: Contract, message: Mapping[str, Any]) -> bool:
    """Whether checking `message` is cheap enough for the event loop (see `cost.py`)."""
    units = 0
    text_bytes = 0
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            continue
        raw = function.get("arguments")
        text = raw if isinstance(raw, str) else ""
        text_bytes += len(text)
        name = function.get("name")
        schema = contract.tools.get(name) if isinstance(name, str) else None
        if schema is not None:
            added = _units(schema, answer_nodes(text))
            if added is None:
                return False
            units += added
    content = message.get("content")
    if isinstance(content, str) and content:
        text_bytes += len(content)
        nodes = answer_nodes(content)
        schemas = [contract.output] if contract.output is not None else []
        if contract.calls_allowed and not calls:
            schemas.extend(contract.tools.values())  # calls written as text: any tool
        for schema in schemas:
            added = _units(schema, nodes) if schema is not None else 0
            if added is None:
                return False
            units += added
    return units <= INLINE_UNITS and text_bytes <= INLINE_BYTES


def _units(schema: CompiledSchema, nodes: int) -> int | None:
    if schema.weight == UNBOUNDED:
        return None
    return schema.weight * nodes + (nodes * nodes if schema.unique else 0)


def over_budget(message: Mapping[str, Any], finish_reason: str | None, why: str) -> Attempt:
    """The verdict for a run the budget stopped: invalid, unverified, not to be re-asked."""
    return Attempt(dict(message), dict(message), finish_reason, errors=(why,), over_budget=True)


class Fence:
    """Usage: `fence = Fence(FenceLimits())`; `attempt = await fence.check(contract, message,
    finish_reason, repair=True)`; `fence.close()` stops the children. Children start on
    the first run that needs one (a gateway whose answers are all small never has one)."""

    def __init__(self, limits: FenceLimits) -> None:
        self.limits = limits
        self._threads = ThreadPoolExecutor(limits.workers, thread_name_prefix="corral-validate")
        self._local = threading.local()
        self._children: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        #: Runs sent off the loop / stopped by the budget (for tests and metrics).
        self.offloaded = 0
        self.stopped = 0

    async def check(
        self,
        contract: Contract,
        message: Mapping[str, Any],
        finish_reason: str | None,
        *,
        repair: bool,
        prior_calls: int = 0,
        read_text_calls: bool = True,
    ) -> Attempt:
        task = (contract, dict(message), finish_reason, repair, prior_calls, read_text_calls)
        self.offloaded += 1
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._run, task)

    def _run(self, task: tuple[Any, ...]) -> Attempt:
        message, finish_reason = task[1], task[2]
        budget = self.limits.cpu_budget_s
        try:
            child = self._child()
            write_frame(_stdin(child), pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL))
            ready, _, _ = select.select([_stdout(child)], [], [], budget + WALL_GRACE_S)
            payload = read_frame(_stdout(child)) if ready else None
        except (OSError, ValueError, pickle.PicklingError) as exc:
            log.error("tool-call validation process failed (%s); a new one starts", type(exc).__name__)
            payload, ready = None, [True]
        if payload is None:
            self._drop()
            self._count_stop()
            if ready:
                why = "$: validation stopped: its process ended during the check"
            else:
                waited = f"the budget ({budget:g} s) plus {WALL_GRACE_S:g} s"
                why = f"$: validation stopped: its process did not answer within {waited}"
            return over_budget(message, finish_reason, why)
        kind, value = pickle.loads(payload)
        if kind == "ok":
            attempt: Attempt = value
            return attempt
        self._count_stop()
        if kind == "budget":
            why = f"$: validation stopped: the check of this answer used its CPU budget ({budget:g} s)"
        else:
            why = f"$: validation stopped: {value} while checking this answer"
        return over_budget(message, finish_reason, why)

    def _count_stop(self) -> None:
        with self._lock:  # several validation threads
            self.stopped += 1

    def _child(self) -> subprocess.Popen[bytes]:
        child: subprocess.Popen[bytes] | None = getattr(self._local, "child", None)
        if child is not None and child.poll() is None:
            return child
        env = {**os.environ, BUDGET_ENV: str(self.limits.cpu_budget_s), MEMORY_ENV: str(self.limits.max_memory_mb)}
        child = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        with self._lock:
            self._children.add(child)
        self._local.child = child
        ready, _, _ = select.select([_stdout(child)], [], [], START_TIMEOUT_S)
        if not ready or read_frame(_stdout(child)) != READY:
            self._drop()
            raise OSError("the validation process did not start")
        return child

    def _drop(self) -> None:
        child: subprocess.Popen[bytes] | None = getattr(self._local, "child", None)
        self._local.child = None
        if child is not None:
            _stop(child)
            with self._lock:
                self._children.discard(child)

    @property
    def children(self) -> list[int]:
        """The pids of the running validation processes."""
        with self._lock:
            return [child.pid for child in self._children if child.poll() is None]

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            children, self._children = list(self._children), set()
        for child in children:
            _stop(child)


def _stdin(child: subprocess.Popen[bytes]) -> Any:
    assert child.stdin is not None
    return child.stdin


def _stdout(child: subprocess.Popen[bytes]) -> Any:
    assert child.stdout is not None
    return child.stdout


def _stop(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(5)
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class _Process:
    """The process's fence (one per gateway worker)."""

    fence: Fence | None = None
    lock = threading.Lock()


def configure(limits: FenceLimits) -> Fence:
    """Make a fence with `limits` the process's (the runtime does this at start)."""
    with _Process.lock:
        previous, _Process.fence = _Process.fence, Fence(limits)
        made = _Process.fence
    if previous is not None:
        previous.close()
    return made


def current() -> Fence:
    """The process's fence (default limits until `configure` is called)."""
    with _Process.lock:
        if _Process.fence is None:
            _Process.fence = Fence(FenceLimits())
        return _Process.fence


def runs() -> tuple[int, int]:
    """Runs this process's fence sent off the loop and runs it stopped so far ((0, 0) without
    a fence; none is made for asking)."""
    with _Process.lock:
        fence = _Process.fence
    return (fence.offloaded, fence.stopped) if fence is not None else (0, 0)


def close() -> None:
    """Stop the process's fence and its children (the runtime does this at shutdown)."""
    with _Process.lock:
        previous, _Process.fence = _Process.fence, None
    if previous is not None:
        previous.close()


async def fenced_check(
    contract: Contract,
    message: Mapping[str, Any],
    finish_reason: str | None,
    *,
    repair: bool,
    new_id: Callable[[], str] = new_call_id,
    prior_calls: int = 0,
    read_text_calls: bool = True,
) -> Attempt:
    """`check_message`, inline when cheap, otherwise off the loop under the CPU budget."""
    if runs_inline(contract, message):
        return check_message(
            contract,
            message,
            finish_reason,
            repair=repair,
            new_id=new_id,
            prior_calls=prior_calls,
            read_text_calls=read_text_calls,
        )
    return await current().check(
        contract, message, finish_reason, repair=repair, prior_calls=prior_calls, read_text_calls=read_text_calls
    )
