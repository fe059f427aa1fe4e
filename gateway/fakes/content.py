"""Pure helpers that make up what a fake model says: filler text, prompt-token estimates,
JSON values valid against a JSON Schema (built in `oai_schema`, re-exported here), which
tool a request "calls", and the broken arguments that exercise the gateway's tool-call
repair.

Everything here is deterministic (seeded) so tests can compare exact outputs, and the
hot-path helpers are cached because fakes run under load tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import orjson

from gateway.fakes.openai.schema import SchemaError, example_from_schema, is_valid, regex_example, validator
from gateway.fakes.script import DIRECTIVE

__all__ = [
    "SchemaError",
    "choose_tool_call",
    "chunk_string",
    "count_prompt_tokens",
    "count_tokens",
    "example_from_schema",
    "generate_text",
    "malformed",
    "regex_example",
    "schema_invalid",
    "split_text",
    "text_pieces",
]

IMAGE_TOKENS = 600
CHARS_PER_TOKEN = 4

_WORDS = (
    "llamas", "graze", "quietly", "on", "the", "high", "plateau", "while", "a", "cool", "wind",
    "moves", "through", "tall", "grass", "and", "the", "herd", "keeps", "watch", "over", "its",
    "young", "as", "clouds", "drift", "past", "distant", "snowy", "peaks",
)  # fmt: skip
_SENTENCE = 12
_PIECE = re.compile(r"\s*\S+|\s+$")


# --------------------------------------------------------------------------- text


@lru_cache(maxsize=512)
def text_pieces(tokens: int) -> tuple[str, ...]:
    """`tokens` word-sized pieces of filler prose, each one stream delta (leading space included)."""
    pieces: list[str] = []
    for i in range(max(tokens, 0)):
        word = _WORDS[i % len(_WORDS)]
        start = i % _SENTENCE == 0
        if start:
            word = word.capitalize()
        if i % _SENTENCE == _SENTENCE - 1 or i == tokens - 1:
            word += "."
        pieces.append(word if i == 0 else " " + word)
    return tuple(pieces)


@lru_cache(maxsize=512)
def generate_text(tokens: int) -> str:
    """Deterministic filler text of about `tokens` tokens (one word per token)."""
    return "".join(text_pieces(tokens))


@lru_cache(maxsize=1024)
def split_text(text: str) -> tuple[str, ...]:
    """Split given text into word-sized stream deltas that concatenate back to `text`."""
    pieces = _PIECE.findall(text)
    return tuple(pieces) if "".join(pieces) == text else (text,)


def chunk_string(text: str, size: int) -> tuple[str, ...]:
    """Fixed-size slices (for JSON and tool arguments, which stream as character runs)."""
    return tuple(text[i : i + size] for i in range(0, len(text), size)) or ("",)


def count_tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def count_prompt_tokens(messages: Any) -> int:
    """Rough prompt size: characters / 4 over all message text, plus ~600 per image."""
    if not isinstance(messages, list):
        return 1
    chars = 0
    images = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
                elif part.get("type") in ("image_url", "image", "input_image"):
                    images += 1
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                chars += len(str(function.get("name", ""))) + len(str(function.get("arguments", "")))
    return max(1, chars // CHARS_PER_TOKEN + images * IMAGE_TOKENS)


# --------------------------------------------------------------------------- tool choice

_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "get",
    "give", "how", "i", "in", "is", "it", "list", "me", "my", "of", "on", "or", "please", "set",
    "show", "tell", "the", "this", "to", "use", "what", "whats", "when", "where", "which", "who",
    "with", "you", "your",
))  # fmt: skip


def _words(text: str) -> set[str]:
    found = _WORD.findall(_CAMEL.sub(r"\1 \2", text).lower())
    return {w.removesuffix("s") if len(w) > 3 else w for w in found} - _STOPWORDS


def _function_words(function: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    name = _words(str(function.get("name", "")))
    other = _words(str(function.get("description", "")))
    params = function.get("parameters")
    if isinstance(params, dict) and isinstance(params.get("properties"), dict):
        other |= _words(" ".join(params["properties"]))
    return name, other


def _functions(tools: Any) -> list[dict[str, Any]]:
    found = []
    for tool in tools if isinstance(tools, list) else ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            found.append(function)
    return found


def _last_user_words(messages: Sequence[Any]) -> set[str]:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return _words(DIRECTIVE.sub(" ", str(content or "")))
    return set()


def _best_match(functions: list[dict[str, Any]], messages: Sequence[Any]) -> tuple[dict[str, Any], int]:
    wanted = _last_user_words(messages)
    best, best_score = functions[0], -1
    for function in functions:
        name, other = _function_words(function)
        score = 2 * len(wanted & name) + len(wanted & (other - name))
        if score > best_score:
            best, best_score = function, score
    return best, best_score


def choose_tool_call(tools: Any, tool_choice: Any, messages: Any) -> dict[str, Any] | None:
    """The `function` object a plausible model would call, or None to answer in text.

    Named choice: that tool. "required": the best match. "auto" (or unset): the tool whose
    name/description words best overlap the last user message, but text when nothing
    overlaps or when the conversation ends with a tool result. "none": text.
    """
    functions = _functions(tools)
    history: Sequence[Any] = messages if isinstance(messages, list) else ()
    if not functions or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        wanted = function.get("name") if isinstance(function, dict) else None
        return next((f for f in functions if f["name"] == wanted), None)
    if tool_choice == "required":
        return _best_match(functions, history)[0]
    last = history[-1] if history else None
    if isinstance(last, dict) and last.get("role") == "tool":
        return None
    best, score = _best_match(functions, history)
    return best if score > 0 else None


# --------------------------------------------------------------------------- broken arguments


def _parses(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _truncated(text: str) -> str:
    return text[: max(1, len(text) * 2 // 3)]


def _single_quoted(text: str) -> str:
    return text.replace('"', "'")


def _trailing_comma(text: str) -> str:
    return text[:-1] + ",}" if text.endswith("}") else text + ","


_BREAKERS: tuple[Callable[[str], str], ...] = (_truncated, _single_quoted, _trailing_comma)


def malformed(arguments: Any, seed: int = 0) -> str:
    """Arguments text that is not valid JSON: truncated, single-quoted or with a trailing comma."""
    text = orjson.dumps(arguments).decode()
    for i in range(len(_BREAKERS)):
        broken = _BREAKERS[(seed + i) % len(_BREAKERS)](text)
        if not _parses(broken):
            return broken
    return "{" + text


_WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "twelve",
    "number": "1.5",
    "boolean": "yes",
    "array": "not-a-list",
    "object": "not-an-object",
    "null": 0,
}


def _invalid_candidates(arguments: Any, schema: Any) -> Iterable[Any]:
    if isinstance(arguments, dict) and isinstance(schema, dict):
        for name in schema.get("required") or ():
            if name in arguments:
                yield {k: v for k, v in arguments.items() if k != name}
        for name, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            declared = sub.get("type")
            first = declared[0] if isinstance(declared, list) and declared else declared
            wrong = _WRONG_TYPE.get(first) if isinstance(first, str) else {"unexpected": True}
            if "enum" in sub or "const" in sub:
                wrong = "not-an-allowed-value"
            yield {**arguments, name: wrong}
        yield {**arguments, "unexpected_field": "surprise"}
    yield ["not", "an", "object"]
    yield "not-an-object"


def schema_invalid(arguments: Any, schema: Any, seed: int = 0) -> Any:
    """Valid JSON that fails `schema`: a required field dropped, a wrong type, or an extra field."""
    checker = validator(schema)
    candidates = [c for c in _invalid_candidates(arguments, schema) if not is_valid(checker, c)]
    if not candidates:
        raise SchemaError("every value is valid against this schema")
    dict_candidates = [c for c in candidates if isinstance(c, dict)]
    pool = dict_candidates or candidates
    return pool[seed % len(pool)]
