"""Pure OpenAI <-> Bedrock Converse translation (no I/O): requests, answers, stream events.

Facts are from docs/providers.md#6-aws-bedrock-converse-and-conversestream; what the reference
left open is decided here and says so.
`to_converse` is the single source of truth for what Bedrock can serve: it raises
`UnsupportedRequest` for anything it cannot translate faithfully, and the adapter's
`unsupported()` simply runs it, so the two can never disagree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from gateway.catalogue.deployments import Deployment
from gateway.providers.errors import ErrorKind, UpstreamError
from gateway.schema.usage import Usage

PROVIDER = "bedrock"


class UnsupportedRequest(ValueError):
    """The request asks for something Converse cannot do; the message says what."""


class Handling(StrEnum):
    TRANSLATED = "translated"
    #: A hint Bedrock has no equivalent for; leaving it out changes nothing the caller relies on.
    DROPPED = "dropped"
    #: Required behaviour Bedrock cannot provide: the request is refused (router skips Bedrock).
    UNSUPPORTED = "unsupported"


#: A parameter check: (name, value, deployment) -> why it cannot be served, or None.
Check = Callable[[str, Any, Deployment], str | None]


@dataclass(frozen=True, slots=True)
class Param:
    handling: Handling
    note: str
    check: Check | None = None


def _refuse_if_set(name: str, value: Any, deployment: Deployment) -> str | None:
    """UNSUPPORTED parameters are fine at their neutral value (None, False, 0, 1 for n)."""
    if value is None or value is False or value == 0 or (name == "n" and value == 1):
        return None
    return f"{name}={value!r} is not supported by Bedrock Converse"


def _refuse_response_format(name: str, value: Any, deployment: Deployment) -> str | None:
    if isinstance(value, dict) and value.get("type", "text") == "text":
        return None
    return "response_format (JSON mode / JSON schema) is not supported for Llama 4 on Bedrock Converse"


def _refuse_hot_temperature(name: str, value: Any, deployment: Deployment) -> str | None:
    if isinstance(value, int | float) and value > 1:
        return f"temperature={value} is above Bedrock's maximum of 1 (not clamped, to keep sampling honest)"
    return None


def _refuse_over_max(name: str, value: Any, deployment: Deployment) -> str | None:
    if isinstance(value, int) and value > deployment.max_output_tokens:
        return f"{name}={value} exceeds this deployment's max_output_tokens ({deployment.max_output_tokens})"
    return None


T, D, U = Handling.TRANSLATED, Handling.DROPPED, Handling.UNSUPPORTED

#: Every OpenAI chat-completions parameter and what this backend does with it.
PARAMETERS: dict[str, Param] = {
    "model": Param(T, "replaced by the deployment's model ID in the URL path"),
    "messages": Param(T, "system/developer -> system; user/assistant -> messages; tool -> user toolResult"),
    "stream": Param(T, "true -> ConverseStream"),
    "stream_options": Param(D, "Bedrock always reports usage (metadata event)"),
    "tools": Param(T, "toolConfig.tools[].toolSpec{name, description, inputSchema.json}"),
    "tool_choice": Param(T, "auto -> auto, required -> any, named -> tool, none -> toolConfig omitted"),
    "parallel_tool_calls": Param(D, "no Converse equivalent; the gateway's validator enforces false"),
    "response_format": Param(U, "no JSON mode for Llama 4 on Converse", _refuse_response_format),
    "temperature": Param(T, "inferenceConfig.temperature (0-1; above 1 refused)", _refuse_hot_temperature),
    "top_p": Param(T, "inferenceConfig.topP"),
    "max_completion_tokens": Param(T, "inferenceConfig.maxTokens", _refuse_over_max),
    "max_tokens": Param(T, "inferenceConfig.maxTokens (deprecated OpenAI alias)", _refuse_over_max),
    "stop": Param(T, "inferenceConfig.stopSequences"),
    "n": Param(U, "one choice only", _refuse_if_set),
    "seed": Param(D, "no Converse equivalent for Llama"),
    "user": Param(D, "end-user id, a hint only"),
    "metadata": Param(D, "OpenAI stored-completion metadata"),
    "store": Param(D, "OpenAI stored completions"),
    "service_tier": Param(D, "OpenAI tiers do not map onto Bedrock's serviceTier"),
    "frequency_penalty": Param(U, "no penalty parameters for Llama on Bedrock", _refuse_if_set),
    "presence_penalty": Param(U, "no penalty parameters for Llama on Bedrock", _refuse_if_set),
    "logprobs": Param(U, "Converse returns no log-probabilities", _refuse_if_set),
    "top_logprobs": Param(U, "Converse returns no log-probabilities", _refuse_if_set),
    "logit_bias": Param(D, "no Converse equivalent (named in x-corral-ignored-params)"),
    "corral": Param(D, "the gateway's own routing preferences, never forwarded"),
}

IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_DATA_URL = re.compile(r"data:(?P<mime>[^;,]+)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL)
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_WHITESPACE = re.compile(r"\s+")


def check_parameters(body: dict[str, Any], deployment: Deployment) -> None:
    """One dict lookup per body key; unknown keys are refused rather than silently lost."""
    for name, value in body.items():
        param = PARAMETERS.get(name)
        if param is None:
            raise UnsupportedRequest(f"parameter {name!r} is not known to the Bedrock adapter")
        if param.check is not None:
            reason = param.check(name, value, deployment)
        elif param.handling is Handling.UNSUPPORTED:
            reason = f"{name} is not supported by Bedrock Converse"
        else:
            reason = None
        if reason:
            raise UnsupportedRequest(reason)


def to_converse(body: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    """The Converse request body for an OpenAI chat-completions body."""
    check_parameters(body, deployment)
    system, messages, has_tool_blocks = convert_messages(body.get("messages") or [])
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    out["inferenceConfig"] = inference_config(body, deployment)
    tool_config = convert_tools(body.get("tools"), body.get("tool_choice"), has_tool_blocks)
    if tool_config is not None:
        out["toolConfig"] = tool_config
    return out


def inference_config(body: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or deployment.max_output_tokens
    config: dict[str, Any] = {"maxTokens": limit}
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    stops = [s for s in ([stop] if isinstance(stop, str) else stop or []) if s]
    if stops:
        config["stopSequences"] = stops
    return config


def convert_messages(raw: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
    """(system blocks, messages, whether any toolUse/toolResult block was written).

    Consecutive same-role turns are merged (Converse wants user/assistant alternation),
    so consecutive `tool` messages become one user turn of toolResult blocks. Empty text
    is dropped (Bedrock refuses blank text blocks), and a turn left empty disappears."""
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    has_tool_blocks = False
    for message in raw:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content")))
            continue
        convert = _ROLE_CONVERTERS.get(str(role))
        if convert is None:
            raise UnsupportedRequest(f"message role {role!r} cannot be sent to Bedrock")
        converse_role, blocks = convert(message)
        has_tool_blocks = has_tool_blocks or any("toolUse" in b or "toolResult" in b for b in blocks)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == converse_role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": converse_role, "content": blocks})
    if not messages or messages[0]["role"] != "user":
        raise UnsupportedRequest("Bedrock Converse needs a conversation that starts with a user turn")
    return system, messages, has_tool_blocks


def _text_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [{"text": p["text"]} for p in content or [] if p.get("type") == "text" and p.get("text")]


def _user_turn(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    content = message.get("content")
    if isinstance(content, str):
        return "user", _text_blocks(content)
    blocks: list[dict[str, Any]] = []
    for part in content or []:
        if part.get("type") == "image_url":
            blocks.append(image_block(str(part["image_url"]["url"])))
        elif part.get("text"):
            blocks.append({"text": part["text"]})
    return "user", blocks


def _assistant_turn(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    blocks = _text_blocks(message.get("content"))
    for call in message.get("tool_calls") or []:
        function = call["function"]
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": tool_use_id(call["id"]),
                    "name": function["name"],
                    "input": tool_input(function.get("arguments", "")),
                }
            }
        )
    return "assistant", blocks


def _tool_turn(message: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    text = "".join(b["text"] for b in _text_blocks(message.get("content")))
    result = {"toolUseId": tool_use_id(message["tool_call_id"]), "content": [{"text": text}] if text else []}
    return "user", [{"toolResult": result}]


_ROLE_CONVERTERS: dict[str, Callable[[dict[str, Any]], tuple[str, list[dict[str, Any]]]]] = {
    "user": _user_turn,
    "assistant": _assistant_turn,
    "tool": _tool_turn,
}


def image_block(url: str) -> dict[str, Any]:
    """A Converse image block from a base64 data URL. On the JSON wire a blob is base64
    text, so the payload passes through as-is (whitespace removed)."""
    if url.startswith(("http://", "https://")):
        raise UnsupportedRequest("Bedrock Converse cannot fetch image URLs; send the image as a data: URL")
    match = _DATA_URL.fullmatch(url)
    if not match or ";base64" not in match["params"].lower():
        raise UnsupportedRequest("image URL is neither http(s) nor a base64 data: URL")
    image_format = IMAGE_FORMATS.get(match["mime"].strip().lower())
    if image_format is None:
        raise UnsupportedRequest(f"image type {match['mime']!r} is not one of Bedrock's png/jpeg/gif/webp")
    return {"image": {"format": image_format, "source": {"bytes": _WHITESPACE.sub("", match["data"])}}}


def tool_use_id(raw: str) -> str:
    """OpenAI call ids usually fit Converse's `[a-zA-Z0-9_.:-]{1,64}`; others get a stable
    derived id, identical for the toolUse and its toolResult."""
    if _TOOL_USE_ID.fullmatch(raw):
        return raw
    return "call_" + hashlib.sha256(raw.encode()).hexdigest()[:40]


def tool_input(arguments: str) -> dict[str, Any]:
    """Converse wants the tool input as a JSON object, not a string."""
    if not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise UnsupportedRequest("an assistant tool call's arguments are not a JSON object; Converse needs one")
    return parsed


def convert_tools(tools: Any, choice: Any, has_tool_blocks: bool) -> dict[str, Any] | None:
    """toolConfig, or None. Converse has no "none" choice, and it refuses toolUse/toolResult
    blocks without a toolConfig, so "none" with a tool history cannot be served."""
    if not tools or choice == "none":
        if has_tool_blocks:
            raise UnsupportedRequest(
                "the conversation holds tool calls but the request sends no tools (or tool_choice "
                "none); Bedrock requires toolConfig with toolUse/toolResult blocks"
            )
        return None
    config: dict[str, Any] = {"tools": [_tool_spec(t["function"]) for t in tools]}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    return config


def _tool_spec(function: dict[str, Any]) -> dict[str, Any]:
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    spec: dict[str, Any] = {"name": function["name"], "inputSchema": {"json": schema}}
    if function.get("description"):
        spec["description"] = function["description"]
    return {"toolSpec": spec}


# --- answers -----------------------------------------------------------------------------

#: Converse stopReason -> OpenAI finish_reason; None: the model failed, not a finish.
FINISH_REASONS: dict[str, str | None] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "malformed_model_output": None,
    "malformed_tool_use": None,
}


def malformed(message: str) -> UpstreamError:
    return UpstreamError(ErrorKind.MALFORMED_RESPONSE, message, provider=PROVIDER, status=200)


def finish_reason(stop_reason: Any) -> str:
    """OpenAI finish_reason; unknown future values read as "stop"."""
    if not isinstance(stop_reason, str):
        raise malformed("Bedrock answer has no stopReason")
    if stop_reason in FINISH_REASONS:
        mapped = FINISH_REASONS[stop_reason]
        if mapped is None:
            raise malformed(f"Bedrock reported stopReason {stop_reason}")
        return mapped
    return "stop"


def usage_from_converse(raw: Any) -> Usage:
    """Bedrock counts cache reads and writes outside `inputTokens`; OpenAI's prompt_tokens
    includes cached tokens, so they are added back."""
    if not isinstance(raw, dict):
        raise malformed("Bedrock answer has no usage")
    counts = {
        k: raw.get(k, 0) for k in ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
    }
    if not all(isinstance(v, int) for v in counts.values()):
        raise malformed("Bedrock usage is not made of integers")
    prompt = counts["inputTokens"] + counts["cacheReadInputTokens"] + counts["cacheWriteInputTokens"]
    return Usage(prompt, counts["outputTokens"], counts["cacheReadInputTokens"])


def tool_call(tool_use: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": tool_use["toolUseId"],
        "type": "function",
        "function": {"name": tool_use["name"], "arguments": orjson.dumps(tool_use.get("input", {})).decode()},
    }


def from_converse(raw: Any, *, completion_id: str, model: str, created: int) -> tuple[dict[str, Any], Usage]:
    """An OpenAI `chat.completion` body and its usage from a Converse answer."""
    try:
        content = raw["output"]["message"]["content"]
        texts = [b["text"] for b in content if "text" in b]
        calls = [tool_call(b["toolUse"]) for b in content if "toolUse" in b]
    except (KeyError, TypeError) as exc:
        raise malformed(f"Bedrock answer does not have the Converse shape ({exc!r})") from None
    reason = finish_reason(raw.get("stopReason"))
    usage = usage_from_converse(raw.get("usage"))
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    body = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reason}],
        "usage": usage.to_openai(),
    }
    return body, usage


class StreamTranslator:
    """ConverseStream events -> OpenAI `chat.completion.chunk` dicts, one event at a time.

    Text blocks arrive as deltas without a start event; a tool block starts with
    `contentBlockStart.toolUse` and its input follows as JSON string fragments, which
    become `arguments` deltas of the tool call numbered in order of appearance."""

    def __init__(self, *, chunk_id: str, created: int, model: str) -> None:
        self._id = chunk_id
        self._created = created
        self._model = model
        self._tool_index: dict[Any, int] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.stopped = False

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def event(self, event_type: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk for one event, or None (events with nothing to tell the client)."""
        handler = _EVENT_HANDLERS.get(event_type)
        return handler(self, payload) if handler else None

    def _message_start(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.chunk({"role": "assistant", "content": ""})

    def _block_start(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        tool_use = (payload.get("start") or {}).get("toolUse")
        if not isinstance(tool_use, dict):
            return None
        index = self._tool_index.setdefault(payload.get("contentBlockIndex"), len(self._tool_index))
        call = {
            "index": index,
            "id": tool_use.get("toolUseId"),
            "type": "function",
            "function": {"name": tool_use.get("name"), "arguments": ""},
        }
        return self.chunk({"tool_calls": [call]})

    def _block_delta(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        delta = payload.get("delta") or {}
        if "text" in delta:
            return self.chunk({"content": delta["text"]})
        if "toolUse" in delta:
            index = self._tool_index.get(payload.get("contentBlockIndex"))
            if index is None:
                raise malformed("Bedrock sent tool input for a block that never started")
            fragment = delta["toolUse"].get("input", "")
            return self.chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        return None

    def _message_stop(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.finish_reason = finish_reason(payload.get("stopReason"))
        self.stopped = True
        return self.chunk({}, self.finish_reason)

    def _metadata(self, payload: dict[str, Any]) -> None:
        self.usage = usage_from_converse(payload.get("usage"))


_EVENT_HANDLERS: dict[str, Callable[[StreamTranslator, dict[str, Any]], dict[str, Any] | None]] = {
    "messageStart": StreamTranslator._message_start,
    "contentBlockStart": StreamTranslator._block_start,
    "contentBlockDelta": StreamTranslator._block_delta,
    "messageStop": StreamTranslator._message_stop,
    "metadata": StreamTranslator._metadata,
}
