"""Helpers shared by the policy tests."""

from __future__ import annotations

import textwrap

from gateway.routing.policy.load import PolicyIssue, analyse_policy

SOURCE = "test.yaml"


def yaml_text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def report(text: str) -> tuple[list[PolicyIssue], list[PolicyIssue]]:
    result = analyse_policy(yaml_text(text), SOURCE)
    return result.errors, result.warnings


def found(issues: list[PolicyIssue], line: int, path: str, fragment: str) -> bool:
    return any(i.line == line and i.path == path and fragment in i.message for i in issues)


def show(issues: list[PolicyIssue]) -> str:
    return "\n".join(str(i) for i in issues) or "(none)"
