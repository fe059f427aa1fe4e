"""What an API key is: a record (never the key itself) and the key format.

A key is `ck_` followed by 43 URL-safe characters (32 random bytes, 256 bits). Only its
SHA-256 is stored. Its public id, `key_` + the first 12 hex digits of that hash, names it
in listings, logs and the ledger's `api_key_id` (the static CORRAL_API_KEYS get their id
the same way, so ledger ids do not change when keys move into the store).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

KEY_PREFIX = "ck_"
SCOPES = ("chat", "spend:read", "admin")
PERIODS = ("day", "month")


def hash_key(key: str) -> str:
    """Hex SHA-256 of a key: a fast hash is right here because keys are 256-bit random
    (no dictionary to attack), unlike passwords."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_for(key_hash: str) -> str:
    return "key_" + key_hash[:12]


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def parse_scopes(raw: str | list[str] | tuple[str, ...]) -> frozenset[str]:
    """`chat,spend:read` or a list; unknown scopes raise ValueError."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = frozenset(s.strip() for s in items if s and s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope(s) {unknown}; known: {', '.join(SCOPES)}")
    if not scopes:
        raise ValueError(f"at least one scope is needed; known: {', '.join(SCOPES)}")
    return scopes


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key as the gateway sees it (also what `authenticate` returns)."""

    key_id: str | None
    key_hash: str = ""
    team: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: Decimal | None = None
    budget_period: str | None = None
    name: str = ""
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    #: A static CORRAL_API_KEYS key (admin bootstrap), not from the store.
    static: bool = False

    def allows(self, scope: str) -> bool:
        """`admin` implies every other scope."""
        return scope in self.scopes or "admin" in self.scopes

    def public(self) -> dict[str, Any]:
        """The record as the admin API and `corral keys list` show it (no hash, no key)."""
        return {
            "id": self.key_id,
            "name": self.name,
            "team": self.team,
            "scopes": sorted(self.scopes),
            "rpm": self.rpm,
            "tpm": self.tpm,
            "budget_usd": None if self.budget_usd is None else str(self.budget_usd),
            "budget_period": self.budget_period,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


#: The caller when authentication is off (explicitly): no key, every scope.
ANONYMOUS = KeyRecord(key_id=None, scopes=frozenset(SCOPES))
