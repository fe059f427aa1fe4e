"""The repository is self-contained: nothing in it points at a document or path outside it
(provider facts are cited from docs/providers.md, which carries their public sources)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Written in pieces so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join([r"providers\.md " + "\u00a7", r"\.\./" + "shared/", "/work" + "/shared", "shared" + "/reference/"])
)


def test_no_file_refers_outside_the_repository() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in files:
        path = ROOT / name
        if path.suffix in {".lock", ".jsonl"} or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert offenders == []


def test_every_docs_anchor_cited_in_the_tree_exists() -> None:
    doc = (ROOT / "docs" / "providers.md").read_text()
    headings = {_slug(h) for h in re.findall(r"^#+ (.+)$", doc, re.M)}
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    cited: set[str] = set()
    for name in files:
        path = ROOT / name
        if path.is_file() and path.suffix in {".py", ".yaml", ".md", ".sh"}:
            cited |= set(re.findall(r"docs/providers\.md#([a-z0-9-]+)", path.read_text()))
    assert cited and cited <= headings, sorted(cited - headings)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
