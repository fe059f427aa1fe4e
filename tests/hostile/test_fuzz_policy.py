"""Fuzz the policy loader (text -> Policy, or PolicyError naming file and line): arbitrary
text, arbitrary YAML documents and mutations of the shipped examples only ever give a
policy or a report of issues with a line in the file, never another exception."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from gateway.routing.policy.load import PolicyError, PolicyReport, analyse_policy, parse_policy
from tests.hostile.strategies import JSON, SCALARS, fuzz

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "policies" / "examples").glob("*.yaml"))
SOURCE = "fuzz.yaml"
#: What YAML counts as the end of a line.
YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def checked(text: str) -> PolicyReport:
    """The loader's report, with its invariants: a policy exactly when there is no error,
    every issue on a line of the file, and parse_policy agreeing (Policy or PolicyError)."""
    report = analyse_policy(text, SOURCE)
    assert (report.policy is None) == bool(report.errors)
    last = len(YAML_LINE_BREAK.split(text))
    for issue in [*report.errors, *report.warnings]:
        assert issue.file == SOURCE and 1 <= issue.line <= last, issue
        assert str(issue).startswith(f"{SOURCE}:{issue.line}:")
    try:
        parse_policy(text, SOURCE)
    except PolicyError as exc:
        assert report.errors and exc.errors == report.errors
    else:
        assert report.policy is not None
    return report


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutate(doc: Any, path: tuple[Any, ...], replacement: Any, delete: bool) -> Any:
    if not path:
        return replacement
    out = copy.deepcopy(doc)
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return out


def test_the_shipped_examples_load() -> None:
    assert EXAMPLES
    for path in EXAMPLES:
        assert checked(path.read_text(encoding="utf-8")).policy is not None, path


@fuzz(200)
@given(st.text(max_size=300))
def test_arbitrary_text(text: str) -> None:
    checked(text)


@fuzz(150)
@given(JSON)
def test_arbitrary_documents(value: Any) -> None:
    checked(yaml.safe_dump(value, allow_unicode=True))


@fuzz(120)
@given(st.sampled_from(EXAMPLES), st.data())
def test_mutated_examples(example: Path, data: st.DataObject) -> None:
    doc = yaml.safe_load(example.read_text(encoding="utf-8"))
    path = data.draw(st.sampled_from(_paths(doc)))
    replacement = data.draw(SCALARS | JSON | st.sampled_from(["groq", "llama-4-scout", -1, 0, 101, "1e400"]))
    delete = bool(path) and data.draw(st.booleans())
    checked(yaml.safe_dump(_mutate(doc, path, replacement, delete), allow_unicode=True, sort_keys=False))


@fuzz(150)
@given(st.sampled_from(EXAMPLES), st.data())
def test_text_edits_of_examples(example: Path, data: st.DataObject) -> None:
    lines = example.read_text(encoding="utf-8").splitlines(keepends=True)
    at = data.draw(st.integers(0, len(lines) - 1))
    edit = data.draw(st.sampled_from(["drop", "repeat", "indent", "dedent", "cut", "insert"]))
    line = lines[at]
    if edit == "drop":
        lines[at] = ""
    elif edit == "repeat":
        lines[at] = line + line
    elif edit == "indent":
        lines[at] = "  " + line
    elif edit == "dedent":
        lines[at] = line.lstrip()
    elif edit == "cut":
        lines[at] = line[: data.draw(st.integers(0, len(line)))]
    else:
        lines[at] = data.draw(st.text(max_size=30)) + line
    checked("".join(lines))


@pytest.mark.parametrize(
    "text",
    [
        "a: &a ["
        + ",".join(["x"] * 10)
        + "]\n"
        + "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)),
        "[" * 10_000 + "]" * 10_000,
        "{a: " * 5000 + "1" + "}" * 5000,
        "version: 1\nversion: 1\n",
        "--- 1\n--- 2\n",
        "defaults: !!python/object/apply:os.system ['true']\n",
        "rules: " + "x" * 200_000,
        "\x00\x01",
    ],
    ids=[
        "alias-bomb",
        "deep-flow-list",
        "deep-flow-map",
        "duplicate-key",
        "two-documents",
        "python-tag",
        "long",
        "ctrl",
    ],
)
def test_adversarial_documents(text: str) -> None:
    assert checked(text).policy is None
