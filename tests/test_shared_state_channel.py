"""Gateways on different Redis database indexes never hear each other's state changes."""

from __future__ import annotations

import pytest

from gateway.live.shared import CHANNEL, channel_for


@pytest.mark.parametrize(
    ("url", "channel"),
    [
        ("redis://127.0.0.1:6379", CHANNEL),
        ("redis://127.0.0.1:6379/0", CHANNEL),
        ("redis://127.0.0.1:6379/12", f"{CHANNEL}:db12"),
        ("rediss://:secret@cache.internal:6380/3", f"{CHANNEL}:db3"),
        ("redis://127.0.0.1:6379?db=5", f"{CHANNEL}:db5"),
    ],
)
def test_the_channel_carries_the_database_index(url: str, channel: str) -> None:
    assert channel_for(url) == channel
