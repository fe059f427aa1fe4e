"""Routing preferences: ask the gateway where a request would go and why, then send it with the
same preferences and see what served it. Tags ride along for the spend report.

    CORRAL_BASE_URL=http://127.0.0.1:8080 CORRAL_API_KEY=... python sdk/examples/routing.py
"""

from __future__ import annotations

import os
import sys
from typing import Any

import corral

MODEL = os.environ.get("CORRAL_MODEL", "llama-4-scout")

PREFERENCES: dict[str, Any] = {
    "prefer": "cost",
    "providers": {"ignore": ["bedrock"]},
    "max_price_usd": 0.05,
    "tags": {"team": "examples", "feature": "routing-demo"},
}


def main(client: corral.Corral | None = None) -> int:
    messages = [{"role": "user", "content": "One sentence on why cheap inference matters."}]
    try:
        with client or corral.Corral() as gateway:
            plan = gateway.explain(model=MODEL, messages=messages, **PREFERENCES)
            rule = f"policy rule {plan.rule!r}" if plan.rule else "no rule matched: the policy's defaults"
            print(f"plan for {plan.model} ({rule}):")
            if plan.rejected:
                print(f"  the policy would reject this request: {plan.rejected}")
            for step in plan.plan:
                print(
                    f"  {step.provider:<10} {step.model_id or '':<46} ${step.expected_cost_usd} {step.reason}"
                )
            for dropped in plan.dropped:
                print(f"  dropped {dropped.provider}: {dropped.reason}")
            completion = gateway.chat.completions.create(
                model=MODEL, messages=messages, max_tokens=100, **PREFERENCES
            )
    except corral.CorralError as exc:
        print(f"request failed: {exc}", file=sys.stderr)
        return 1
    served = completion.corral.provider
    print(completion.choices[0].message.content)
    print(f"-- served by {served}, cost ${completion.corral.cost_usd}")
    if served == "bedrock":
        print("bedrock was ignored, yet it served the request", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
