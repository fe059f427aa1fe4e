"""Token buckets behind the fakes' rate-limit headers, and the header value formats."""

from __future__ import annotations

import pytest

from gateway.fakes.openai.ratelimit import Bucket, go_duration, seconds_header


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(179.56, "2m59.56s"), (7.66, "7.66s"), (0.42, "420ms"), (0, "0s"), (3600, "1h0m0s"), (60, "1m0s"), (6, "6s")],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(7, "7"), (2.5, "2.5"), (0.125, "0.125"), (1.0, "1")])
def test_seconds_header(seconds: float, text: str) -> None:
    assert seconds_header(seconds) == text


def test_bucket_refills_evenly_over_its_period() -> None:
    now = [0.0]
    bucket = Bucket(10, 60, clock=lambda: now[0])
    assert bucket.take(10) and not bucket.take(1)
    assert bucket.remaining() == 0 and bucket.reset_s() == pytest.approx(60)
    assert bucket.wait_s(3) == pytest.approx(18)
    now[0] = 30
    assert bucket.remaining() == 5 and bucket.used() == 5
    now[0] = 1000
    assert bucket.remaining() == 10 and bucket.reset_s() == 0


def test_a_request_larger_than_the_limit_never_fits() -> None:
    bucket = Bucket(10, 1, clock=lambda: 0.0)
    assert not bucket.take(11)
    assert bucket.remaining() == 10
