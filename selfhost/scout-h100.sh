#!/usr/bin/env bash
# Llama 4 Scout (17B active / 16 experts, ~109B total) on one 8x H100 80 GB node with vLLM.
# Flags follow the vLLM Llama 4 blog (2025-04) and vllm-project/recipes (Hopper, 2026-08);
# see docs/providers.md#76-serving-llama-4-on-h100s and selfhost/README.md for the sizing notes.
# Every setting can be overridden from the environment, e.g. MAX_MODEL_LEN=262144 ./scout-h100.sh
#
# Requires vLLM >= 0.12.0 (recipes' minimum), HF_TOKEN with access to the gated meta-llama repo.
set -euo pipefail

# BF16 checkpoint (~218 GB of weights). The FP8 checkpoint nvidia/Llama-4-Scout-17B-16E-Instruct-FP8
# halves that; the recipe says it fits on 1 H100, its own metadata says >= 131 GB of VRAM, so plan
# TP >= 2 for FP8 Scout on 80 GB H100s (UNVERIFIED which is right; test before you size a fleet).
MODEL="${MODEL:-meta-llama/Llama-4-Scout-17B-16E-Instruct}"

# Tensor parallel across all 8 GPUs of the node: lowest per-user latency and room for a ~1M-token
# KV cache. TP 1/2/4 replicas give more throughput per GPU but far less context (and BF16 Scout
# does not fit on fewer than 4 x 80 GB at all).
TP="${TP:-8}"

# Context window. Scout's config allows 10,485,760 tokens; 8x H100 holds ~1M (blog). Every token
# of max-model-len you do not need is KV cache that could serve concurrent requests instead:
# lower it (e.g. 262144) when traffic is short and you want more requests in flight. The gateway
# reads the value back from /v1/models (max_model_len) and routes longer prompts elsewhere.
MAX_MODEL_LEN="${MAX_MODEL_LEN:-1000000}"

# Images per request (vLLM's default is 1). JSON syntax for current vLLM; the 2025 blog used
# image=10 (key=value) -- which syntax your version takes is UNVERIFIED, check `vllm serve --help`.
MAX_IMAGES="${MAX_IMAGES:-5}"

PORT="${PORT:-8000}"
# Auth: vLLM reads VLLM_API_KEY from the environment (same value as the gateway's VLLM_API_KEY),
# which keeps the key out of the process list. Unset = no auth (private network only).
# /health and /metrics stay open either way.

# The blog's commands set this to avoid stale torch.compile caches across versions.
export VLLM_DISABLE_COMPILE_CACHE="${VLLM_DISABLE_COMPILE_CACHE:-1}"

# Chat template shipped in vLLM's repository (the official image has it under
# /vllm-workspace/examples/); for a pip install point CHAT_TEMPLATE at your checkout's examples/.
CHAT_TEMPLATE="${CHAT_TEMPLATE:-/vllm-workspace/examples/tool_chat_template_llama4_pythonic.jinja}"

args=(
  "${MODEL}"
  --host 0.0.0.0
  --port "${PORT}"
  --tensor-parallel-size "${TP}"
  --max-model-len "${MAX_MODEL_LEN}"
  # Long-context quality: attention temperature tuning for NoPE layers (blog flag for the 1M setup).
  --override-generation-config '{"attn_temperature_tuning": true}'
  # FP8 KV cache: roughly doubles the context/concurrency that fits, small accuracy cost (blog).
  --kv-cache-dtype fp8
  # Prefix caching ON: the gateway keeps a conversation on the replica that already holds its
  # prefix (routing affinity); the recipes' --no-enable-prefix-caching is for benchmarks only.
  --enable-prefix-caching
  # Tool calling as vLLM recommends for Llama 4: pythonic calls parsed into OpenAI tool_calls.
  # (Alternative: --tool-call-parser llama4_json with tool_chat_template_llama4_json.jinja.)
  --enable-auto-tool-choice
  --tool-call-parser llama4_pythonic
  --chat-template "${CHAT_TEMPLATE}"
  --limit-mm-per-prompt "{\"image\": ${MAX_IMAGES}}"
  # Recipes (Hopper): cap tokens per scheduler step (chunked prefill) so long prompts do not
  # stall decoding. The recipes also set --async-scheduling; add it once you have checked it
  # with structured outputs (used by the gateway's tool-call re-asks) on your vLLM version.
  --max-num-batched-tokens 8192
  # Report cached prompt tokens in usage (the gateway shows prefix-cache savings).
  --enable-prompt-tokens-details
  # Metrics: /metrics is always on (Prometheus text); the gateway scrapes running/waiting
  # requests, KV-cache usage and prefix-cache hits from it every metrics_interval_s.
)

exec vllm serve "${args[@]}" "$@"
