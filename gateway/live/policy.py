"""The policy in force: loaded at start, reloaded when its file changes or on request.

A reload is atomic from the router's point of view: the file is read twice, `settle_s`
apart, and loaded only when both reads have the same content hash and the file's
(mtime, size, inode) did not move in between, so a file caught half-written (an editor or
config-management tool writing in several writes) is never loaded; the next poll tries
again. A new policy that parses and validates but has fewer rules or budgets than the one
in force (rules matched by name) is refused unless the reload is forced (`POST
/admin/policy/reload?force=true`) or the file's `revision` is higher than the current one:
a truncated file can still be valid, and a silently dropped `reject` rule serves traffic
the policy refuses. Every load logs the content hash (blake2b, 16 hex digits). An invalid
new policy is refused (with its errors) and the last good one keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from gateway.routing.policy.load import PolicyError, parse_policy
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
    #: Content hash of the file loaded (or refused), when it was read.
    digest: str | None = None


def content_hash(raw: bytes) -> str:
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OSError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def dropped(old: Policy, new: Policy) -> list[str]:
    """What `new` loses compared with `old`: rules by name, and budgets by count."""
    names = {rule.name for rule in new.rules}
    lost = [f"rule {rule.name!r}" for rule in old.rules if rule.name not in names]
    if len(new.budgets) < len(old.budgets):
        lost.append(f"{len(old.budgets) - len(new.budgets)} budget(s)")
    return lost


class PolicyHolder:
    def __init__(self, path: Path | None, poll_s: float = 1.0, settle_s: float = 0.2) -> None:
        self.path = path
        self.poll_s = poll_s
        #: How long a file must stay unchanged between the two reads of a reload.
        self.settle_s = settle_s
        self.current: Policy = DEFAULT_POLICY
        self.digest: str | None = None
        #: When the policy in force was loaded (for /status).
        self.loaded_at = datetime.now(UTC)
        self.reloads = 0
        self.rejected_reloads = 0
        self._seen: tuple[int, int, int] | None = None
        self._task: asyncio.Task[None] | None = None

    def __call__(self) -> Policy:
        return self.current

    def load_initial(self) -> None:
        """Load at start; an invalid file here is fatal (PolicyError propagates)."""
        if self.path is None:
            log.info("no policy file: using the built-in default policy")
            return
        self._seen = _identity(self.path)
        raw = self.path.read_bytes()
        self.current = parse_policy(_decode(self.path, raw), str(self.path))
        self.digest = content_hash(raw)
        self.loaded_at = datetime.now(UTC)
        log.info("policy loaded from %s (%d rules, hash %s)", self.path, len(self.current.rules), self.digest)

    async def reload(self, force: bool = False) -> ReloadResult:
        """Load the file if it is stable, valid and drops nothing (unless `force`)."""
        path = self.path
        if path is None:
            return ReloadResult(False, self.current.name, ["no policy file configured"])
        try:
            before = _identity(path)
            first = await asyncio.to_thread(path.read_bytes)
            await asyncio.sleep(self.settle_s)
            second = await asyncio.to_thread(path.read_bytes)
            after = _identity(path)
        except OSError as exc:
            return self._refuse([str(exc)], None, "unreadable")
        digest = content_hash(second)
        if first != second or before != after or before is None:
            # Still being written: not seen, so the next poll reads it again.
            return self._refuse(
                [f"{path} changed while being read (written in place?); write a new file and rename it over"],
                digest,
                "still changing",
                seen=False,
            )
        self._seen = after
        try:
            policy = parse_policy(_decode(path, second), str(path))
        except (PolicyError, OSError) as exc:
            return self._refuse(str(exc).splitlines(), digest, "refused")
        lost = dropped(self.current, policy)
        if lost and not force and policy.revision <= self.current.revision:
            message = (
                f"{path} drops {', '.join(lost)}; reload with ?force=true or raise the file's `revision` "
                f"(now {policy.revision}, in force {self.current.revision})"
            )
            return self._refuse([message], digest, "drops rules")
        self.current = policy
        self.digest = digest
        self.loaded_at = datetime.now(UTC)
        self.reloads += 1
        forced = ", forced" if force else ""
        log.info("policy reloaded from %s (%d rules, hash %s%s)", path, len(policy.rules), digest, forced)
        return ReloadResult(True, policy.name, digest=digest)

    def _refuse(self, errors: list[str], digest: str | None, why: str, *, seen: bool = True) -> ReloadResult:
        if not seen:
            self._seen = None
        self.rejected_reloads += 1
        log.error("policy %s %s (hash %s); keeping the last good one: %s", self.path, why, digest, "; ".join(errors))
        return ReloadResult(False, self.current.name, errors, digest)

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if self.path is None:
                continue
            identity = _identity(self.path)
            if identity is not None and identity != self._seen:
                await self.reload()

    def start_watching(self) -> None:
        if self.path is not None:
            self._task = asyncio.create_task(self.watch(), name="corral-policy-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
