"""What served a response (from the gateway's x-corral-* headers), and the routing preferences
a request may carry in its body's `corral` object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal, TypedDict, get_args

from corral.types._dump import Dumpable
from corral.types._parse import opt_decimal, opt_int, opt_str

Prefer = Literal["cost", "latency", "balanced"]
ToolValidationMode = Literal["off", "report", "repair", "retry"]
#: The outcome the gateway reports in x-corral-tool-validation, besides "retried:N" (the answer
#: validated after N re-asks; `CorralInfo.tool_retries` reads N).
ToolValidationOutcome = Literal["valid", "repaired", "invalid", "not_applicable"]
TOOL_VALIDATION_OUTCOMES: tuple[ToolValidationOutcome, ...] = get_args(ToolValidationOutcome)
RETRIED_PREFIX = "retried:"


class ProviderPrefs(TypedDict, total=False):
    """Which backends may serve a request: `only` these, `ignore` those, try in this `order`."""

    only: Sequence[str]
    ignore: Sequence[str]
    order: Sequence[str]


HEADER_REQUEST_ID = "x-corral-request-id"
HEADER_PROVIDER = "x-corral-provider"
HEADER_MODEL = "x-corral-model"
HEADER_ATTEMPTS = "x-corral-attempts"
HEADER_COST = "x-corral-cost-usd"
HEADER_TOOL_VALIDATION = "x-corral-tool-validation"
HEADER_COST_ESTIMATED = "x-corral-cost-estimated"
HEADER_CACHE = "x-corral-cache"
HEADER_CACHE_BYPASS = "x-corral-cache-bypass"
HEADER_CACHE_ORIGINAL = "x-corral-cache-original-request-id"
HEADER_HEDGE_WINNER = "x-corral-hedge-winner"
#: Body members that may carry the same facts (e.g. a stream's final chunk, once the cost is known).
BODY_KEYS = ("corral", "x_corral")


@dataclass(frozen=True, slots=True)
class CorralInfo(Dumpable):
    """What served a response.

    Usage:
        completion = client.chat.completions.create(...)
        completion.corral.provider     # "groq"
        completion.corral.cost_usd     # Decimal("0.000042")

    Parameters:
        request_id: the gateway's id for the request (quote it in bug reports).
        provider: the backend that answered (groq, together, deepinfra, bedrock, vllm).
        model_id: that provider's id for the model.
        attempts: backend attempts the gateway made (fallbacks and re-asks included).
        cost_usd: what the request cost, exact (see `cost_estimated`).
        cost_estimated: True while `cost_usd` is the gateway's estimate (a stream's headers go out
            before the cost is known; the exact figure replaces it when the last chunk brings it).
        tool_validation: the tool-call validation outcome, when tools were involved: one of
            `TOOL_VALIDATION_OUTCOMES` or "retried:N" (see `tool_retries`).
        retries: retries the SDK itself made before this response arrived.
        cache: "hit", "miss" or "bypass" when the gateway's response cache applied to the
            request, else None; `cache_bypass` says why it was bypassed, and a hit names the
            request whose answer it replayed in `cache_original_request_id`.
        hedge_winner: when the gateway hedged the request (a second backend started because the
            first was slow), which attempt answered: "first" or "hedge"; None without a hedge.
    """

    request_id: str | None = None
    provider: str | None = None
    model_id: str | None = None
    attempts: int | None = None
    cost_usd: Decimal | None = None
    tool_validation: str | None = None
    retries: int = 0
    cost_estimated: bool = False
    cache: str | None = None
    cache_bypass: str | None = None
    cache_original_request_id: str | None = None
    hedge_winner: str | None = None

    @property
    def hedged(self) -> bool:
        """The gateway hedged this request (`x-corral-hedged: true`)."""
        return self.hedge_winner is not None

    @property
    def tool_retries(self) -> int | None:
        """N of a "retried:N" outcome (re-asks before the answer validated); 0 for another
        outcome; None without tool validation."""
        outcome = self.tool_validation
        if outcome is None:
            return None
        if outcome.startswith(RETRIED_PREFIX):
            return opt_int(outcome[len(RETRIED_PREFIX) :])
        return 0

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, retries: int = 0) -> CorralInfo:
        """Read the x-corral-* response headers; absent or malformed ones become None."""
        return cls(
            request_id=headers.get(HEADER_REQUEST_ID) or None,
            provider=headers.get(HEADER_PROVIDER) or None,
            model_id=headers.get(HEADER_MODEL) or None,
            attempts=opt_int(headers.get(HEADER_ATTEMPTS)),
            cost_usd=opt_decimal(headers.get(HEADER_COST)),
            tool_validation=headers.get(HEADER_TOOL_VALIDATION) or None,
            retries=retries,
            cost_estimated=headers.get(HEADER_COST_ESTIMATED, "").strip().lower() in ("true", "1", "yes"),
            cache=headers.get(HEADER_CACHE) or None,
            cache_bypass=headers.get(HEADER_CACHE_BYPASS) or None,
            cache_original_request_id=headers.get(HEADER_CACHE_ORIGINAL) or None,
            hedge_winner=headers.get(HEADER_HEDGE_WINNER) or None,
        )

    def updated(self, raw: Mapping[str, Any]) -> CorralInfo:
        """Overlay a body-level `corral` object (e.g. sent in a stream's last chunk) on these values."""
        changes: dict[str, Any] = {}
        for name, reader in _BODY_FIELDS.items():
            value = reader(raw.get(name))
            if value is not None:
                changes[name] = value
        if "cost_usd" in changes:
            changes["cost_estimated"] = raw.get("cost_estimated") is True
        return replace(self, **changes) if changes else self


def body_corral(data: Mapping[str, Any]) -> dict[str, Any]:
    """The `corral` (or `x_corral`) object of a response body or chunk; empty when absent."""
    found: dict[str, Any] = {}
    for key in BODY_KEYS:
        value = data.get(key)
        if isinstance(value, dict):
            found.update(value)
    return found


_BODY_FIELDS: dict[str, Any] = {
    "request_id": opt_str,
    "provider": opt_str,
    "model_id": opt_str,
    "attempts": opt_int,
    "cost_usd": opt_decimal,
    "tool_validation": opt_str,
}
