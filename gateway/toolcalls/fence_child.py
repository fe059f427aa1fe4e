"""The validation child (`main()`), started by gateway/toolcalls/fence.py, one per
validation thread.

Protocol on stdin/stdout: 4-byte big-endian length + pickle, both ways (parent and child
are the same code; nothing else writes to these pipes). The child first answers `READY`;
then per task `(contract, message, finish_reason, repair, prior_calls, read_text_calls)`
it answers `("ok", Attempt)`, `("budget", cpu_seconds)` or `("error", type name)`.

The budget is CPU time, not wall time: `ITIMER_PROF` counts this process's user and
system time and raises `SIGPROF` when the task has used `CORRAL_VALIDATION_CPU_S`; the
handler raises in the validation's Python frames (jsonschema is Python; RE2 and orjson
return quickly on bounded input), the task ends and the child serves the next one. An
address-space limit (`CORRAL_VALIDATION_MAX_MB`) turns a runaway allocation into a
`MemoryError` instead of the host's OOM killer. When the parent goes, stdin ends and the
child exits.
"""

from __future__ import annotations

import os
import pickle
import resource
import signal
import struct
import sys
import time
from types import FrameType
from typing import IO, Any

from gateway.toolcalls.model import new_call_id
from gateway.toolcalls.validate import check_message

BUDGET_ENV = "CORRAL_VALIDATION_CPU_S"
MEMORY_ENV = "CORRAL_VALIDATION_MAX_MB"
READY = b"READY"
LENGTH = struct.Struct(">I")


class OverBudget(Exception):
    """Raised from the SIGPROF handler: the task used its CPU budget."""


class _Timer:
    """Whether a task is running: a SIGPROF arriving after it ended is ignored."""

    armed = False


def _on_sigprof(signum: int, frame: FrameType | None) -> None:
    if _Timer.armed:
        raise OverBudget


def read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(LENGTH.size)
    if header is None or len(header) < LENGTH.size:
        return None
    size = LENGTH.unpack(header)[0]
    payload = stream.read(size)
    return payload if payload is not None and len(payload) == size else None


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _cpu() -> float:
    return time.process_time()


def run(task: tuple[Any, ...], budget_s: float) -> tuple[str, Any]:
    """One validation under the CPU budget."""
    contract, message, finish_reason, repair, prior_calls, read_text_calls = task
    started = _cpu()
    try:
        try:
            _Timer.armed = True
            signal.setitimer(signal.ITIMER_PROF, budget_s)
            attempt = check_message(
                contract,
                message,
                finish_reason,
                repair=repair,
                new_id=new_call_id,
                prior_calls=prior_calls,
                read_text_calls=read_text_calls,
            )
            return ("ok", attempt)
        finally:
            _Timer.armed = False
            signal.setitimer(signal.ITIMER_PROF, 0)
    except OverBudget:
        return ("budget", _cpu() - started)
    except MemoryError:
        return ("error", "MemoryError")


def serve(stdin: IO[bytes], stdout: IO[bytes], budget_s: float) -> None:
    write_frame(stdout, READY)
    while (payload := read_frame(stdin)) is not None:
        try:
            outcome = run(pickle.loads(payload), budget_s)
        except OverBudget:  # the signal landed between the check's end and disarming
            outcome = ("budget", budget_s)
        except Exception as exc:  # a bug must not take the child down with the answer unsent
            outcome = ("error", type(exc).__name__)
        write_frame(stdout, pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))


def main() -> None:
    # Group signals (Ctrl-C, a group SIGTERM) are for the parent, which closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGPROF, _on_sigprof)
    limit = int(os.environ.get(MEMORY_ENV, "0")) << 20
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    serve(sys.stdin.buffer, sys.stdout.buffer, float(os.environ[BUDGET_ENV]))
