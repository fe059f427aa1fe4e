"""The pool's per-token prices and its fixed cost come from one source: its GPUs, $/GPU-hour
and stated throughput (gateway.catalogue.pool_prices), configured under providers.vllm.vllm."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from gateway.catalogue.pool_prices import STATED, PoolBasis, Throughput, derive
from gateway.catalogue.prices import PriceBookError, load_price_book, parse_price_book
from gateway.config import load_settings
from gateway.metering.service import pool_config, price_book
from gateway.schema.usage import Usage

DAY = date(2026, 11, 1)


def test_the_shipped_pool_rows_are_derived_from_8_h100s_at_2_50_and_9000_tokens_per_s() -> None:
    book = load_price_book()
    for provider in ("vllm", "sglang"):
        for model in ("llama-4-scout", "llama-4-maverick"):
            price = book.at(provider, model, DAY)
            assert price is not None and price.basis == "gpu_hours" and price.derived is not None
            # 8 x 2.50 USD/h = 20 USD/h; / 3600 s / 9,000 tok/s x 1M = 0.617284; / 36,000 = 0.154321
            assert (price.input, price.cached_input, price.output) == (
                Decimal("0.154321"),
                Decimal("0.154321"),
                Decimal("0.617284"),
            )
            assert price.derived.explain().startswith("8 GPUs x 2.50 USD/GPU-hour / 36,000 input | 9,000 output")
            assert "unverified" in price.derived.explain()


def test_a_pool_row_with_hand_typed_prices_is_refused() -> None:
    row = {"provider": "vllm", "model": "llama-4-scout", "effective": "2025-04-05", "basis": "gpu_hours"}
    with pytest.raises(PriceBookError, match=r"derived from the pool.*remove \['input', 'output'\]"):
        parse_price_book({"prices": [{**row, "input": "0.05", "output": "0.20"}]})
    with pytest.raises(PriceBookError, match="no throughput stated for llama-5"):
        parse_price_book({"prices": [{**row, "model": "llama-5"}]})


def test_requests_at_the_stated_throughput_are_charged_exactly_what_the_gpus_cost() -> None:
    """One hour of the pool, half prefilling and half decoding at the stated rates, is charged
    (request by request, at the derived prices) what 8 GPUs cost for an hour: 20 USD."""
    price = load_price_book().at("vllm", "llama-4-scout", DAY)
    assert price is not None
    rate = STATED["llama-4-scout"]
    usage = Usage(int(rate.input_tokens_per_s * 1800), int(rate.output_tokens_per_s * 1800), 0)
    assert abs(price.cost(usage) - Decimal(20)) < Decimal("0.0001")


def test_a_model_on_its_own_gpus_is_priced_on_those() -> None:
    basis = PoolBasis(16, Decimal("3.00"), {"llama-4-scout": Throughput(Decimal(12000), Decimal(48000), "bench", 8)})
    # 8 x 3.00 / 3600 / 12,000 x 1M
    assert derive(basis, "llama-4-scout").output == Decimal("0.555556")


def test_the_configured_pool_sets_both_its_prices_and_its_fixed_cost(tmp_path: Path) -> None:
    config = tmp_path / "corral.yaml"
    pool = {
        "gpus": 16,
        "gpu_hour_usd": "3.00",
        "throughput": {
            "llama-4-scout": {"gpus": 8, "output_tokens_per_s": 12000, "input_tokens_per_s": 48000, "source": "bench"}
        },
    }
    config.write_text(yaml.safe_dump({"providers": {"vllm": {"vllm": pool}}}))
    settings = load_settings(config, env={})
    book = price_book(settings)
    scout, maverick = book.at("vllm", "llama-4-scout", DAY), book.at("vllm", "llama-4-maverick", DAY)
    assert scout is not None and maverick is not None
    assert (scout.input, scout.output) == (Decimal("0.138889"), Decimal("0.555556"))
    # Maverick keeps the stated throughput, on the whole pool's 16 GPUs at 3.00: 48 USD/h / 9,000 tok/s.
    assert maverick.output == Decimal("1.481481")
    fixed = pool_config(settings)
    assert fixed is not None and (fixed.gpus, fixed.gpu_hour_usd, fixed.provider) == (16, Decimal("3.00"), "vllm")


def test_the_compose_config_prices_each_model_on_its_own_node() -> None:
    """deploy/corral.yaml: 16 GPUs in the fixed cost, 8 per model in each model's price."""
    settings = load_settings(Path(__file__).resolve().parents[2] / "deploy" / "corral.yaml", env={})
    book = price_book(settings)
    for model in ("llama-4-scout", "llama-4-maverick"):
        price = book.at("vllm", model, DAY)
        assert price is not None and price.output == Decimal("0.617284"), model
    fixed = pool_config(settings)
    assert fixed is not None and fixed.gpus == 16
