"""litellm deployments in the config file: keys by reference, one deployment per model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from gateway.config import ConfigError, load_settings
from gateway.providers.litellm.adapter import LitellmProvider
from gateway.runtime import Runtime

VERTEX = {
    "model": "llama-4-maverick",
    "litellm_model": "vertex_ai/meta/llama-4-maverick-17b-128e-instruct-maas",
    "api_key_env": "VERTEX_TEST_TOKEN",
    "input_usd_per_1m": "0.35",
    "output_usd_per_1m": "1.15",
    "capabilities": ["stream", "tools"],
    "extra": {"vertex_project": "p", "vertex_location": "us-east5"},
}


def write(tmp_path: Path, providers: dict[str, object]) -> Path:
    path = tmp_path / "corral.yaml"
    path.write_text(yaml.safe_dump({"providers": providers}))
    return path


def test_the_key_is_read_from_the_named_variable(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, {"litellm": {"deployments": [VERTEX]}}), env={"VERTEX_TEST_TOKEN": "t0k"})
    config = settings.providers["litellm"]
    (deployment,) = config.deployments
    assert deployment.api_key is not None and deployment.api_key.get_secret_value() == "t0k"
    assert "t0k" not in repr(config) and config.has_credentials()
    assert not load_settings(env={}).providers["litellm"].has_credentials()


def test_deployments_become_catalogue_rows_and_prices(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, {"litellm": {"deployments": [VERTEX]}}), env={})
    config = settings.providers["litellm"]
    row = LitellmProvider.catalogue_rows(config)["litellm/llama-4-maverick"]
    assert row["model_id"] == VERTEX["litellm_model"] and row["capabilities"] == ["stream", "tools"]
    (price,) = LitellmProvider.configured_prices(config)
    assert (price.provider, price.model, str(price.input), str(price.output)) == (
        "litellm",
        "llama-4-maverick",
        "0.35",
        "1.15",
    )
    runtime = Runtime.from_settings(settings)
    dep = next(d for d in runtime.catalogue.deployments("llama-4-maverick") if d.provider == "litellm")
    assert dep.model_id == VERTEX["litellm_model"] and dep.capabilities == {"stream", "tools"}
    assert runtime.prices.at("litellm", "llama-4-maverick", date.today()) == price


@pytest.mark.parametrize(
    ("providers", "fragment"),
    [
        ({"groq": {"deployments": [VERTEX]}}, "only the litellm provider"),
        ({"litellm": {"deployments": [VERTEX, VERTEX]}}, "one litellm deployment per logical model"),
        ({"litellm": {"deployments": [{**VERTEX, "input_usd_per_1m": "-1"}]}}, "input_usd_per_1m"),
        ({"litellm": {"deployments": [{**VERTEX, "api_key": "sk-in-the-file"}]}}, "write api_key_env"),
    ],
)
def test_invalid_deployments_say_what_is_wrong(tmp_path: Path, providers: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(write(tmp_path, providers), env={})
