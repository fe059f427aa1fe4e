"""Encoder for AWS `application/vnd.amazon.eventstream` frames (docs/providers.md#67-event-stream-framing).

botocore ships only a decoder (`botocore.eventstream.EventStreamBuffer`); the Bedrock
fake needs the other half. A frame is: a 12-byte prelude (total length, headers length,
CRC32 of those 8 bytes), the headers, the payload, then a CRC32 of everything before it.
All integers are big-endian; CRC is standard CRC-32 (IEEE), as `zlib.crc32`.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

#: Header value type for UTF-8 strings (2-byte length prefix), the only type Bedrock sends.
STRING_TYPE = 7
PRELUDE_LENGTH = 12
CRC_LENGTH = 4


def encode_headers(headers: dict[str, str]) -> bytes:
    """Headers as name-length, name, value-type 7, value-length, value."""
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode()
        raw_value = value.encode()
        if len(raw_name) > 255 or len(raw_value) > 0xFFFF:
            raise ValueError(f"event-stream header {name!r} is too long")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", STRING_TYPE, len(raw_value)) + raw_value
    return bytes(out)


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One complete frame: prelude, prelude CRC, headers, payload, message CRC."""
    raw_headers = encode_headers(headers)
    total = PRELUDE_LENGTH + len(raw_headers) + len(payload) + CRC_LENGTH
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """An event of the ConverseStream union, e.g. `contentBlockDelta`."""
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return encode_message(headers, orjson.dumps(payload))


def exception_frame(exception_type: str, payload: dict[str, Any]) -> bytes:
    """A modelled exception, `exception_type` in lowerCamel (e.g. `throttlingException`)."""
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return encode_message(headers, orjson.dumps(payload))


def error_frame(code: str, message: str) -> bytes:
    """An unmodelled error: `:message-type error` with code and message in headers."""
    headers = {":error-code": code, ":error-message": message, ":message-type": "error"}
    return encode_message(headers, b"")
