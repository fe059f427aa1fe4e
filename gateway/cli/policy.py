"""`corral policy check FILE...` and `corral policy diff OLD NEW`: lint and compare policy files.

Exit codes suit CI. check: 0 every file valid (warnings allowed), 1 some file has errors,
2 some file could not be read. diff: 0 no routing difference, 1 differences, 2 a file is
unreadable or invalid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gateway.catalogue.deployments import load_catalogue
from gateway.cli.explain import explain_command
from gateway.routing.policy.diff import diff_policies, render_changes
from gateway.routing.policy.load import PolicyError, PolicyIssue, check_policy_file, load_policy
from gateway.routing.policy.model import Policy

policy_app = typer.Typer(help="Lint, compare and explain routing policy files.", no_args_is_help=True)
policy_app.command("explain")(explain_command)


def _issue_line(issue: PolicyIssue, kind: str) -> str:
    where = f"{issue.path}: " if issue.path else ""
    return f"{issue.file}:{issue.line}: {kind}: {where}{issue.message}"


def _check_one(path: Path) -> int:
    try:
        errors, warnings = check_policy_file(path)
    except OSError as exc:
        typer.echo(f"{path}: error: cannot read: {exc.strerror or exc}")
        return 2
    for issue in errors:
        typer.echo(_issue_line(issue, "error"))
    for issue in warnings:
        typer.echo(_issue_line(issue, "warning"))
    verdict = f"{len(errors)} error(s)" if errors else "ok"
    typer.echo(f"{path}: {verdict}, {len(warnings)} warning(s)")
    return 1 if errors else 0


@policy_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="Policy files to validate.", show_default=False)],
) -> None:
    """Validate policy files: schema, then semantics. Prints file:line: error|warning: path: message."""
    raise typer.Exit(max(_check_one(path) for path in files))


def _load_for_diff(path: Path) -> Policy:
    try:
        return load_policy(path)
    except OSError as exc:
        typer.echo(f"{path}: error: cannot read: {exc.strerror or exc}")
    except PolicyError as exc:
        for issue in exc.errors:
            typer.echo(_issue_line(issue, "error"))
        typer.echo(f"{path}: invalid; fix it first (corral policy check {path})")
    raise typer.Exit(2)


@policy_app.command("diff")
def diff(
    old: Annotated[Path, typer.Argument(help="The policy in force.", show_default=False)],
    new: Annotated[Path, typer.Argument(help="The proposed policy.", show_default=False)],
) -> None:
    """Show how routing changes from OLD to NEW on a grid of probe requests (exit 1 when it does)."""
    before, after = _load_for_diff(old), _load_for_diff(new)
    changes = diff_policies(before, after, load_catalogue())
    if not changes:
        typer.echo(f"no routing difference between {old} and {new}")
        raise typer.Exit(0)
    for line in render_changes(changes):
        typer.echo(line)
    typer.echo(f"{len(changes)} probe request(s) route differently")
    raise typer.Exit(1)
