"""How Bedrock's Converse checks a request body, for the fake: the same ValidationException
texts for the same mistakes (roles, content blocks, inference limits, tool configuration)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_TOOL_USE_ID = re.compile(r"[a-zA-Z0-9_.:-]{1,64}")
_BLOCK_KEYS = frozenset(
    {
        "text",
        "image",
        "document",
        "video",
        "audio",
        "toolUse",
        "toolResult",
        "guardContent",
        "cachePoint",
        "reasoningContent",
        "citationsContent",
        "searchResult",
    }
)
_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})


class BedrockRejection(Exception):
    """Raised inside the fake to answer with a Bedrock error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def invalid_request(message: str) -> BedrockRejection:
    return BedrockRejection(400, "ValidationException", message)


def validate_converse(body: Any, *, streaming: bool, stream_tools: bool) -> None:
    """Raise the ValidationException Bedrock would answer with, if any."""
    if not isinstance(body, dict):
        raise invalid_request("Malformed input request, please reformat your input and try again.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid_request(
            "A conversation must start with a user message. Try again with a conversation that starts "
            "with a user message."
        )
    uses_tools = False
    for i, message in enumerate(messages):
        uses_tools = _validate_message(message, i, messages[i - 1] if i else None) or uses_tools
    for i, block in enumerate(body.get("system") or []):
        if not isinstance(block, dict) or set(block) - {"text", "guardContent", "cachePoint"} or not block:
            raise invalid_request(f"The system content block at system.{i} is not valid.")
    _validate_inference(body.get("inferenceConfig") or {})
    tool_config = body.get("toolConfig")
    if uses_tools and not tool_config:
        raise invalid_request("The toolConfig field must be defined when using toolUse and toolResult content blocks.")
    if tool_config:
        _validate_tools(tool_config)
        if streaming and not stream_tools:
            raise invalid_request("This model doesn't support tool use in streaming mode.")
        _refuse_forced_choice(tool_config.get("toolChoice"))


def _refuse_forced_choice(choice: Any) -> None:
    """Llama 4 on Bedrock takes only `auto`: the service model limits `tool` to Anthropic
    Claude 3 and Amazon Nova, and the live service answers these texts (quoted in public
    issues); `any` is refused the same way for Llama 3.3, unverified for Llama 4 (refused
    here, the conservative side). docs/providers.md#69-llama-4-tool-use-on-bedrock"""
    for forced in ("tool", "any"):
        if isinstance(choice, dict) and forced in choice:
            raise invalid_request(
                f"This model doesn't support the toolConfig.toolChoice.{forced} field. "
                f"Remove toolConfig.toolChoice.{forced} and try again."
            )


def _validate_message(message: Any, i: int, previous: Any) -> bool:
    """Check one message; True when it holds toolUse/toolResult blocks."""
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("user", "assistant"):
        raise invalid_request(
            f"1 validation error detected: Value '{role}' at 'messages.{i + 1}.member.role' failed to "
            "satisfy constraint: Member must satisfy enum value set: [user, assistant]"
        )
    content = message.get("content")
    if not isinstance(content, list) or not content:
        raise invalid_request(
            f"The content field in the Message object at messages.{i} is empty. Add a ContentBlock "
            "object to the content field and try again."
        )
    if i == 0 and role != "user":
        raise invalid_request(
            "A conversation must start with a user message. Try again with a conversation that starts "
            "with a user message."
        )
    if previous is not None and previous.get("role") == role:
        raise invalid_request(
            "A conversation must alternate between user and assistant roles. Make sure the conversation "
            "alternates between user and assistant roles and try again."
        )
    uses_tools = False
    for j, block in enumerate(content):
        keys = set(block) if isinstance(block, dict) else set()
        if len(keys) != 1 or not keys <= _BLOCK_KEYS:
            raise invalid_request(f"The content block at messages.{i}.content.{j} must set exactly one member.")
        key = keys.pop()
        _BLOCK_CHECKS.get(key, _accept)(block[key], f"messages.{i}.content.{j}", role)
        uses_tools = uses_tools or key in ("toolUse", "toolResult")
    return uses_tools


