"""Tools from a pydantic model: the SDK sends its JSON Schema, hands back the arguments as an
instance of the model, and `run_tools` runs the loop (bounded by max_rounds).

Needs the pydantic extra (from the repository root):  pip install -e 'sdk[pydantic]'
    CORRAL_BASE_URL=http://127.0.0.1:8080 CORRAL_API_KEY=... python sdk/examples/tools_pydantic.py
"""

from __future__ import annotations

import os
import sys
from typing import Literal

from pydantic import BaseModel, Field

import corral

MODEL = os.environ.get("CORRAL_MODEL", "llama-4-scout")


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="City name, e.g. Oslo")
    unit: Literal["celsius", "fahrenheit"] = "celsius"


def get_weather(args: GetWeather) -> dict[str, object]:
    if not isinstance(args, GetWeather):  # the SDK parsed the arguments into the model
        raise TypeError(f"expected GetWeather, got {type(args).__name__}")
    return {"city": args.city, "temperature": 21 if args.unit == "celsius" else 70, "unit": args.unit}


def main(client: corral.Corral | None = None) -> int:
    weather = corral.tool(GetWeather, handler=get_weather)
    try:
        with client or corral.Corral() as gateway:
            result = gateway.chat.completions.run_tools(
                model=MODEL,
                messages=[{"role": "user", "content": "What's the weather in Oslo?"}],
                tools=[weather],
                tool_validation="repair",
                max_rounds=3,
            )
    except corral.MaxToolRoundsExceeded as exc:
        print(f"the model kept calling tools: {exc}", file=sys.stderr)
        return 1
    except corral.CorralError as exc:
        print(f"request failed: {exc}", file=sys.stderr)
        return 1
    for completion in result.completions:
        for call in completion.choices[0].message.tool_calls or ():
            parsed = call.function.parsed_arguments
            if not isinstance(parsed, GetWeather):
                print(f"tool call {call.id} did not parse: {call.function.parse_error}", file=sys.stderr)
                return 1
            print(
                f"-- model called {call.function.name}({parsed!r}); "
                f"validation: {completion.corral.tool_validation}"
            )
    print(result.content)
    print(f"-- {result.rounds} tool round(s), served by {result.completion.corral.provider}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
