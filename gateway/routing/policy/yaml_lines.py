"""Read a policy file's YAML into plain data, remembering where every value was written.

Three differences from `yaml.safe_load`, all for operators' sake:

- booleans are YAML 1.2's (`true`/`false` only), so `mode: off` or `region: no` stay strings;
- a key written twice in one mapping is reported, not silently overwritten;
- every node's line and every scalar's original text are kept, so errors can name the line
  and money can be read as `Decimal` from what was written, never through a float.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: A location in the document: mapping keys and sequence indexes from the root.
Path = tuple[str | int, ...]

_BOOL = "tag:yaml.org,2002:bool"
_MERGE = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = frozenset({"tag:yaml.org,2002:null", _BOOL, "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
#: Refuse documents that expand (through aliases) to more nodes than any policy needs.
MAX_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


class YamlSyntaxError(ValueError):
    """The text is not YAML (or not one document); `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class YamlDoc:
    data: Any
    #: 1-based line of the key (or sequence item) that introduces each path.
    lines: dict[Path, int] = field(default_factory=dict)
    #: The text each scalar was written as.
    raw: dict[Path, str] = field(default_factory=dict)
    #: Problems found while reading (duplicate keys, non-finite numbers): (path, line, message).
    problems: list[tuple[Path, int, str]] = field(default_factory=list)

    def line_of(self, path: Path) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return 1

    def has(self, path: Path) -> bool:
        return path in self.lines


def read_yaml(text: str) -> YamlDoc:
    """Compose `text` into a `YamlDoc`; raise `YamlSyntaxError` when it is not one YAML document."""
    try:
        loader = _Loader(text)  # checks every character up front
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise YamlSyntaxError(line, f"not valid YAML: character #x{exc.character:04x} is not allowed") from exc
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlSyntaxError(1, "the file is empty; a policy is a mapping with `defaults` and `rules`")
        doc = YamlDoc(data=None, lines={(): node.start_mark.line + 1})
        doc.data = _Reader(loader, doc).value(node, ())
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise YamlSyntaxError(line, f"not valid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"not valid YAML: {exc}") from exc
    except RecursionError as exc:
        raise YamlSyntaxError(loader.line + 1, "not a policy: nested far too deeply") from exc
    finally:
        loader.dispose()


class _Reader:
    def __init__(self, loader: _Loader, doc: YamlDoc) -> None:
        self.loader = loader
        self.doc = doc
        self.count = 0
        self.active: set[int] = set()

    def value(self, node: Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlSyntaxError(node.start_mark.line + 1, f"the document expands to more than {MAX_NODES} nodes")
        if id(node) in self.active:
            raise YamlSyntaxError(node.start_mark.line + 1, "an alias refers to a node that contains it")
        self.active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
            if isinstance(node, SequenceNode):
                return self.sequence(node, path)
            assert isinstance(node, ScalarNode)
            return self.scalar(node, path)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in self._pairs(node):
            if not isinstance(key_node, ScalarNode):
                self.doc.problems.append((path, key_node.start_mark.line + 1, "keys must be plain words"))
                continue
            key = str(key_node.value)
            here = (*path, key)
            if key in out:
                line = key_node.start_mark.line + 1
                self.doc.problems.append(
                    (here, line, f"duplicate key {key!r} (first written on line {self.doc.lines[here]})")
                )
                continue
            self.doc.lines[here] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, here)
        return out

    def _pairs(self, node: MappingNode) -> list[tuple[Node, Node]]:
        """The mapping's own pairs, after those it inherits through `<<` merge keys (own keys win)."""
        own = sum(1 for key, _ in node.value if key.tag != _MERGE)
        self.loader.flatten_mapping(node)
        cut = len(node.value) - own
        merged, own_pairs = node.value[:cut], node.value[cut:]
        own_keys = {key.value for key, _ in own_pairs if isinstance(key, ScalarNode)}
        inherited = {key.value: (key, value) for key, value in merged if key.value not in own_keys}
        return [*inherited.values(), *own_pairs]

    def sequence(self, node: SequenceNode, path: Path) -> list[Any]:
        out: list[Any] = []
        for index, item in enumerate(node.value):
            here = (*path, index)
            self.doc.lines[here] = item.start_mark.line + 1
            out.append(self.value(item, here))
        return out

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        self.doc.raw[path] = str(node.value)
        if node.tag not in _PLAIN_TAGS:
            return str(node.value)
        value = self.loader.construct_object(node)
        if isinstance(value, float) and not math.isfinite(value):
            self.doc.problems.append((path, node.start_mark.line + 1, f"{node.value!r} is not a finite number"))
        return value
