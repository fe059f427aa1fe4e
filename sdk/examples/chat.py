"""A chat completion, and what served it.

CORRAL_BASE_URL=http://127.0.0.1:8080 CORRAL_API_KEY=... python sdk/examples/chat.py
"""

from __future__ import annotations

import os
import sys

import corral

MODEL = os.environ.get("CORRAL_MODEL", "llama-4-scout")


def main(client: corral.Corral | None = None) -> int:
    try:
        with client or corral.Corral() as gateway:
            completion = gateway.chat.completions.create(
                model=MODEL,
                messages=[
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Name three uses of a corral."},
                ],
                max_tokens=200,
            )
    except corral.CorralError as exc:
        print(f"request failed: {exc}", file=sys.stderr)
        return 1
    text = completion.choices[0].message.content if completion.choices else None
    if not text:
        print("the model returned no text", file=sys.stderr)
        return 1
    info = completion.corral
    print(text)
    print(
        f"-- served by {info.provider} ({info.model_id}) in {info.attempts} attempt(s), "
        f"cost ${info.cost_usd}, request {info.request_id}"
    )
    if completion.usage:
        print(f"-- tokens: {completion.usage.prompt_tokens} in, {completion.usage.completion_tokens} out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
