"""No hang, bounded memory: the parser, the tool-call repair and the policy loader run on
worst-case inputs in a child process with a hard address-space limit and a wall-clock
bound. A child that runs out of memory or time fails the test."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

#: Address space allowed to the child (the interpreter and its imports take ~1 GiB of it).
MEMORY_LIMIT = 2 * 1024**3
TIMEOUT_S = 60

PRELUDE = """
import resource
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
import orjson
from gateway.api.parse import parse_chat
from gateway.errors import GatewayError
from gateway.catalogue.deployments import load_catalogue
from gateway.routing.policy.load import analyse_policy
from gateway.toolcalls import ToolGuard, prepare
from gateway.toolcalls.repair import repair_json

CATALOGUE = load_catalogue()

def parse(raw):
    try:
        parse_chat(raw, CATALOGUE, "req_bound")
    except GatewayError as err:
        assert 400 <= err.status < 500, err.message

def guard():
    tools = [{{"type": "function", "function": {{"name": "f", "parameters": {{"type": "object"}}}}}}]
    return ToolGuard(prepare({{"tools": tools}}))

def answer(message, finish):
    return {{"choices": [{{"index": 0, "message": message, "finish_reason": finish}}]}}

def body(**extra):
    return orjson.dumps({{"model": "llama-4-scout", "messages": [{{"role": "user", "content": "hi"}}], **extra}})
"""

CASES = {
    "parser: 10^5 nested arrays": 'parse(b"[" * 100_000 + b"]" * 100_000)',
    "parser: 10^5 nested objects": """parse(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)""",
    "parser: 4 MB of braces in content": 'parse(body(messages=[{"role": "user", "content": "{[" * 2_000_000}]))',
    "parser: 20,000 messages": 'parse(body(messages=[{"role": "user", "content": "x"}] * 20_000))',
    "parser: 5,000 tools": """
tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
parse(body(tools=[{**tool, "function": {**tool["function"], "name": f"f{i}"}} for i in range(5000)]))""",
    "parser: schema nested 60 deep": """
s = {"type": "object"}
for _ in range(28):
    s = {"type": "object", "properties": {"a": s}}
parse(body(tools=[{"type": "function", "function": {"name": "f", "parameters": s}}]))""",
    "repair: 10^5 open braces": 'repair_json("{" * 100_000)',
    "repair: 10^4 unclosed keys": """repair_json('{"a":' * 10_000)""",
    "repair: 10^5 items, no close": 'repair_json("[" + "1," * 100_000, "[")',
    "repair: 10^5 quotes": """repair_json("{'" + "'" * 100_000)""",
    "repair: 1 MB of junk after a brace": 'repair_json("{" + "a,:}]" * 200_000)',
    "guard: 1 MB of broken arguments": """
args = '{"a": [' + '{"b": "' * 50_000
message = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}]}
guard().check(answer(message, "tool_calls"))""",
    "guard: pythonic call 10^4 deep": """
content = "[f(a=" + "[" * 10_000 + "])]"
guard().check(answer({"role": "assistant", "content": content}, "stop"))""",
    "policy: 10^5 nested flow lists": 'analyse_policy("[" * 100_000 + "]" * 100_000)',
    "policy: alias bomb": """analyse_policy("a: &a [x,x,x,x,x,x,x,x,x,x]\\n" + "".join(
        f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]\\n" for p, c in zip("abcdefgh", "bcdefghi")))""",
}


@pytest.mark.parametrize("code", list(CASES.values()), ids=list(CASES))
def test_finishes_within_bounds(code: str) -> None:
    script = PRELUDE.format(limit=MEMORY_LIMIT) + textwrap.dedent(code) + '\nprint("finished")\n'
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {TIMEOUT_S} s")
    assert done.returncode == 0 and done.stdout.strip() == "finished", done.stderr[-2000:]
