"""Load and validate routing policy files (`policies/*.yaml`) into `policy_model.Policy`.

Three passes, each reporting every problem it finds with the file, line and dotted path:

1. YAML (`policy_yaml`): syntax, duplicate keys, non-finite numbers;
2. JSON Schema (`policies/schema.json`, draft 2020-12): unknown keys, types, ranges;
3. semantics (`policy_checks`), once the first two pass: unknown providers and models,
   rules that can never match or are shadowed, models left without a deployment, split and
   objective weights, budgets. Warnings (suspicious but servable) are kept apart from errors.

Usage::

    policy = load_policy(Path("policies/default.yaml"))   # raises PolicyError
    errors, warnings = check_policy_file(Path("policies/prod.yaml"))
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from gateway.catalogue.deployments import Catalogue, load_catalogue
from gateway.routing.policy.build import build_policy
from gateway.routing.policy.checks import Finding, semantic_findings
from gateway.routing.policy.model import Policy
from gateway.routing.policy.yaml_lines import Path as DocPath
from gateway.routing.policy.yaml_lines import YamlDoc, YamlSyntaxError, read_yaml

__all__ = [
    "SCHEMA_PATH",
    "PolicyError",
    "PolicyIssue",
    "PolicyReport",
    "analyse_policy",
    "check_policy_file",
    "dotted",
    "load_policy",
    "load_schema",
    "parse_policy",
]

log = logging.getLogger("corral.policy")

#: The policy JSON Schema: a link to `policies/schema.json` in the source tree, a copy when installed.
SCHEMA_PATH = Path(__file__).resolve().parent.parent.parent / "data" / "policy_schema.json"
_MAX_MESSAGE = 240


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem in a policy file; `line` is 1-based, `path` dotted (`rules[2].retry.attempts`)."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.file}:{self.line}: {where}{self.message}"


class PolicyError(ValueError):
    """A policy file is invalid; `errors` lists every problem found."""

    def __init__(self, errors: list[PolicyIssue]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass
class PolicyReport:
    """What checking one policy found; `policy` is set only when there are no errors."""

    policy: Policy | None
    errors: list[PolicyIssue] = field(default_factory=list)
    warnings: list[PolicyIssue] = field(default_factory=list)


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


@lru_cache(maxsize=1)
def _default_catalogue() -> Catalogue:
    return load_catalogue()


def dotted(path: DocPath) -> str:
    """`("rules", 2, "retry")` -> `rules[2].retry`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def analyse_policy(text: str, source: str = "<policy>", catalogue: Catalogue | None = None) -> PolicyReport:
    """Check a policy's text and build it when it is valid."""
    try:
        doc = read_yaml(text)
    except YamlSyntaxError as exc:
        return PolicyReport(None, [PolicyIssue(source, exc.line, "", exc.message)])
    errors = [PolicyIssue(source, line, dotted(path), message) for path, line, message in doc.problems]
    errors += _schema_issues(doc, source)
    if errors:
        return PolicyReport(None, _sorted(errors))
    cat = catalogue or _default_catalogue()
    policy = build_policy(doc, source, Path(source).stem or "policy", cat)
    findings = semantic_findings(doc, policy, cat)
    report = PolicyReport(
        policy,
        _sorted([_finding(source, doc, f) for f in findings if f.error]),
        _sorted([_finding(source, doc, f) for f in findings if not f.error]),
    )
    if report.errors:
        report.policy = None
    return report


def parse_policy(text: str, source: str = "<policy>", catalogue: Catalogue | None = None) -> Policy:
    """The policy in `text`; raise `PolicyError` listing every error. Warnings are logged."""
    report = analyse_policy(text, source, catalogue)
    if report.policy is None:
        raise PolicyError(report.errors)
    for warning in report.warnings:
        log.warning("policy warning: %s", warning)
    return report.policy


def load_policy(path: Path | str, catalogue: Catalogue | None = None) -> Policy:
    """Read and validate a policy file; raise `PolicyError` (invalid) or `OSError` (unreadable)."""
    return parse_policy(_read(Path(path)), str(path), catalogue)


def check_policy_file(
    path: Path | str, catalogue: Catalogue | None = None
) -> tuple[list[PolicyIssue], list[PolicyIssue]]:
    """(errors, warnings) for a policy file; raise `OSError` when it cannot be read."""
    report = analyse_policy(_read(Path(path)), str(path), catalogue)
    return report.errors, report.warnings


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise OSError(f"{path}: not UTF-8 text ({exc.reason})") from exc


def _sorted(issues: list[PolicyIssue]) -> list[PolicyIssue]:
    return sorted(issues, key=lambda i: (i.line, i.path, i.message))


def _issue(source: str, doc: YamlDoc, path: DocPath, message: str) -> PolicyIssue:
    return PolicyIssue(source, doc.line_of(path), dotted(path), message)


def _finding(source: str, doc: YamlDoc, finding: Finding) -> PolicyIssue:
    return _issue(source, doc, finding.path, finding.message)


def _schema_issues(doc: YamlDoc, source: str) -> list[PolicyIssue]:
    issues: list[PolicyIssue] = []
    for err in _validator().iter_errors(doc.data):
        path: DocPath = tuple(err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = sorted(err.schema.get("properties", {}))
            for key in (k for k in err.instance if k not in allowed):
                issues.append(_issue(source, doc, (*path, key), _unknown_key(key, allowed)))
        else:
            issues.append(_issue(source, doc, path, _schema_message(err)))
    return issues


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; expected one of: {', '.join(allowed)}"


_KINDS = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer", float: "a number"}


def _schema_message(err: ValidationError) -> str:
    if err.validator == "type":
        wanted = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        got = "null" if err.instance is None else _KINDS.get(type(err.instance), type(err.instance).__name__)
        return f"expected {' or '.join(str(w) for w in wanted)}, got {got}" + _shown(err.instance)
    if err.validator == "pattern":
        return f"{err.instance!r} is not an amount in US dollars (digits with an optional decimal point, e.g. 0.002)"
    message = err.message
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _shown(value: Any) -> str:
    if isinstance(value, dict | list) or value is None:
        return ""
    return f" ({value!r})"
