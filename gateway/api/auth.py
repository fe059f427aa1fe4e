"""Bearer-key check for the /v1 API (constant-time comparison)."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from gateway.config import Settings
from gateway.errors import GatewayError


def authenticate(request: Request, settings: Settings) -> str | None:
    """The caller's key id (a short hash, never the key), or None when auth is off."""
    if not settings.api_keys:
        return None
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        for key in settings.api_keys:
            if hmac.compare_digest(token.encode(), key.get_secret_value().encode()):
                return "key_" + hashlib.sha256(token.encode()).hexdigest()[:12]
    raise GatewayError(
        401,
        "missing or invalid API key (send 'Authorization: Bearer <key>')",
        type="authentication_error",
        code="invalid_api_key",
    )
