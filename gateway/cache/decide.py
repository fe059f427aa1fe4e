"""Whether a request may be answered from the cache, and its key (pure: no I/O).

A request uses the cache when its policy rule has `cache:` or it asks (`corral.cache`).
It is then bypassed, with the reason reported, when its answer may not be reused: settings
that are not deterministic (neither `temperature: 0` nor a `seed`), tools offered without
the rule's `allow_tools` (a tool may have side effects), or the client's
`Cache-Control: no-store` (neither read nor written) or `no-cache` (not read; the fresh
answer replaces the entry).

The key is a SHA-256 over the normalised request: the logical model, every body field that
can change the answer (messages, tools, tool_choice, response_format, temperature, seed,
max tokens, stop, penalties, logprobs, ...), the per-request tool-validation mode, and the
team (else the API key) unless the rule shares entries across teams. Fields that cannot
change the answer (`stream`, `stream_options`, `user`, `metadata`, `store`, `service_tier`,
`prompt_cache_key`) are left out, so a stream and a whole answer share an entry.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.routing.policy.model import Cache, Policy
from gateway.schema.chat import ChatRequest

#: Body fields that never change the answer's content.
NOT_IN_KEY = frozenset(
    {"model", "stream", "stream_options", "user", "metadata", "store", "service_tier", "prompt_cache_key"}
)
#: Bumped whenever the key's material or an entry's layout changes (old entries are then never read).
KEY_VERSION = 1


@dataclass(frozen=True, slots=True)
class Decision:
    """How one request uses the cache: `key` None means bypassed for `reason`."""

    key: str | None
    reason: str
    ttl_s: int
    #: Look the answer up (False for `no-cache`).
    read: bool
    #: Keep the fresh answer (False when bypassed, and for `no-store`).
    store: bool

    @property
    def header(self) -> str:
        """The `x-corral-cache` value before the lookup: bypass, or miss until a hit says otherwise."""
        return "miss" if self.read else "bypass"


def _directives(cache_control: str | None) -> frozenset[str]:
    if not cache_control:
        return frozenset()
    return frozenset(part.strip().split("=", 1)[0].lower() for part in cache_control.split(","))


def deterministic(body: dict[str, Any]) -> bool:
    """Settings under which the same request should get the same answer: greedy decoding
    (`temperature: 0`) or a fixed `seed`. OpenAI's default temperature is 1, so a request
    that sets neither is not deterministic."""
    return body.get("temperature") == 0 or body.get("seed") is not None


class _PolicyUsesCache:
    """Whether any rule (or the defaults) of the policy in force has a cache, remembered per
    policy object: a gateway whose policy caches nothing skips rule matching for it."""

    def __init__(self) -> None:
        self._last: tuple[Policy, bool] | None = None

    def __call__(self, policy: Policy) -> bool:
        last = self._last
        if last is None or last[0] is not policy:
            uses = policy.defaults.cache is not None or any(r.settings.cache is not None for r in policy.rules)
            last = self._last = (policy, uses)
        return last[1]


uses_cache = _PolicyUsesCache()


def cache_settings(policy: Policy, req: ChatRequest, key_id: str | None) -> tuple[Cache | None, bool]:
    """The matching rule's cache settings, and whether the rule refuses the request."""
    tags = req.prefs.tags or {}
    rule = policy.rule_for(req.model, tags.get("team"), key_id, tags, req.features, req.prompt_tokens_estimate)
    if rule is not None and rule.reject:
        return None, True
    settings = rule.settings if rule is not None else policy.defaults
    return settings.cache, False


def decide(policy: Policy, req: ChatRequest, key_id: str | None, cache_control: str | None) -> Decision | None:
    """None when the cache is not in play for this request (no rule and no request asks)."""
    asked = req.prefs.cache
    if asked is None and not uses_cache(policy):
        return None
    rule, rejected = cache_settings(policy, req, key_id)
    if rejected or (rule is None and asked is None):
        return None
    ttl_s = asked.ttl_s if asked is not None else rule.ttl_s  # type: ignore[union-attr]
    directives = _directives(cache_control)
    reason = ""
    if "no-store" in directives:
        reason = "no_store"
    elif not deterministic(req.body):
        reason = "not_deterministic"
    elif req.body.get("tools") and not (rule is not None and rule.allow_tools):
        reason = "tools"
    elif req.legacy_functions:
        reason = "legacy_functions"
    if reason:
        return Decision(None, reason, ttl_s, read=False, store=False)
    shared = rule is not None and rule.shared_across_teams
    key = cache_key(req, None if shared else _scope(req, key_id))
    if "no-cache" in directives:
        return Decision(key, "no_cache", ttl_s, read=False, store=True)
    return Decision(key, "", ttl_s, read=True, store=True)


def _scope(req: ChatRequest, key_id: str | None) -> str:
    """Whose entry this is: the team, else the API key (a request with neither shares with
    other such requests only)."""
    team = (req.prefs.tags or {}).get("team")
    if team is not None:
        return f"team:{team}"
    return f"key:{key_id}" if key_id is not None else "anonymous"


def cache_key(req: ChatRequest, scope: str | None) -> str:
    material = {
        "v": KEY_VERSION,
        "model": req.model,
        "scope": scope,
        "tool_validation": req.prefs.tool_validation,
        "request": {k: v for k, v in req.body.items() if k not in NOT_IN_KEY},
    }
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()
