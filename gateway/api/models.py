"""GET /v1/models (and /v1/models/{model}, aliases resolved): logical models and aliases, with
every deployment and whether it is in use."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.api.auth import authenticate
from gateway.catalogue.deployments import Deployment, LogicalModel
from gateway.errors import Code, error
from gateway.runtime import Runtime

CREATED = 1743811200  # 2025-04-05, Llama 4's release


def _deployment(rt: Runtime, dep: Deployment, today: date) -> dict[str, Any]:
    provider = rt.providers.get(dep.provider)
    if provider is None:
        status, reason = "unavailable", "provider not configured"
    elif dep.retired_on(today):
        status, reason = "retired", dep.retired_reason
    elif dep.key in rt.state.out_of_rotation:
        status, reason = "out_of_rotation", rt.state.out_of_rotation[dep.key]
    else:
        status, reason = "active", None
    out: dict[str, Any] = {
        "provider": dep.provider,
        "model_id": dep.model_id,
        "status": status,
        "simulated": bool(provider and provider.simulated),
        "quantization": dep.quantization,
        "context_window": dep.context_window,
        "max_output_tokens": dep.max_output_tokens,
        "capabilities": sorted(dep.capabilities),
    }
    if reason:
        out["reason"] = reason
    return out


def _model(rt: Runtime, model: LogicalModel, today: date) -> dict[str, Any]:
    return {
        "id": model.name,
        "object": "model",
        "created": CREATED,
        "owned_by": "corral",
        "description": model.description,
        "aliases": list(model.aliases),
        "deployments": [_deployment(rt, d, today) for d in model.deployments],
    }


def make_handler(rt: Runtime) -> Any:
    async def list_models(request: Request) -> Response:
        # A key, as OpenAI's endpoint takes one: the list names providers and deployment state.
        authenticate(request, rt.keys, "chat")
        today = date.today()
        data = [_model(rt, model, today) for model in rt.catalogue.models.values()]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    return list_models


def make_retrieve_handler(rt: Runtime) -> Any:
    async def retrieve_model(request: Request) -> Response:
        """One model by name or alias (`meta-llama/...` aliases hold a slash), as in the list."""
        # A key, as for the list on main and at OpenAI: it names providers and deployment state.
        authenticate(request, rt.keys, "chat")
        name = request.path_params["model"]
        model = rt.catalogue.resolve(name)
        if model is None:
            known = ", ".join(sorted(rt.catalogue.models))
            raise error(Code.MODEL_NOT_FOUND, f"the model '{name}' does not exist; available: {known}", param="model")
        return Response(orjson.dumps(_model(rt, model, date.today())), media_type="application/json")

    return retrieve_model
