"""Bearer-key check: who is calling, and may they do this?

Keys are looked up by their SHA-256 in an in-memory cache (`gateway.keys.access`), so
authentication does no I/O. Missing, unknown or revoked keys get 401 invalid_api_key;
a key without the endpoint's scope gets 403 insufficient_scope; each refusal is counted
by reason in `corral_auth_failures_total`. With authentication turned off explicitly
every caller is an anonymous admin.
"""

from __future__ import annotations

from starlette.requests import Request

from gateway.errors import Code, GatewayError, error
from gateway.keys.access import Access
from gateway.keys.limiter import LimitRefused, TokenCharge
from gateway.keys.model import ANONYMOUS, KeyRecord
from gateway.schema.chat import ChatRequest
from gateway.telemetry.refusals import AuthFailure

#: Output tokens counted against a tokens-per-minute limit when a request sets no max_tokens.
DEFAULT_OUTPUT_TOKENS = 1024


def authenticate(request: Request, access: Access, scope: str) -> KeyRecord:
    """The caller's key record (key id, team, scopes, limits; never the key)."""
    if not access.enabled:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthenticated(access, "missing", scope)
    return authenticate_key(token, access, scope)


def authenticate_key(token: str, access: Access, scope: str) -> KeyRecord:
    """The record of `token` when it is an active key with `scope` (401 or 403 otherwise)."""
    if not access.enabled:
        return ANONYMOUS
    if not token:
        raise _unauthenticated(access, "missing", scope)
    record = access.lookup(token)
    if record is None:
        raise _unauthenticated(access, "revoked" if access.is_revoked(token) else "invalid", scope)
    if not record.allows(scope):
        access.refusals.auth_failed("scope", scope)
        raise error(
            Code.INSUFFICIENT_SCOPE,
            f"API key {record.key_id} lacks the scope {scope!r} (it has: {', '.join(sorted(record.scopes))})",
        )
    return record


def _unauthenticated(access: Access, reason: AuthFailure, scope: str) -> GatewayError:
    """401 for every kind of bad key alike (the counter, not the caller, learns which)."""
    access.refusals.auth_failed(reason, scope)
    return error(
        Code.INVALID_API_KEY,
        "missing, invalid or revoked API key (send 'Authorization: Bearer <key>')",
    )


def apply_key(caller: KeyRecord, req: ChatRequest, require_key_team: bool = False) -> str | None:
    """The key's team wins over a `team` tag (routing, budgets and the ledger follow it).

    A key without a team may name any team in the `team` tag (and spend from its budget)
    unless the policy says `teams: {require_key_team: true}`: then such a request is
    refused (403 policy_rejected), so only a key's own team is ever billed."""
    if caller.team is not None:
        req.prefs.tags = {**(req.prefs.tags or {}), "team": caller.team}
    elif require_key_team and req.prefs.tags and "team" in req.prefs.tags:
        raise error(
            Code.POLICY_REJECTED,
            "this API key has no team, and the policy bills only a key's own team (teams.require_key_team): "
            "remove the `team` tag or use a key of that team",
            param="corral.tags.team",
        )
    return caller.key_id


async def admit(
    access: Access, caller: KeyRecord, req: ChatRequest, require_key_team: bool = False
) -> tuple[str | None, TokenCharge | None]:
    """Apply the key to a chat request and take it from the key's rate limits (429 past
    them). Returns the key id and the token charge to settle once the usage is known."""
    key_id = apply_key(caller, req, require_key_team)
    if key_id is None or not (caller.rpm or caller.tpm):
        return key_id, None
    tokens = req.prompt_tokens_estimate + (req.max_output_tokens or DEFAULT_OUTPUT_TOKENS)
    try:
        charge = await access.limiter.admit(key_id, caller.rpm, caller.tpm, tokens)
    except LimitRefused as refused:
        access.refusals.rate_limited(refused.limit, caller.team)
        raise
    return key_id, charge
