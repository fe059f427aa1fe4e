"""Reading a backend's model listing (off the request path: the catalogue drift check).

A short-lived aiohttp session per check: it runs every few minutes at most, so a pooled
client would only hold idle connections."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson

log = logging.getLogger("corral.providers")
#: A listing larger than this is not a model listing.
MAX_LISTING_BYTES = 8 * 1024 * 1024


async def fetch_json(url: str, headers: Mapping[str, str], timeout_s: float) -> Any | None:
    """The JSON at `url`, or None when it cannot be had (logged, never raised)."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url, headers=headers) as response:
            raw = await response.content.read(MAX_LISTING_BYTES + 1)
            if response.status != 200 or len(raw) > MAX_LISTING_BYTES:
                log.warning("model listing at %s: HTTP %s", url.split("?", maxsplit=1)[0], response.status)
                return None
            return orjson.loads(raw)
    except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError) as exc:
        log.warning("model listing at %s unreadable: %s", url.split("?", maxsplit=1)[0], type(exc).__name__)
        return None


async def listed_models(url: str, headers: Mapping[str, str], timeout_s: float) -> frozenset[str] | None:
    """Model IDs from an OpenAI-style listing (`{"data": [{"id": …}]}`) or a bare list of models."""
    body = await fetch_json(url, headers, timeout_s)
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        return None
    return frozenset(str(m["id"]) for m in items if isinstance(m, dict) and "id" in m)
