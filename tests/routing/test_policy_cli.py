"""`corral policy check` and `corral policy diff`, and the probe-based diff behind it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.catalogue.deployments import load_catalogue
from gateway.cli.main import app
from gateway.routing.policy.diff import diff_policies, probes
from gateway.routing.policy.load import parse_policy
from tests.routing.policy_support import yaml_text

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

VALID = """
rules:
  - name: scout-fast
    match: {models: [scout]}
    order: [groq, together]
"""
WITH_WARNING = """
defaults:
  allow: [groq]
  order: [together]
"""
INVALID = """
defaults:
  retry: {attempts: 0}
rules:
  - name: a
    allow: [grok]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(yaml_text(text))
    return path


def policy_cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["policy", *args])
    return result.exit_code, result.output


def test_check_passes_valid_files_with_exit_0(tmp_path: Path) -> None:
    code, out = policy_cli("check", str(write(tmp_path, "ok.yaml", VALID)))
    assert code == 0
    assert out.strip() == f"{tmp_path / 'ok.yaml'}: ok, 0 warning(s)"


def test_check_prints_warnings_and_still_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, "warn.yaml", WITH_WARNING)
    code, out = policy_cli("check", str(path))
    assert code == 0
    assert f"{path}:3: warning: defaults.order[0]: 'together' is in order but not in allow" in out


def test_check_prints_every_error_as_file_line_and_exits_1(tmp_path: Path) -> None:
    ok = write(tmp_path, "ok.yaml", VALID)
    bad = write(tmp_path, "bad.yaml", INVALID)
    code, out = policy_cli("check", str(ok), str(bad))
    assert code == 1
    assert f"{bad}:2: error: defaults.retry.attempts: 0 is less than the minimum of 1" in out.splitlines()
    assert f"{bad}: 1 error(s), 0 warning(s)" in out
    assert f"{ok}: ok" in out


def test_check_reports_semantic_errors_once_the_schema_passes(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "rules:\n  - name: a\n    deny: [grok]\n")
    code, out = policy_cli("check", str(bad))
    assert code == 1
    assert f"{bad}:3: error: rules[0].deny[0]: unknown provider 'grok'" in out


@pytest.mark.parametrize("content", [None, b"\xff\xfe not utf-8"])
def test_check_exits_2_on_an_unreadable_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "p.yaml"
    if content is not None:
        path.write_bytes(content)
    bad = write(tmp_path, "bad.yaml", INVALID)
    code, out = policy_cli("check", str(bad), str(path))
    assert code == 2
    assert f"{path}: error: cannot read" in out


def test_check_accepts_every_shipped_policy() -> None:
    files = [REPO / "policies" / "default.yaml", *sorted((REPO / "policies" / "examples").glob("*.yaml"))]
    code, out = policy_cli("check", *map(str, files))
    assert code == 0, out
    assert out.count(": ok, 0 warning(s)") == len(files)


def test_diff_of_identical_files_reports_nothing(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", VALID)
    new = write(tmp_path, "new.yaml", VALID)
    code, out = policy_cli("diff", str(old), str(new))
    assert code == 0
    assert "no routing difference" in out


def test_diff_reports_a_changed_order(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", VALID)
    new = write(tmp_path, "new.yaml", VALID.replace("order: [groq, together]", "order: [together, groq]"))
    code, out = policy_cli("diff", str(old), str(new))
    assert code == 1
    assert "  order: groq > together  ->  together > groq" in out
    assert "llama-4-scout features=none prompt=500" in out
    assert "llama-4-maverick" not in out


def test_diff_reports_a_changed_split(tmp_path: Path) -> None:
    canary = (REPO / "policies" / "examples" / "canary.yaml").read_text()
    old = write(tmp_path, "old.yaml", canary)
    new = write(
        tmp_path,
        "new.yaml",
        canary.replace("weight_pct: 90", "weight_pct: 75").replace("weight_pct: 10", "weight_pct: 25"),
    )
    code, out = policy_cli("diff", str(old), str(new))
    assert code == 1
    assert "  split: deepinfra 90%, together 10%  ->  deepinfra 75%, together 25%" in out


def test_diff_exits_2_when_a_file_is_invalid(tmp_path: Path) -> None:
    old = write(tmp_path, "old.yaml", VALID)
    bad = write(tmp_path, "bad.yaml", INVALID)
    code, out = policy_cli("diff", str(old), str(bad))
    assert code == 2
    assert f"{bad}:2: error: defaults.retry.attempts" in out


def test_diff_probes_the_teams_tags_and_prompt_boundaries_the_rules_mention() -> None:
    old = parse_policy(yaml_text(VALID), "old.yaml")
    new = parse_policy(
        yaml_text(
            """
            rules:
              - name: ml-long
                match: {teams: [ml], tags: {tier: gold}, min_prompt_tokens: 30000}
                fallback: false
            """
        ),
        "new.yaml",
    )
    grid = probes(old, new, load_catalogue())
    assert any(p.team == "ml" and p.tags == (("tier", "gold"),) and p.prompt_tokens == 30000 for p in grid)
    assert {p.prompt_tokens for p in grid} >= {500, 29999, 30000, 100_000}
    changes = diff_policies(new, new, load_catalogue())
    assert changes == []
    changed = diff_policies(parse_policy("{}", "empty.yaml"), new, load_catalogue())
    assert {c.probe.team for c in changed} == {"ml"}
    assert all(c.probe.prompt_tokens >= 30000 for c in changed)
    assert all(c.fields[0] == ("rule", "(defaults)", "ml-long") for c in changed)
