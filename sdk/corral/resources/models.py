"""`client.models.list()`: the logical models the gateway serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corral._base import RequestOptions
from corral.types.models import ModelList

if TYPE_CHECKING:
    from corral._client import AsyncCorral, Corral

MODELS_PATH = "/v1/models"


class Models:
    def __init__(self, client: Corral):
        self._client = client

    def list(self) -> ModelList:
        data, info = self._client._get_json(MODELS_PATH, None, RequestOptions())
        return ModelList.from_dict(data, corral=info)


class AsyncModels:
    def __init__(self, client: AsyncCorral):
        self._client = client

    async def list(self) -> ModelList:
        data, info = await self._client._get_json(MODELS_PATH, None, RequestOptions())
        return ModelList.from_dict(data, corral=info)
