"""Read a function's description and per-parameter descriptions from its docstring
(Google `Args:`, Sphinx `:param x:` and NumPy `Parameters` styles)."""

from __future__ import annotations

import inspect
import re

_PARAM_SECTIONS = frozenset(
    {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
)
_GOOGLE_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*):\s*$")
_NUMPY_RULE = re.compile(r"^-{3,}\s*$")
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?::.*)?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str | None, dict[str, str]]:
    """(description, {parameter: description}); the description is the text before any section."""
    if not doc:
        return None, {}
    lines = inspect.cleandoc(doc).splitlines()
    params: dict[str, str] = {}
    first_section = len(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        numpy = i + 1 < len(lines) and line.strip() and _NUMPY_RULE.match(lines[i + 1])
        google = _GOOGLE_HEADER.match(line)
        if numpy and not line.startswith(" "):
            first_section = min(first_section, i)
            end = _numpy_section_end(lines, i + 2)
            if line.strip().lower() in _PARAM_SECTIONS:
                params.update(_entries(lines[i + 2 : end], _NUMPY_ENTRY, numpy=True))
            i = end
        elif google and not line.startswith(" "):
            first_section = min(first_section, i)
            end = _indented_block_end(lines, i + 1)
            if google.group(1).strip().lower() in _PARAM_SECTIONS:
                params.update(_entries(lines[i + 1 : end], _GOOGLE_ENTRY, numpy=False))
            i = end
        elif line.startswith(":"):
            first_section = min(first_section, i)
            end = _indented_block_end(lines, i + 1)
            match = _SPHINX_PARAM.match(line)
            if match:
                params[match.group(1)] = _join([match.group(2), *lines[i + 1 : end]])
            i = end
        else:
            i += 1
    description = "\n".join(lines[:first_section]).strip()
    return description or None, params


def _indented_block_end(lines: list[str], start: int) -> int:
    i = start
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
        i += 1
    return i


def _numpy_section_end(lines: list[str], start: int) -> int:
    i = start
    while i < len(lines):
        if i + 1 < len(lines) and lines[i].strip() and _NUMPY_RULE.match(lines[i + 1]):
            return i
        i += 1
    return i


def _entries(block: list[str], entry: re.Pattern[str], *, numpy: bool) -> dict[str, str]:
    """Entries start at the block's smallest indentation; deeper lines continue them."""
    indents = [len(line) - len(line.lstrip()) for line in block if line.strip()]
    if not indents:
        return {}
    base = min(indents)
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in block:
        indent = len(line) - len(line.lstrip())
        match = entry.match(line.strip()) if line.strip() and indent == base else None
        if match:
            current = found.setdefault(match.group(1), [])
            if not numpy:
                current.append(match.group(2))
        elif current is not None:
            current.append(line)
    return {name: _join(parts) for name, parts in found.items() if _join(parts)}


def _join(parts: list[str]) -> str:
    return " ".join(part.strip() for part in parts if part.strip())
