"""The policy the cache tests run under: one rule per cache setting, picked by a request tag."""

from __future__ import annotations

from pathlib import Path

POLICY = """\
version: 1
name: cache-tests
rules:
  - name: cached
    match: {tags: {cache: "yes"}}
    cache: {ttl_s: 600}
  - name: cached-shared
    match: {tags: {cache: "shared"}}
    cache: {ttl_s: 600, shared_across_teams: true}
  - name: cached-tools
    match: {tags: {cache: "tools"}}
    cache: {ttl_s: 600, allow_tools: true}
"""


def write_policy(directory: Path) -> Path:
    path = directory / "cache-policy.yaml"
    path.write_text(POLICY)
    return path
