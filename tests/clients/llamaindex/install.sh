#!/usr/bin/env bash
# Builds the LlamaIndex venv for the client matrix (tests/api/test_client_matrix_llamaindex.py):
# LlamaIndex pins its own openai, which would move the gateway venv's, so it lives apart.
#
#   LLAMAINDEX_VENV  where the venv goes (default: <repo root>/.venv-llamaindex; relative paths
#                    are from the repo root)
#   PYTHON           interpreter to build it from (default: python3)
#
# Idempotent: a stamp named after requirements.txt's hash records what was installed; a run with
# the same requirements does nothing, a changed file reinstalls. About 40 s on a quiet machine.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
LLAMAINDEX_VENV="${LLAMAINDEX_VENV:-.venv-llamaindex}"
[[ "$LLAMAINDEX_VENV" = /* ]] || LLAMAINDEX_VENV="$root/$LLAMAINDEX_VENV"
PYTHON="${PYTHON:-python3}"
digest="$(sha256sum "$here/requirements.txt" | cut -c1-16)"
STAMP="$LLAMAINDEX_VENV/.installed-$digest"

if [[ -f "$STAMP" ]]; then
  exit 0
fi
start=$(date +%s)
rm -rf "$LLAMAINDEX_VENV"
"$PYTHON" -m venv "$LLAMAINDEX_VENV"
# pip warns "Location 'file:///opt/...' is ignored" for packages a machine's local indexes lack: harmless.
"$LLAMAINDEX_VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" 2>&1 |
  { grep -v "is ignored: it is neither a file nor a directory" || true; }
"$LLAMAINDEX_VENV/bin/python" -c "import llama_index.llms.openai_like"
touch "$STAMP"
echo "LlamaIndex venv installed in $(( $(date +%s) - start )) s ($(du -sh "$LLAMAINDEX_VENV" | cut -f1))"
