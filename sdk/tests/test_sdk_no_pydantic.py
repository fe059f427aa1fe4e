"""The core must import and work with pydantic absent."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    sys.modules["pydantic"] = None  # any import of pydantic now fails
    import json
    import httpx
    import corral

    def handler(request):
        body = json.loads(request.content)
        call = {"id": "c", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        if body["messages"][-1]["role"] == "tool":
            message = {"role": "assistant", "content": "3"}
        body = {"id": "x", "model": "m", "choices": [{"index": 0, "message": message}]}
        return httpx.Response(200, json=body, headers={"x-corral-provider": "vllm"})

    def add(a: int, b: int) -> int:
        return a + b

    client = corral.Corral(api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    result = client.chat.completions.run_tools(model="m", messages=[{"role": "user", "content": "1+2"}],
                                               tools=[add])
    assert result.content == "3", result
    first_call = result.completions[0].choices[0].message.tool_calls[0]
    assert first_call.function.parsed_arguments == {"a": 1, "b": 2}
    assert result.completion.corral.provider == "vllm"
    assert not isinstance(sys.modules.get("pydantic"), type(sys))
    print("ok")
    """
)


def test_core_works_without_pydantic() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
