"""Everything long-lived the gateway owns: adapters (one HTTP client each), simulated
backends when no credentials are set, the dispatcher and the usage sink."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from gateway.config import BedrockConfig, ProviderConfig, Settings, VllmPoolConfig
from gateway.dispatch import Dispatcher
from gateway.fakes.registry import make_fake
from gateway.fakes.server import FakeServer
from gateway.metering.sink import MemorySink, QueueSink
from gateway.metering.sql import SqlStore
from gateway.pricing import PriceBook, load_price_book
from gateway.providers.base import Provider
from gateway.providers.registry import provider_class
from gateway.routing.catalogue import Catalogue, load_catalogue
from gateway.state import LiveState

log = logging.getLogger("corral")

#: Credentials Corral's own fakes accept (they are not secrets: the fakes only run on loopback).
SIMULATED_KEYS = {"groq": "test-groq-key", "together": "test-together-key", "deepinfra": "test-deepinfra-key"}
SIMULATED_AWS = ("AKIDCORRALTEST00000", "corral-test-secret")


@dataclass
class Runtime:
    settings: Settings
    catalogue: Catalogue
    prices: PriceBook
    providers: dict[str, Provider] = field(default_factory=dict)
    fakes: list[FakeServer] = field(default_factory=list)
    state: LiveState = field(default_factory=LiveState)
    sink: QueueSink | MemorySink = field(default_factory=MemorySink)
    dispatcher: Dispatcher = field(init=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        catalogue = load_catalogue().with_overrides(settings.catalogue)
        prices = load_price_book(Path(settings.price_book_path)) if settings.price_book_path else load_price_book()
        return cls(settings=settings, catalogue=catalogue, prices=prices)

    async def start(self) -> None:
        for name, configured in self.settings.providers.items():
            config = configured
            if not config.enabled:
                continue
            if not config.has_credentials():
                if not self.settings.simulate_missing:
                    log.info("provider %s: no credentials, not used", name)
                    continue
                config = await self._simulate(name, config)
            provider = provider_class(name)(config)
            await provider.start()
            self.providers[name] = provider
            mode = "SIMULATED (built-in fake)" if config.simulated else "live"
            log.info("provider %s: %s at %s", name, mode, config.base_url or "(pool)")
        self.dispatcher = Dispatcher(self.providers, self.catalogue, self.prices, self.state)
        if isinstance(self.sink, QueueSink):
            await self.sink.start()

    async def _simulate(self, name: str, config: ProviderConfig) -> ProviderConfig:
        """Start this provider's fake in-process and point the adapter at it."""
        if name == "vllm":
            urls = []
            for model in self.catalogue.models:
                dep = next(d for d in self.catalogue.deployments(model) if d.provider == "vllm")
                fake = make_fake("vllm", model_id=dep.model_id)
                await fake.start()
                self.fakes.append(fake)
                urls.append(fake.base_url)
            pool = (config.vllm or VllmPoolConfig()).model_copy(update={"urls": urls})
            return config.model_copy(update={"vllm": pool, "simulated": True})
        fake = make_fake(name)
        await fake.start()
        self.fakes.append(fake)
        update: dict[str, object] = {"base_url": fake.base_url, "simulated": True}
        if name == "bedrock":
            region = (config.bedrock or BedrockConfig()).region
            key, secret = SIMULATED_AWS
            update["bedrock"] = BedrockConfig(
                region=region, access_key_id=SecretStr(key), secret_access_key=SecretStr(secret)
            )
        else:
            update["api_key"] = SecretStr(SIMULATED_KEYS[name])
        return config.model_copy(update=update)

    async def close(self) -> None:
        if isinstance(self.sink, QueueSink):
            await self.sink.close()
        for provider in self.providers.values():
            await provider.close()
        for fake in self.fakes:
            await fake.stop()


def ledger_sink(settings: Settings) -> QueueSink:
    store = SqlStore(settings.database_url)
    return QueueSink(store, Path(settings.journal_path))
