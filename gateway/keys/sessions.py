"""Browser sessions for the spend page: a key with `spend:read`, given once in a sign-in
form, is exchanged for a signed, expiring session token kept in an HttpOnly,
SameSite=Strict cookie. The token names the key (by id, never the key itself) and is
checked against the live key table on every use, so revoking the key ends its sessions.

Token: base64url(key_id "|" expires_unix "|" nonce) "." base64url(HMAC-SHA256). Sign-out
and other state-changing forms carry a CSRF token, an HMAC of the session token under
another label: a page of another site can neither read it nor send the cookie
(SameSite=Strict)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

COOKIE = "corral_spend_session"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    key_id: str
    expires: int
    token: str


class Sessions:
    """Usage:
    sessions = Sessions(secret, ttl_s=8 * 3600)
    token = sessions.issue("key_ab12", now=time.time())
    sessions.verify(token, now) -> Session | None
    sessions.csrf(token) -> the form token for this session
    """

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def _mac(self, label: bytes, payload: bytes) -> bytes:
        return hmac.new(self._secret, label + b"\0" + payload, hashlib.sha256).digest()

    def issue(self, key_id: str, now: float) -> str:
        payload = f"{key_id}|{int(now) + self.ttl_s}|{secrets.token_hex(8)}".encode()
        return f"{_b64(payload)}.{_b64(self._mac(b'session', payload))}"

    def verify(self, token: str, now: float) -> Session | None:
        """The session a token names, or None when it is forged, malformed or expired."""
        body, _, mac = token.partition(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
        except ValueError:
            return None
        if not hmac.compare_digest(signature, self._mac(b"session", payload)):
            return None
        key_id, _, rest = payload.decode(errors="replace").partition("|")
        expires, _, _nonce = rest.partition("|")
        if not key_id or not expires.isdigit() or int(expires) <= now:
            return None
        return Session(key_id, int(expires), token)

    def csrf(self, token: str) -> str:
        return _b64(self._mac(b"csrf", token.encode()))

    def csrf_ok(self, token: str, given: str) -> bool:
        return hmac.compare_digest(self.csrf(token).encode(), given.encode())
