"""Run one fake provider until SIGINT/SIGTERM:

    python -m gateway.fakes groq --port 9001 --latency-ms 40 --tokens-per-s 300

The first line on stdout is the fake's base_url (what an adapter's base_url must be).
`--set KEY=VALUE` passes any other constructor option (value parsed as YAML), e.g.
`--set tokens_per_minute=100000000` for a load test that must not hit Groq's limits.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from gateway.fakes.registry import faked, make_fake
from gateway.fakes.script import Behaviour


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, yaml.safe_load(value)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway.fakes", description="Run one fake LLM provider.")
    parser.add_argument("provider", choices=faked())
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer's status line")
    parser.add_argument("--tokens-per-s", type=float, default=None, help="output pacing (default: no pacing)")
    parser.add_argument("--completion-tokens", type=int, default=16, help="length of generated answers")
    parser.add_argument(
        "--tail-every", type=int, default=None,
        help="test knob, not a provider rule: every Nth request waits --tail-latency-ms instead (a slow tail)",
    )  # fmt: skip
    parser.add_argument("--tail-latency-ms", type=float, default=0.0, help="the slow tail's delay")
    parser.add_argument("--no-record", action="store_true", help="do not keep requests in memory")
    parser.add_argument(
        "--set", dest="options", type=_option, action="append", default=[], metavar="KEY=VALUE",
        help="extra constructor option for the fake (repeatable)",
    )  # fmt: skip
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    fake = make_fake(args.provider, host=args.host, port=args.port, **dict(args.options))
    fake.script.default = Behaviour(
        latency_ms=args.latency_ms,
        tokens_per_s=args.tokens_per_s,
        completion_tokens=args.completion_tokens,
        tail_every=args.tail_every,
        tail_latency_ms=args.tail_latency_ms,
    )
    fake.record = not args.no_record
    await fake.start()
    print(fake.base_url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args))
    else:
        uvloop.run(serve(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
