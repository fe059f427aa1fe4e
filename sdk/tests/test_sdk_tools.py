"""Tools from functions, pydantic models and dicts; parsed_arguments; coercion; results."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

import pydantic
import pytest
from sdk_fakes import FakeGateway, chat_body, tool_call

import corral
from corral._docstring import parse_docstring
from corral.tools import ToolRegistry, tool_result_content

MESSAGES = [{"role": "user", "content": "Weather in Oslo?"}]


class Unit(enum.Enum):
    C = "c"
    F = "f"


@dataclass
class Point:
    """A place."""

    lat: float
    lon: float
    label: str | None = None


class Filters(TypedDict, total=False):
    min_price: float


class Order(pydantic.BaseModel):
    """Place an order for a product."""

    sku: str = pydantic.Field(description="Stock keeping unit")
    quantity: int = pydantic.Field(ge=1)
    point: Point | None = None


def get_weather(city: str, unit: Unit = Unit.C, days: int = 1) -> str:
    """Current weather for a city.

    Longer explanation that stays in the description.

    Args:
        city: The city's name,
            in English.
        unit (Unit): Temperature unit.

    Returns:
        A sentence.
    """
    return f"{city}: 3 degrees {unit.value} for {days} day(s)"


def test_function_schema_from_hints_and_google_docstring() -> None:
    made = corral.tool(get_weather)
    assert made.name == "get_weather"
    assert (
        made.description == "Current weather for a city.\n\nLonger explanation that stays in the description."
    )
    assert made.parameters == {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city's name, in English."},
            "unit": {
                "enum": ["c", "f"],
                "type": "string",
                "description": "Temperature unit.",
                "default": "c",
            },
            "days": {"type": "integer", "default": 1},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    assert made.to_param()["type"] == "function"
    assert made("Oslo") == "Oslo: 3 degrees c for 1 day(s)"


def test_rich_types() -> None:
    def search(
        *,
        query: Annotated[str, "What to look for"],
        kinds: list[Literal["a", "b"]],
        where: Point,
        filters: Filters | None = None,
        weights: dict[str, float] | None = None,
        pair: tuple[int, str] = (1, "x"),
        tags: frozenset[str] = frozenset(),
        anything: Any = None,
    ) -> None:
        """Search.

        :param kinds: Which kinds.
        :param where: Where to search.
        """

    params = corral.tool(search).parameters
    props = params["properties"]
    assert props["query"] == {"type": "string", "description": "What to look for"}
    assert props["kinds"] == {
        "type": "array",
        "items": {"enum": ["a", "b"], "type": "string"},
        "description": "Which kinds.",
    }
    assert props["where"] == {"$ref": "#/$defs/Point", "description": "Where to search."}
    assert params["$defs"]["Point"]["required"] == ["lat", "lon"]
    assert params["$defs"]["Point"]["properties"]["label"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
    assert params["$defs"]["Filters"]["required"] == []
    assert props["weights"]["anyOf"][0] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["pair"]["default"] == [1, "x"]
    assert props["tags"] == {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    assert props["anything"] == {"default": None}
    assert params["required"] == ["query", "kinds", "where"]


def test_numpy_docstring() -> None:
    description, params = parse_docstring("""Add things.

    Parameters
    ----------
    a : int
        The first.
    b : int
        The second,
        continued.

    Returns
    -------
    int
    """)
    assert description == "Add things."
    assert params == {"a": "The first.", "b": "The second, continued."}


def test_unsupported_types_and_names_fail_early() -> None:
    def bad(x: complex) -> None: ...

    def star(*args: int) -> None: ...

    with pytest.raises(TypeError, match="JSON Schema"):
        corral.tool(bad)
    with pytest.raises(TypeError, match="args"):
        corral.tool(star)
    with pytest.raises(ValueError, match="name"):
        corral.tool(lambda x: x)
    assert corral.tool(lambda x: x, name="identity").name == "identity"
    with pytest.raises(ValueError, match="two tools"):
        ToolRegistry([get_weather, get_weather])


def test_decorator_forms() -> None:
    @corral.tool
    def ping() -> str:
        """Ping."""
        return "pong"

    @corral.tool(name="echo_v2", description="Echo back.")
    def echo(text: str) -> str:
        return text

    assert isinstance(ping, corral.Tool) and ping() == "pong"
    assert (echo.name, echo.description, echo("x")) == ("echo_v2", "Echo back.", "x")


def test_pydantic_tool() -> None:
    made = corral.tool(Order)
    assert made.name == "Order" and made.description == "Place an order for a product."
    assert made.model is Order
    assert made.parameters["properties"]["sku"]["description"] == "Stock keeping unit"
    assert made.parameters["required"] == ["sku", "quantity"]
    assert "Point" in made.parameters["$defs"]
    assert made.parse_arguments('{"sku": "A", "quantity": 2}') == Order(sku="A", quantity=2)
    with pytest.raises(corral.ToolArgumentsError) as info:
        made.parse_arguments('{"sku": "A", "quantity": 0}')
    assert info.value.errors[0].startswith("quantity:")


def test_dict_tool_passthrough() -> None:
    raw = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look up.",
            "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
        },
    }
    made = corral.tool(raw)
    assert made.to_param() == raw
    assert made.parse_arguments('{"id": 3}') == {"id": 3}


def test_tools_are_sent_and_tool_calls_come_back_parsed(gateway: FakeGateway) -> None:
    calls = [
        tool_call("get_weather", {"city": "Oslo", "unit": "f"}, "c1"),
        tool_call("Order", {"sku": "X-1", "quantity": 2, "point": {"lat": 1, "lon": 2}}, "c2"),
        tool_call("get_weather", '{"city": ', "c3"),
        tool_call("get_weather", {"unit": "k"}, "c4"),
    ]
    gateway.push(lambda request: __import__("httpx").Response(200, json=chat_body(None, calls)))
    completion = gateway.client().chat.completions.create(
        model="llama-4-scout", messages=MESSAGES, tools=[get_weather, Order], tool_choice="auto"
    )
    sent = gateway.sent_json()
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather", "Order"]
    assert sent["tool_choice"] == "auto"
    ok, model, broken, invalid = (c.function for c in completion.choices[0].message.tool_calls or ())
    assert ok.parsed_arguments == {"city": "Oslo", "unit": "f"} and ok.parse_error is None
    assert isinstance(model.parsed_arguments, Order)
    assert model.parsed_arguments.point is not None and model.parsed_arguments.point.lat == 1
    assert broken.parsed_arguments is None and "not valid JSON" in (broken.parse_error or "")
    assert invalid.parsed_arguments is None
    assert "'city' is a required property" in (invalid.parse_error or "")
    assert "'k' is not one of" in (invalid.parse_error or "")
    order: Order = model.arguments_as(Order)  # typed as Order for the type checker
    assert order is model.parsed_arguments and order.quantity == 2
    with pytest.raises(ValueError, match="not a valid Order"):
        ok.arguments_as(Order)


def test_invoke_coerces_to_declared_types() -> None:
    seen: dict[str, Any] = {}

    def plan(
        unit: Unit, where: Point, order: Order, stops: list[Point], pair: tuple[int, int] | None = None
    ) -> str:
        seen.update(unit=unit, where=where, order=order, stops=stops, pair=pair)
        return "ok"

    made = corral.tool(plan)
    args = made.parse_arguments(
        '{"unit": "f", "where": {"lat": 1.0, "lon": 2.0}, "order": {"sku": "s", "quantity": 1},'
        ' "stops": [{"lat": 3, "lon": 4}], "pair": [1, 2]}'
    )
    assert made.invoke(args) == "ok"
    assert seen["unit"] is Unit.F
    assert seen["where"] == Point(1.0, 2.0)
    assert seen["order"] == Order(sku="s", quantity=1)
    assert seen["stops"] == [Point(3, 4)]
    assert seen["pair"] == (1, 2)


def test_tool_result_content() -> None:
    assert tool_result_content("plain") == "plain"
    assert tool_result_content({"a": 1}) == '{"a": 1}'
    assert tool_result_content(Point(1, 2)) == '{"lat": 1, "lon": 2, "label": null}'
    assert tool_result_content(Order(sku="a", quantity=1)) == '{"sku":"a","quantity":1,"point":null}'
    assert tool_result_content(None) == "null"
