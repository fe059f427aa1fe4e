"""The Fireworks, SGLang and Ollama presets as the router sees them."""

from __future__ import annotations

from tests.routing.test_planner import ALL, order, reason, request, run, view

PRESETS = ALL | {"fireworks", "sglang"}


def test_fireworks_and_sglang_are_ranked_by_price_among_the_rest() -> None:
    p = run(request(), view(available=PRESETS))
    # Scout per 1M in/out: deepinfra 0.08/0.30, groq 0.11/0.34, together 0.18/0.59, fireworks
    # 0.15/0.60, sglang and vllm 0.154321/0.617284 (derived from 8 GPUs x $2.50/h at the stated
    # 9,000 output tok/s; they were a hand-typed 0.05/0.20 that put them first), bedrock 0.17/0.66.
    providers = order(p)
    assert set(providers) == PRESETS
    assert providers.index("fireworks") == providers.index("together") + 1
    assert {providers[4], providers[5]} == {"vllm", "sglang"}
    assert providers[-1] == "bedrock"


def test_ollama_is_dropped_unless_it_is_available() -> None:
    p = run(request(), view(available=PRESETS))
    assert "ollama" not in order(p) and reason(p, "ollama") == "provider not configured"


def test_configured_ollama_is_free_but_only_for_prompts_that_fit_its_small_window() -> None:
    p = run(request(), view(available=PRESETS | {"ollama"}))
    assert order(p)[0] == "ollama" and p.candidates[0].expected_cost_usd == 0
    long = run(request(messages=[{"role": "user", "content": "word " * 20_000}]), view(available=PRESETS | {"ollama"}))
    assert reason(long, "ollama").startswith("context window 4096")


def test_ollama_does_not_serve_maverick_or_forced_tool_choice() -> None:
    maverick = run(request("llama-4-maverick"), view(available=PRESETS | {"ollama"}))
    assert "ollama" not in order(maverick)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    forced = run(request(tools=[tool], tool_choice="required"), view(available=PRESETS | {"ollama"}))
    assert "ollama" not in order(forced) and "fireworks" in order(forced)
