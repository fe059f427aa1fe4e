"""Loading corpus.yaml: the cases, and each case's request body and backend answer."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from tests.toolcalls.helpers import call, completion, tool

CORPUS = Path(__file__).with_name("corpus.yaml")


@cache
def corpus() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CORPUS.read_text(encoding="utf-8"))
    return data


def cases() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = corpus()["cases"]
    return found


def request_for(case: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "llama-4-scout", "messages": [{"role": "user", "content": "help"}]}
    if "tools" in case:
        functions = corpus()["functions"]
        body["tools"] = [tool(name, functions[name]) for name in corpus()["toolsets"][case["tools"]]]
    for key in ("tool_choice", "parallel_tool_calls", "response_format"):
        if key in case:
            body[key] = case[key]
    return body


def answer_for(case: dict[str, Any]) -> dict[str, Any]:
    calls = [call(c["name"], c["arguments"], f"call_{i}") for i, c in enumerate(case.get("calls", ()))]
    return completion(case.get("content"), calls or None, case["finish"])
