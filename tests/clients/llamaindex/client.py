"""LlamaIndex's OpenAILike against a Corral gateway: run inside the LlamaIndex venv
(tests/clients/llamaindex/install.sh), never imported by the suite.

    python client.py BASE_URL PROVIDER...   # prints one JSON object per provider: what each call gave

Chat, streamed chat and a tool call (`predict_and_call`, which sends `parallel_tool_calls: false`
as LlamaIndex does for every tool call), pinned to each PROVIDER in turn.
"""

from __future__ import annotations

import json
import sys

from llama_index.core.llms import ChatMessage
from llama_index.core.tools import FunctionTool
from llama_index.llms.openai_like import OpenAILike


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"18C and sunny in {city}"


def run(base_url: str, provider: str) -> dict[str, object]:
    llm = OpenAILike(
        model="llama-4-maverick",
        api_base=base_url + "/v1",
        api_key="unused",
        is_chat_model=True,
        is_function_calling_model=True,
        context_window=131072,
        max_tokens=64,
        max_retries=0,
        timeout=30,
        additional_kwargs={"extra_body": {"corral": {"providers": {"only": [provider]}}}},
    )
    chat = llm.chat([ChatMessage(role="user", content="Say hello")])
    streamed = "".join(part.delta or "" for part in llm.stream_chat([ChatMessage(role="user", content="Count to 5")]))
    tool = FunctionTool.from_defaults(fn=get_weather)
    called = llm.predict_and_call([tool], user_msg="What is the weather in Paris? Use get_weather.", tool_required=True)
    sources = [{"tool": s.tool_name, "kwargs": s.raw_input.get("kwargs"), "output": s.content} for s in called.sources]
    return {"chat": chat.message.content, "stream": streamed, "tool": sources}


if __name__ == "__main__":
    print(json.dumps({provider: run(sys.argv[1], provider) for provider in sys.argv[2:]}))