def _accept(value: Any, where: str, role: str) -> None:
    return None


def _check_text(value: Any, where: str, role: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise invalid_request(
            f"The text field in the ContentBlock object at {where} is blank. Add text to the text field, and try again."
        )


def _check_image(value: Any, where: str, role: str) -> None:
    if role != "user":
        raise invalid_request("You can only include images and documents if the role is user.")
    if not isinstance(value, dict) or value.get("format") not in _IMAGE_FORMATS:
        raise invalid_request(
            f"1 validation error detected: Value at '{where}.image.format' failed to satisfy "
            "constraint: Member must satisfy enum value set: [png, jpeg, gif, webp]"
        )
    try:
        base64.b64decode(str((value.get("source") or {})["bytes"]), validate=True)
    except (KeyError, binascii.Error):
        raise invalid_request(f"The image at {where} could not be decoded: provide base64 image bytes.") from None


def _check_tool_use(value: Any, where: str, role: str) -> None:
    if role != "assistant" or not isinstance(value, dict):
        raise invalid_request(f"toolUse content at {where} is only allowed in assistant messages.")
    if not _TOOL_USE_ID.fullmatch(str(value.get("toolUseId", ""))) or not isinstance(value.get("input"), dict):
        raise invalid_request(f"The toolUse block at {where} needs a valid toolUseId, a name and an input object.")


def _check_tool_result(value: Any, where: str, role: str) -> None:
    if role != "user" or not isinstance(value, dict) or not isinstance(value.get("content"), list):
        raise invalid_request(f"The toolResult block at {where} needs a toolUseId and content, in a user message.")
    if not _TOOL_USE_ID.fullmatch(str(value.get("toolUseId", ""))):
        raise invalid_request(f"The toolUseId at {where} does not match pattern [a-zA-Z0-9_.:-]+.")


_BLOCK_CHECKS = {
    "text": _check_text,
    "image": _check_image,
    "toolUse": _check_tool_use,
    "toolResult": _check_tool_result,
}


def _validate_inference(config: dict[str, Any]) -> None:
    for name, low, high in (("temperature", 0, 1), ("topP", 0, 1), ("maxTokens", 1, None)):
        value = config.get(name)
        if value is None:
            continue
        if value < low:
            raise invalid_request(
                f"1 validation error detected: Value '{value}' at 'inferenceConfig.{name}' failed to "
                f"satisfy constraint: Member must have value greater than or equal to {low}"
            )
        if high is not None and value > high:
            raise invalid_request(
                f"1 validation error detected: Value '{value}' at 'inferenceConfig.{name}' failed to "
                f"satisfy constraint: Member must have value less than or equal to {high}"
            )
    if any(not isinstance(s, str) or not s for s in config.get("stopSequences") or []):
        raise invalid_request("Stop sequences must be non-empty strings.")


def _validate_tools(config: dict[str, Any]) -> None:
    names = []
    for k, tool in enumerate(config.get("tools") or []):
        spec = tool.get("toolSpec") or {}
        name = spec.get("name", "")
        if not _TOOL_NAME.fullmatch(str(name)):
            raise invalid_request(
                f"1 validation error detected: Value '{name}' at 'toolConfig.tools.{k + 1}.member."
                "toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression "
                "pattern: [a-zA-Z0-9_-]+"
            )
        schema = (spec.get("inputSchema") or {}).get("json")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise invalid_request(
                f"The value at toolConfig.tools.{k}.toolSpec.inputSchema.json.type must be one of the "
                "following: object."
            )
        names.append(name)
    if not names:
        raise invalid_request("The toolConfig field must contain at least one tool.")
    choice = config.get("toolChoice")
    if choice is not None and (
        not isinstance(choice, dict) or len(choice) != 1 or not set(choice) <= {"auto", "any", "tool"}
    ):
        raise invalid_request("toolConfig.toolChoice must set exactly one of auto, any, tool.")
    if choice and "tool" in choice and choice["tool"].get("name") not in names:
        raise invalid_request("The tool named in toolConfig.toolChoice.tool is not in toolConfig.tools.")
