#!/usr/bin/env bash
# Llama 4 Maverick (17B active / 128 experts, ~400B total) FP8 on one 8x H100 80 GB node with vLLM.
# Flags follow the vLLM Llama 4 blog (2025-04) and vllm-project/recipes (Hopper, 2026-08);
# see docs/providers.md#76-serving-llama-4-on-h100s and selfhost/README.md for the sizing notes.
# Every setting can be overridden from the environment, e.g. MAX_MODEL_LEN=131072 ./maverick-h100.sh
#
# Requires vLLM >= 0.12.0 (recipes' minimum), HF_TOKEN with access to the gated meta-llama repo.
set -euo pipefail

# Meta's FP8 checkpoint (~400 GB of weights): BF16 Maverick (~800 GB) does not fit in 8 x 80 GB.
MODEL="${MODEL:-meta-llama/Llama-4-Maverick-17B-128E-Instruct-FP8}"

# All 8 GPUs: FP8 Maverick needs the whole node; nothing smaller fits.
TP="${TP:-8}"

# ~430K tokens is what 8x H100 holds after the FP8 weights (blog). Lower it to serve more
# concurrent requests; the gateway reads max_model_len from /v1/models.
MAX_MODEL_LEN="${MAX_MODEL_LEN:-430000}"

# Images per request (vLLM's default is 1). JSON syntax for current vLLM; the 2025 blog used
# image=10 -- which syntax your version takes is UNVERIFIED, check `vllm serve --help`.
MAX_IMAGES="${MAX_IMAGES:-5}"

PORT="${PORT:-8000}"
# Auth: vLLM reads VLLM_API_KEY from the environment (same value as the gateway's VLLM_API_KEY),
# which keeps the key out of the process list. Unset = no auth (private network only).
# /health and /metrics stay open either way.

export VLLM_DISABLE_COMPILE_CACHE="${VLLM_DISABLE_COMPILE_CACHE:-1}"
CHAT_TEMPLATE="${CHAT_TEMPLATE:-/vllm-workspace/examples/tool_chat_template_llama4_pythonic.jinja}"

args=(
  "${MODEL}"
  --host 0.0.0.0
  --port "${PORT}"
  --tensor-parallel-size "${TP}"
  --max-model-len "${MAX_MODEL_LEN}"
  # FP8 KV cache: roughly doubles usable context/concurrency at a small accuracy cost (blog).
  --kv-cache-dtype fp8
  # Prefix caching ON for the gateway's conversation affinity (not the recipes' benchmark setting).
  --enable-prefix-caching
  # vLLM's recommended Llama 4 tool calling: pythonic parser + its chat template.
  --enable-auto-tool-choice
  --tool-call-parser llama4_pythonic
  --chat-template "${CHAT_TEMPLATE}"
  --limit-mm-per-prompt "{\"image\": ${MAX_IMAGES}}"
  # Recipes (Hopper): cap tokens per scheduler step; --async-scheduling: see scout-h100.sh.
  --max-num-batched-tokens 8192
  --enable-prompt-tokens-details
  # /metrics is always served; the gateway scrapes it (see selfhost/README.md).
)

exec vllm serve "${args[@]}" "$@"
