"""Fuzz the request parser (bytes -> ChatRequest): whatever arrives, the answer is a
ChatRequest or the gateway's own 4xx in OpenAI's error shape, never another exception."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.api.parse import parse_chat
from gateway.catalogue.deployments import Catalogue, load_catalogue
from gateway.errors import GatewayError
from gateway.schema.chat import ChatRequest
from tests.hostile.strategies import CHAT_BODIES, JSON, fuzz

CATALOGUE: Catalogue = load_catalogue()


def parse_or_refuse(raw: bytes) -> ChatRequest | GatewayError:
    """The parser's answer; any exception other than a GatewayError fails the test."""
    try:
        return parse_chat(raw, CATALOGUE, "req_fuzz")
    except GatewayError as err:
        return err


def assert_client_error(result: ChatRequest | GatewayError) -> None:
    if isinstance(result, ChatRequest):
        assert result.model in CATALOGUE.models
        assert "corral" not in result.body
        return
    assert 400 <= result.status < 500, result.message
    error = result.body()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and {"code", "param"} <= set(error)
    orjson.dumps(result.body())  # what the client gets is always serialisable


@fuzz(300)
@given(st.binary(max_size=200))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert_client_error(parse_or_refuse(raw))


@fuzz(300)
@given(JSON)
def test_arbitrary_json(value: Any) -> None:
    assert_client_error(parse_or_refuse(orjson.dumps(value)))


@fuzz(400)
@given(CHAT_BODIES)
def test_near_valid_chat_bodies(body: dict[str, Any]) -> None:
    assert_client_error(parse_or_refuse(orjson.dumps(body)))


@fuzz(150)
@given(CHAT_BODIES, st.data())
def test_truncated_and_spliced_bodies(body: dict[str, Any], data: st.DataObject) -> None:
    raw = orjson.dumps(body)
    cut = data.draw(st.integers(0, len(raw)))
    junk = data.draw(st.binary(max_size=8))
    assert_client_error(parse_or_refuse(raw[:cut] + junk + raw[cut:]))


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000,
        b'{"a":' * 100_000,
        b'{"model":"llama-4-scout","messages":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"model":"llama-4-scout","messages":[{"role":"user","content":"hi"}],"max_tokens":' + b"9" * 5000 + b"}",
        b'{"model":"llama-4-scout","messages":[{"role":"user","content":"\\ud800"}]}',
        b'{"model":"llama-4-scout","messages":[{"role":"user","content":"hi"}],"temperature":1e999}',
        b"\xef\xbb\xbf{}",
        b"\x00" * 64,
        b'{"model":"llama-4-scout","messages":[{"role":"system","content":"","tool_calls":"0"}]}',
        b'{"model":"llama-4-scout","messages":[{"role":"user","content":"hi","tool_calls":[7]}]}',
        '{"model": "llama-4-scout", "messages": [{"role": "user", "content": "\u2028"}]}'.encode(),
    ],
    ids=[
        "deep-list",
        "deep-object",
        "deep-messages",
        "huge-int",
        "lone-surrogate",
        "inf-float",
        "bom",
        "nul",
        "line-separator",
        "extra-tool-calls-str",
        "extra-tool-calls-int",
    ],
)
def test_adversarial_bodies(raw: bytes) -> None:
    assert_client_error(parse_or_refuse(raw))
