"""Process configuration: defaults < file < environment; errors say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings


def test_environment_sets_credentials_urls_and_pool() -> None:
    settings = load_settings(
        env={
            "GROQ_API_KEY": "gk",
            "CORRAL_GROQ_BASE_URL": "http://egress.internal:3128/groq/openai/v1",
            "CORRAL_VLLM_URLS": "http://10.0.0.5:8000, http://10.0.0.6:8000",
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_REGION": "us-west-2",
            "DATABASE_URL": "postgresql+psycopg://corral@db/corral",
        }
    )
    groq = settings.providers["groq"]
    assert groq.base_url == "http://egress.internal:3128/groq/openai/v1"
    assert groq.api_key is not None and groq.api_key.get_secret_value() == "gk"
    assert "gk" not in repr(groq)
    assert settings.providers["vllm"].vllm is not None
    assert settings.providers["vllm"].vllm.urls == ["http://10.0.0.5:8000", "http://10.0.0.6:8000"]
    assert settings.providers["bedrock"].has_credentials()
    assert settings.providers["bedrock"].bedrock is not None
    assert settings.providers["bedrock"].bedrock.region == "us-west-2"
    assert settings.providers["together"].base_url == "https://api.together.xyz/v1"
    assert not settings.providers["together"].has_credentials()
    assert settings.database_url.startswith("postgresql")


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "corral.yaml"
    config.write_text(
        "port: 9000\nproviders:\n  deepinfra:\n    base_url: http://file/v1/openai\n"
        "    timeouts: {connect_s: 2, first_byte_s: 10, total_s: 60}\n"
    )
    settings = load_settings(config, env={"CORRAL_DEEPINFRA_BASE_URL": "http://env/v1/openai"})
    assert settings.port == 9000
    assert settings.providers["deepinfra"].base_url == "http://env/v1/openai"
    assert settings.providers["deepinfra"].timeouts.first_byte_s == 10


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("providers:\n  openai: {}\n", "unknown provider"),
        ("providers:\n  groq:\n    timeouts: {connect_s: -1}\n", "providers.groq.timeouts.connect_s"),
        ("prot: 1\n", "prot"),
        ("- a list\n", "mapping"),
    ],
)
def test_invalid_files_say_where(tmp_path: Path, text: str, where: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    assert where in str(err.value)
    assert "bad.yaml" in str(err.value)
