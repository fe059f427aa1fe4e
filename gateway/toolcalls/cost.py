"""How much a validation run may cost, estimated before it runs, so that only the runs
that could be expensive leave the event loop (gateway/toolcalls/fence.py).

A tree-shaped schema (no `$ref`) applies each of its nodes at most once to each node of
the answer, so `schema nodes x answer nodes` bounds the work, with enum members counted
as nodes (each is compared) and `uniqueItems` adding `answer nodes²` (jsonschema compares
unhashable items pairwise). A `$ref` can make that exponential in a few hundred bytes
(`{"allOf": [{"$ref": "#"}, {"$ref": "#"}]}` doubles the work at every level of the
answer), so references are expanded when the weight is computed, and a recursive one, or
one leading outside the schema, makes the weight unbounded: such a schema is always
checked off the loop. Answer nodes are counted from the JSON text's structural
characters (`,` `[` `{` `:`), at C speed, without parsing it.

Measured for the threshold (`python -m tests.toolcalls.bench_validation`): a typical
five-property tool call is a few hundred units and ~35 µs inline, a round trip to a
validation process ~260 µs; the costliest shape per unit found, an array of strings
against a long `enum`, ~0.2 µs a unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["INLINE_BYTES", "INLINE_UNITS", "UNBOUNDED", "answer_nodes", "has_unique_items", "schema_weight"]

#: Most estimated units checked on the event loop (at ~0.2 µs a unit in the worst shape
#: measured, about 1 ms); anything above goes to the validation processes.
INLINE_UNITS = 5_000
#: Most bytes of answer text (arguments and content) checked on the event loop: parsing,
#: repair and recognition of calls written as text are linear, but not free.
INLINE_BYTES = 16 * 1024
#: The weight of a schema whose cost cannot be bounded by its size (recursive or remote `$ref`).
UNBOUNDED = -1
#: Expanded weights past this are treated as unbounded (the expansion stops there).
_WEIGHT_CAP = 1_000_000
#: Keywords whose values are data: counted as one node, or one per member for `enum`.
_DATA = frozenset({"const", "default", "examples", "title", "description", "$comment", "format", "type"})


class _Unbounded(Exception):
    """Recursion, a reference that cannot be followed, or a weight past the cap."""


def schema_weight(schema: Any) -> int:
    """Nodes of `schema` with local references expanded, or `UNBOUNDED`."""
    try:
        return _Weigher(schema).weigh(schema)
    except (_Unbounded, RecursionError):
        return UNBOUNDED


def has_unique_items(schema: Any) -> bool:
    """Whether `uniqueItems: true` appears anywhere (pairwise comparison of array items)."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if node.get("uniqueItems") is True:
                return True
            stack.extend(value for key, value in node.items() if key not in _DATA and key != "enum")
        elif isinstance(node, list):
            stack.extend(node)
    return False


def answer_nodes(text: str) -> int:
    """An upper bound on the JSON values in `text` (structural characters plus one)."""
    return 1 + text.count(",") + text.count("[") + text.count("{") + text.count(":")


class _Weigher:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.total = 0
        self.resolving: set[str] = set()
        self.weights: dict[str, int] = {}

    def weigh(self, node: Any) -> int:
        weight = 1
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key == "$ref" or key in ("$dynamicRef", "$recursiveRef"):
                    weight += self.reference(value)
                elif key == "enum" and isinstance(value, list):
                    weight += len(value)
                elif key in _DATA:
                    weight += 1
                else:
                    weight += self.weigh(value)
        elif isinstance(node, list):
            weight += sum(self.weigh(item) for item in node)
        self.total += 1
        if weight > _WEIGHT_CAP or self.total > _WEIGHT_CAP:
            raise _Unbounded
        return weight

    def reference(self, ref: Any) -> int:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Unbounded
        known = self.weights.get(ref)
        if known is not None:
            return known
        if ref in self.resolving:
            raise _Unbounded
        self.resolving.add(ref)
        weight = self.weigh(_pointer(self.root, ref[1:]))
        self.resolving.discard(ref)
        self.weights[ref] = weight
        return weight


def _pointer(root: Any, pointer: str) -> Any:
    """The node at a JSON Pointer (RFC 6901) inside `root`."""
    if pointer and not pointer.startswith("/"):
        raise _Unbounded  # a plain-name anchor: not followed here
    node = root
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _Unbounded
    return node
