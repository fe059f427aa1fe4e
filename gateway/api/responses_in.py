"""OpenAI Responses API request -> chat-completions body (pure).

The Responses API is served over the chat path: its request becomes a chat body, which
then goes through the same parsing, parameter policy, routing, validation, metering and
policies as `/v1/chat/completions`. Mapped here:

- `instructions` -> a leading system message (not carried over by `previous_response_id`,
  as at OpenAI); `input` (a string, or message / `function_call` / `function_call_output`
  items) -> messages; a stored conversation (`previous_response_id`) goes first;
- function `tools` (flat: name, description, parameters, strict) -> chat tools; `tool_choice`
  likewise; other tool types (web search, file search, ...) are a 400;
- `text.format` -> `response_format`; `max_output_tokens` -> `max_completion_tokens`;
- fields the chat path knows (`temperature`, `top_p`, `parallel_tool_calls`, `user`,
  `prompt_cache_key`, `safety_identifier`, `corral`, ...) pass on unchanged, so the parameter
  policy decides them exactly as for chat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.errors import Code, GatewayError, bad_request

__all__ = ["ECHOED", "to_chat_body"]

#: Request fields passed to the chat body as they are.
_PASSED = (
    "model",
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "prompt_cache_key",
    "safety_identifier",
    "corral",
    "top_logprobs",
)
#: Responses-only fields with no effect here (state is kept by `previous_response_id` alone).
_DROPPED = frozenset(
    {"store", "metadata", "include", "truncation", "service_tier", "background", "prompt_cache_retention"}
)
#: Fields echoed back on the response object.
ECHOED = ("instructions", "max_output_tokens", "metadata", "previous_response_id", "temperature", "top_p", "user")
_KNOWN = frozenset(
    {
        *_PASSED,
        *_DROPPED,
        *ECHOED,
        "reasoning",
        "input",
        "tools",
        "tool_choice",
        "text",
        "stream",
        "stream_options",
    }
)


def to_chat_body(body: Mapping[str, Any], history: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The chat-completions body for a Responses request (`history`: the stored conversation)."""
    unknown = sorted(set(body) - _KNOWN)
    if unknown:
        raise bad_request(
            f"unrecognized request argument: '{unknown[0]}'", param=unknown[0], code=Code.UNSUPPORTED_PARAMETER
        )
    chat: dict[str, Any] = {k: body[k] for k in _PASSED if k in body}
    reasoning = body.get("reasoning")
    if isinstance(reasoning, Mapping) and reasoning.get("effort") is not None:
        chat["reasoning_effort"] = reasoning["effort"]  # ignored with a header, as on chat
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad_request("invalid value for 'instructions': expected a string", param="instructions")
        messages.append({"role": "system", "content": instructions})
    messages.extend(history)
    messages.extend(input_messages(body.get("input")))
    chat["messages"] = messages
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools"):
        chat["tools"] = [_tool(i, tool) for i, tool in enumerate(_list(body["tools"], "tools"))]
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    fmt = _text_format(body.get("text"))
    if fmt is not None:
        chat["response_format"] = fmt
    if body.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def input_messages(raw: Any) -> list[dict[str, Any]]:
    """`input` (a string or a list of items) as chat messages."""
    if raw is None:
        raise bad_request("missing required parameter: 'input'", param="input", code=Code.MISSING_REQUIRED_PARAMETER)
    if isinstance(raw, str):
        return [{"role": "user", "content": raw}]
    out: list[dict[str, Any]] = []
    for i, item in enumerate(_list(raw, "input")):
        if not isinstance(item, Mapping):
            raise bad_request(f"input[{i}] must be an object", param=f"input[{i}]")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            out.append(_message(i, item))
        elif kind == "function_call":
            call = {
                "id": _text(item, "call_id", i),
                "type": "function",
                "function": {"name": _text(item, "name", i), "arguments": _text(item, "arguments", i)},
            }
            previous = out[-1] if out else None
            if previous is not None and previous["role"] == "assistant" and previous.get("tool_calls"):
                previous["tool_calls"].append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            content = output if isinstance(output, str) else _parts_text(output, i)
            out.append({"role": "tool", "tool_call_id": _text(item, "call_id", i), "content": content})
        elif kind == "reasoning":
            continue
        else:
            raise bad_request(
                f"input[{i}]: items of type {kind!r} are not supported (messages, function_call and "
                "function_call_output are)",
                param=f"input[{i}].type",
                code=Code.UNSUPPORTED_PARAMETER,
            )
    return out


def _message(i: int, item: Mapping[str, Any]) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise bad_request(f"input[{i}].role must be user, assistant, system or developer", param=f"input[{i}].role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(_list(content, f"input[{i}].content")):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        elif kind == "refusal":
            parts.append({"type": "text", "text": str(part.get("refusal", ""))})
        else:
            raise bad_request(
                f"input[{i}].content[{j}]: parts of type {kind!r} are not supported",
                param=f"input[{i}].content[{j}].type",
                code=Code.UNSUPPORTED_PARAMETER,
            )
    if role != "user":
        return {"role": role, "content": "".join(p["text"] for p in parts if p["type"] == "text")}
    return {"role": role, "content": parts}


def _parts_text(output: Any, i: int) -> str:
    if not isinstance(output, list):
        raise bad_request(f"input[{i}].output must be a string or a list of text parts", param=f"input[{i}].output")
    return "".join(str(p.get("text", "")) for p in output if isinstance(p, Mapping))


def _tool(i: int, tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, Mapping) else None
        raise bad_request(
            f"tools[{i}]: tools of type {kind!r} are not supported (function tools are)",
            param=f"tools[{i}].type",
            code=Code.UNSUPPORTED_PARAMETER,
        )
    function = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, Mapping) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise bad_request("invalid value for 'tool_choice'", param="tool_choice")


def _text_format(text: Any) -> dict[str, Any] | None:
    fmt = text.get("format") if isinstance(text, Mapping) else None
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = {k: fmt[k] for k in ("name", "schema", "description", "strict") if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": spec}
    raise bad_request("invalid value for 'text.format.type'", param="text.format.type")


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise bad_request(f"invalid value for '{param}': expected a list", param=param)
    return value


def _text(item: Mapping[str, Any], key: str, i: int) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise _missing(f"input[{i}].{key}")
    return value


def _missing(param: str) -> GatewayError:
    return bad_request(f"missing required parameter: '{param}'", param=param, code=Code.MISSING_REQUIRED_PARAMETER)
