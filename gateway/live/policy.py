"""The policy in force: loaded at start, reloaded when its file changes or on request.
An invalid new policy is refused (with its errors) and the last good one keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from gateway.routing.policy.load import PolicyError, load_policy
from gateway.routing.policy.model import DEFAULT_POLICY, Policy

log = logging.getLogger("corral.policy")

#: Where the shipped default policy lives (in the source tree and, as package data, when installed).
DEFAULT_POLICY_FILES = (
    Path(__file__).resolve().parent.parent.parent / "policies" / "default.yaml",
    Path(__file__).resolve().parent.parent / "data" / "default_policy.yaml",
)


def default_policy_path() -> Path | None:
    return next((p for p in DEFAULT_POLICY_FILES if p.exists()), None)


@dataclass
class ReloadResult:
    ok: bool
    policy: str
    errors: list[str] = field(default_factory=list)


class PolicyHolder:
    def __init__(self, path: Path | None, poll_s: float = 1.0) -> None:
        self.path = path
        self.poll_s = poll_s
        self.current: Policy = DEFAULT_POLICY
        self.reloads = 0
        self.rejected_reloads = 0
        self._mtime: float | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self) -> Policy:
        return self.current

    def load_initial(self) -> None:
        """Load at start; an invalid file here is fatal (PolicyError propagates)."""
        if self.path is None:
            log.info("no policy file: using the built-in default policy")
            return
        self._mtime = self._stat()
        self.current = load_policy(self.path)
        log.info("policy loaded from %s (%d rules)", self.path, len(self.current.rules))

    def reload(self) -> ReloadResult:
        if self.path is None:
            return ReloadResult(False, self.current.name, ["no policy file configured"])
        self._mtime = self._stat()
        try:
            policy = load_policy(self.path)
        except PolicyError as exc:
            self.rejected_reloads += 1
            errors = str(exc).splitlines()
            log.error("policy %s refused; keeping the last good one: %s", self.path, "; ".join(errors))
            return ReloadResult(False, self.current.name, errors)
        except OSError as exc:
            self.rejected_reloads += 1
            log.error("policy %s unreadable; keeping the last good one: %s", self.path, exc)
            return ReloadResult(False, self.current.name, [str(exc)])
        self.current = policy
        self.reloads += 1
        log.info("policy reloaded from %s (%d rules)", self.path, len(policy.rules))
        return ReloadResult(True, policy.name)

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime if self.path else None
        except OSError:
            return None

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            mtime = self._stat()
            if mtime is not None and mtime != self._mtime:
                self.reload()

    def start_watching(self) -> None:
        if self.path is not None:
            self._task = asyncio.create_task(self.watch(), name="corral-policy-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
