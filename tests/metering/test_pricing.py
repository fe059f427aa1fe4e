"""Cost arithmetic against hand-computed cases, and price books that are refused."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from gateway.catalogue.prices import PriceBookError, load_price_book, parse_price_book
from gateway.schema.usage import Usage

BOOK = {
    "currency": "USD",
    "prices": [
        {"provider": "p", "model": "m", "effective": "2026-11-01", "input": "0.10", "output": "0.40"},
        {"provider": "p", "model": "m", "effective": "2026-11-16", "input": "0.20", "output": "0.80"},
        {
            "provider": "c",
            "model": "m",
            "effective": "2026-01-01",
            "input": "0.20",
            "cached_input": "0.05",
            "output": "0.60",
        },
    ],
}


def test_the_default_book_prices_a_groq_scout_request_by_hand() -> None:
    price = load_price_book().at("groq", "llama-4-scout", date(2026, 11, 1))
    assert price is not None
    # 1,000 x 0.11 / 1M + 200 x 0.34 / 1M = 0.00011 + 0.000068
    assert price.cost(Usage(1000, 200)) == Decimal("0.000178")


def test_cached_tokens_are_priced_at_the_cached_rate() -> None:
    price = parse_price_book(BOOK).at("c", "m", date(2026, 6, 1))
    assert price is not None
    # 6,000 uncached x 0.20 + 4,000 cached x 0.05 + 1,000 out x 0.60, per 1M
    assert price.cost(Usage(10_000, 1_000, 4_000)) == Decimal("0.0020")


def test_cached_input_defaults_to_the_input_price() -> None:
    price = parse_price_book(BOOK).at("p", "m", date(2026, 11, 1))
    assert price is not None and price.cached_input == Decimal("0.10")
    assert price.cost(Usage(1_000_000, 0, 500_000)) == Decimal("0.10")


def test_a_price_change_applies_from_its_effective_day() -> None:
    book = parse_price_book(BOOK)
    before, on, after = (book.at("p", "m", date(2026, 11, d)) for d in (15, 16, 30))
    assert before is not None and on is not None and after is not None
    assert before.cost(Usage(1_000_000, 1_000_000)) == Decimal("0.50")
    assert on.cost(Usage(1_000_000, 1_000_000)) == after.cost(Usage(1_000_000, 1_000_000)) == Decimal("1.00")
    assert book.at("p", "m", date(2026, 10, 31)) is None


def _entry(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {"provider": "p", "model": "m", "effective": "2026-01-01", "input": "1", "output": "2"}
    base.update(changes)
    return {"prices": [base]}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ({"price": []}, "expected a mapping with a 'prices' list"),
        (_entry(input=0.11), "write prices as strings"),
        (_entry(output="-1"), "non-negative"),
        (_entry(output="cheap"), "is not a number"),
        (_entry(effective="Nov 1"), "is not a date"),
        (_entry(currency="EUR"), "the ledger is kept in USD"),
        (_entry(basis="per_request"), "basis 'per_request'"),
        (_entry(discount="0.1"), "unknown key(s) ['discount']"),
        ({"prices": [{"provider": "p"}]}, "missing ['effective', 'input', 'model', 'output']"),
        ({"prices": _entry()["prices"] * 2}, "prices[1]: p/m from 2026-01-01 is already priced by prices[0]"),
        ({"unit": "per_1k_tokens", "prices": []}, "prices are per 1M tokens"),
    ],
)
def test_a_bad_price_book_is_refused_with_the_reason(raw: object, reason: str) -> None:
    with pytest.raises(PriceBookError) as caught:
        parse_price_book(raw, "book.yaml")
    assert reason in str(caught.value) and "book.yaml" in str(caught.value)


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text("prices: [unclosed")
    with pytest.raises(PriceBookError, match=r"prices\.yaml"):
        load_price_book(path)
    path.write_text(yaml.safe_dump(BOOK))
    assert len(load_price_book(path).in_force(date(2026, 11, 20))) == 2
