"""schemathesis over the gateway's own OpenAPI document: every operation, a bounded and
seeded number of examples each (valid and invalid ones), with an admin key and without
one, against a live gateway on its simulated providers. No answer may be a 5xx, and
every error must be OpenAI's error shape. The totals are printed at the end (`pytest -s`)
for the README's Reliability figures.

Cases are drawn from each operation's hypothesis strategy directly: schemathesis's own
pytest integration does not run on this pytest version.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from gateway.catalogue.deployments import load_catalogue
from gateway.config import load_settings
from gateway.runtime import Runtime
from gateway.serve.app import create_fastapi_app
from tests.hostile.conftest import ADMIN_KEY, AuthGateway, bearer
from tests.hostile.strategies import fuzz

#: Examples per operation and per caller; derandomized, so every run sends the same requests.
MAX_EXAMPLES = 30
DOCUMENT: dict[str, Any] = create_fastapi_app(Runtime.from_settings(load_settings(env={}))).openapi()
SCHEMA = schemathesis.openapi.from_dict(DOCUMENT)
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
CATALOGUE = load_catalogue()
KNOWN_MODELS = st.sampled_from(sorted({alias for m in CATALOGUE.models.values() for alias in (m.name, *m.aliases)}))
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@dataclass
class Tally:
    examples: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


@pytest.fixture(scope="module")
def tally() -> Iterator[Tally]:
    counted = Tally()
    yield counted
    shown = ", ".join(f"{status}: {n}" for status, n in sorted(counted.statuses.items()))
    print(f"\nschemathesis: {counted.examples} examples run, {counted.server_errors} 5xx found ({shown})")


def openai_error_shape(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """Every error answer is `{"error": {"message", "type", "code", "param"}}`."""
    del ctx, case
    if response.status_code < 400:
        return
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"{response.status_code} without an error object: {body!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"no message: {body!r}"
    assert isinstance(error.get("type"), str), f"no type: {body!r}"
    assert {"code", "param"} <= set(error), f"code or param missing: {body!r}"


@pytest.mark.parametrize("caller", ["admin-key", "no-key"])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_operation(operation: Any, caller: str, auth_gateway: AuthGateway, tally: Tally) -> None:
    headers = bearer(ADMIN_KEY) if caller == "admin-key" else {}

    @fuzz(MAX_EXAMPLES)
    @given(st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in MODES)), st.data())
    def run(case: schemathesis.Case, data: st.DataObject) -> None:
        if isinstance(case.body, dict) and "model" in case.body and data.draw(st.booleans()):
            case.body["model"] = data.draw(KNOWN_MODELS)  # reach routing and the backends too
        response = case.call(base_url=auth_gateway.url, headers=headers, timeout=30)
        tally.examples += 1
        tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors += 1
        case.validate_response(response, checks=[not_a_server_error, openai_error_shape])

    run()


def test_the_document_describes_the_chat_body() -> None:
    """The document as built in-process (what `docs: true` serves at /openapi.json)."""
    served = create_fastapi_app(Runtime.from_settings(load_settings(env={"CORRAL_DOCS": "on"}))).openapi()
    assert served["paths"].keys() == DOCUMENT["paths"].keys()
    operation = served["paths"]["/v1/chat/completions"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    chat = served["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"model", "messages"} <= set(chat["required"])
    assert {"tools", "corral", "stream", "response_format"} <= set(chat["properties"])
    assert {"401", "413", "429", "502"} <= set(operation["responses"])
