"""Streaming: print tokens as they arrive, then the assembled message and the usage.

CORRAL_BASE_URL=http://127.0.0.1:8080 CORRAL_API_KEY=... python sdk/examples/streaming.py
"""

from __future__ import annotations

import os
import sys

import corral

MODEL = os.environ.get("CORRAL_MODEL", "llama-4-scout")


def main(client: corral.Corral | None = None) -> int:
    try:
        with client or corral.Corral() as gateway:
            stream = gateway.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Write a haiku about cattle."}],
                stream=True,
            )
            with stream:
                for chunk in stream:
                    for choice in chunk.choices:
                        print(choice.delta.content or "", end="", flush=True)
            print()
            final = stream.get_final_completion()
    except corral.CorralError as exc:
        print(f"\nstream failed: {exc}", file=sys.stderr)
        return 1
    if stream.usage is None:
        print("the stream ended without usage", file=sys.stderr)
        return 1
    if final.choices[0].message.content != stream.text:
        print("assembled text does not match the chunks", file=sys.stderr)
        return 1
    print(
        f"-- {stream.usage.completion_tokens} tokens from {stream.corral.provider}, "
        f"request {stream.corral.request_id}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
