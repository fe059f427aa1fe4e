"""Write a reproducible synthetic request trace for `corral simulate` (JSON lines).

python -m loadtests.make_trace --minutes 10 --rate 8 --seed 7 > loadtests/traces/sample.jsonl
python -m loadtests.make_trace --minutes 10 --rate 5 --seed 17 --plain --stream > loadtests/traces/heavy_tail.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys

import orjson

MIX = [
    # (share, model, prompt tokens (mean), output tokens (mean), features, tags)
    (0.45, "llama-4-scout", 900, 180, [], {"team": "search"}),
    (0.20, "llama-4-scout", 2500, 250, ["tools"], {"team": "agents"}),
    (0.20, "llama-4-maverick", 1500, 300, [], {"team": "assistant"}),
    (0.10, "llama-4-maverick", 1200, 200, ["images"], {"team": "assistant"}),
    (0.05, "llama-4-scout", 30000, 400, [], {"team": "research"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=8, help="mean requests per second (Poisson arrivals)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--plain", action="store_true", help="only the mix's first row (Scout, no tools or images)")
    parser.add_argument("--stream", action="store_true", help="every request streamed")
    args = parser.parse_args()
    mix = MIX[:1] if args.plain else MIX
    rng = random.Random(args.seed)
    t = 0.0
    end = args.minutes * 60
    weights = [m[0] for m in mix]
    out = sys.stdout.buffer
    while True:
        t += rng.expovariate(args.rate)
        if t >= end:
            break
        _, model, prompt, output, features, tags = rng.choices(mix, weights)[0]
        produced = max(8, int(rng.gauss(output, output / 4)))
        line = {
            "t": round(t, 3),
            "model": model,
            "prompt_tokens": max(16, int(rng.gauss(prompt, prompt / 5))),
            "max_tokens": 1024,
            "output_tokens": produced,
            "features": features,
            "tags": tags,
        }
        if args.stream:
            line["stream"] = True
        out.write(orjson.dumps(line) + b"\n")


if __name__ == "__main__":
    main()
