"""Demo mode: with no provider credentials at all, each provider whose descriptor allows
it is served by Corral's own fake, started in-process on loopback, and its adapter is
pointed there (labelled simulated everywhere it shows). The runtime is the one importer."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from gateway.catalogue.deployments import Catalogue
from gateway.config import BedrockConfig, ProviderConfig, VllmPoolConfig
from gateway.fakes.server import FakeServer
from gateway.providers.registry import fake_class
from gateway.providers.spec import ProviderSpec


async def start_fakes(spec: ProviderSpec, config: ProviderConfig, catalogue: Catalogue) -> list[FakeServer]:
    """Start the provider's fakes: one per pooled deployment for a pool, else one."""
    cls = fake_class(spec.name)
    if spec.credentials == "pool":
        model_ids = [d.model_id for m in catalogue.models for d in catalogue.deployments(m) if d.provider == spec.name]
        fakes: list[FakeServer] = [cls(model_id=model_id) for model_id in model_ids]
    elif spec.credentials == "aws":
        fakes = [cls(region=(config.bedrock or BedrockConfig()).region)]
    else:
        fakes = [cls()]
    for fake in fakes:
        await fake.start()
    return fakes


def pointed_at(spec: ProviderSpec, config: ProviderConfig, fakes: list[FakeServer]) -> ProviderConfig:
    """The provider's configuration with its adapter aimed at its fakes, with their credentials."""
    update: dict[str, Any] = {"simulated": True}
    if spec.credentials == "pool":
        urls = [fake.base_url for fake in fakes]
        update["vllm"] = (config.vllm or VllmPoolConfig()).model_copy(update={"urls": urls})
        return config.model_copy(update=update)
    fake = fakes[0]
    update["base_url"] = fake.base_url
    if spec.credentials == "aws":
        update["bedrock"] = BedrockConfig(
            region=(config.bedrock or BedrockConfig()).region,
            access_key_id=SecretStr(fake.access_key_id),  # type: ignore[attr-defined]
            secret_access_key=SecretStr(fake.secret_access_key),  # type: ignore[attr-defined]
        )
    else:
        update["api_key"] = SecretStr(fake.api_key) if fake.api_key else None  # type: ignore[attr-defined]
    return config.model_copy(update=update)
