"""Hypothesis strategies and settings shared by the fuzz suites.

Runs are derandomized (the same examples every run, so CI is deterministic) and bounded;
set CORRAL_FUZZ_EXPLORE=1 to draw fresh random examples, ten times as many, when hunting.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXPLORE = os.environ.get("CORRAL_FUZZ_EXPLORE") == "1"


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples * (10 if EXPLORE else 1),
        derandomize=not EXPLORE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


SCALARS: st.SearchStrategy[Any] = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
#: Any value orjson can write: the shapes a JSON body can take.
JSON: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

_KEYWORDS = st.sampled_from(
    [
        "type",
        "properties",
        "items",
        "required",
        "enum",
        "const",
        "pattern",
        "format",
        "minimum",
        "maxLength",
        "additionalProperties",
        "anyOf",
        "oneOf",
        "allOf",
        "not",
        "$ref",
        "$defs",
        "$schema",
        "$id",
        "prefixItems",
        "dependentRequired",
    ]
)
_TYPES = st.sampled_from(["object", "string", "integer", "number", "boolean", "array", "null"])
#: Things that look like JSON Schemas: keywords with plausible or arbitrary values.
SCHEMAS: st.SearchStrategy[Any] = st.recursive(
    st.fixed_dictionaries({}, optional={"type": _TYPES | st.lists(_TYPES, max_size=3), "format": st.text(max_size=8)})
    | st.booleans(),
    lambda inner: (
        st.dictionaries(_KEYWORDS, inner | SCALARS | st.lists(inner, max_size=3), max_size=4)
        | st.fixed_dictionaries(
            {"type": st.just("object"), "properties": st.dictionaries(st.text(max_size=6), inner, max_size=3)},
            optional={"required": st.lists(st.text(max_size=6), max_size=3), "additionalProperties": st.booleans()},
        )
    ),
    max_leaves=12,
)
NAMES = st.from_regex(r"\A[a-zA-Z0-9_-]{1,12}\Z") | st.text(max_size=12)
_ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | st.text(max_size=6)
MESSAGES = st.fixed_dictionaries(
    {"role": _ROLES, "content": st.text(max_size=40) | JSON},
    optional={"tool_calls": JSON, "tool_call_id": st.text(max_size=8), "name": st.text(max_size=8)},
)
TOOLS = st.fixed_dictionaries(
    {
        "type": st.just("function") | st.text(max_size=8),
        "function": st.fixed_dictionaries(
            {"name": NAMES}, optional={"parameters": SCHEMAS, "description": st.text(max_size=20), "strict": JSON}
        )
        | JSON,
    }
)
CORRAL = st.fixed_dictionaries(
    {},
    optional={
        "prefer": st.sampled_from(["cost", "latency", "balanced"]) | st.text(max_size=6),
        "providers": st.dictionaries(st.sampled_from(["only", "ignore", "order"]), st.lists(st.text(max_size=8))),
        "max_price_usd": SCALARS,
        "tags": st.dictionaries(st.text(max_size=8), st.text(max_size=8) | SCALARS, max_size=3),
        "tool_validation": st.sampled_from(["off", "report", "repair", "retry"]) | st.text(max_size=6),
        "base_url": st.just("http://169.254.169.254/"),
    },
)
#: Chat bodies near the real shape: most fields plausible, any of them wrong.
CHAT_BODIES = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["llama-4-scout", "llama-4-maverick", "scout"]) | st.text(max_size=10),
        "messages": st.lists(MESSAGES, max_size=3) | JSON,
    },
    optional={
        "tools": st.lists(TOOLS, max_size=3) | JSON,
        "tool_choice": st.sampled_from(["auto", "none", "required"]) | JSON,
        "response_format": st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object", "json_schema"]) | st.text(max_size=6)},
            optional={"json_schema": st.fixed_dictionaries({"name": NAMES}, optional={"schema": SCHEMAS}) | JSON},
        )
        | JSON,
        "stream": st.booleans() | JSON,
        "stream_options": JSON,
        "max_tokens": st.integers(min_value=-5, max_value=10**6) | JSON,
        "temperature": SCALARS,
        "stop": JSON,
        "n": JSON,
        "corral": CORRAL | JSON,
    },
)
