"""Request bodies cannot steer the upstream call, and no secret leaks.

A gateway runs against two "live" providers on loopback with canary credentials: the
DeepInfra fake, and a Together stand-in that answers 401 echoing the key it was sent (as real
providers do). Hostile bodies try to change the upstream URL, credentials and headers;
then every log record, span, ledger row, journal byte and response body is searched for
the canaries (provider keys, the admin key, a wrong key a client sent).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.config import load_settings
from gateway.fakes.deepinfra import DeepInfraFake
from gateway.fakes.server import running_in_thread
from gateway.metering.sink import QueueSink
from gateway.metering.sql import SqlStore
from gateway.telemetry.logs import JsonFormatter
from gateway.telemetry.tracing import make_tracer
from tests.support import running_gateway

DEEPINFRA_KEY = "sk-secret-canary-deepinfra-7f3a9c"
TOGETHER_KEY = "sk-secret-canary-together-2b8e41"
ADMIN_KEY = "sk-secret-canary-admin-c0ffee"
WRONG_KEY = "sk-secret-canary-wrong-d15ea5e"
CANARY = "sk-secret-canary"
CHAT = {"model": "llama-4-maverick", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
INJECTED = "x-injected"
CLIENT_LOGGERS = ("httpx", "httpcore")
HOSTILE_VALUE = f"v\r\n{INJECTED}: 1\r\nhost: evil.example"


class EchoingAuthFailure(BaseHTTPRequestHandler):
    """A provider that refuses every key and quotes it back in the error message."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        quoted = self.headers.get("authorization", "")
        body = json.dumps({"error": {"message": f"Invalid API Key: {quoted}", "type": "invalid_request_error"}})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


class Captured(logging.Handler):
    """Every record the gateway logs, as its JSON line (the test's own HTTP client left out)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.formatter_json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(CLIENT_LOGGERS):
            return
        self.lines.append(self.formatter_json.format(record))


@dataclass
class Live:
    url: str
    deepinfra: DeepInfraFake
    directory: Path
    spans: InMemorySpanExporter
    logs: Captured
    answers: list[str] = field(default_factory=list)

    def post(self, path: str, body: Any, key: str = ADMIN_KEY) -> httpx.Response:
        response = httpx.post(self.url + path, json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
        self.answers.append(response.text)
        return response


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp("secrets")
    echo = ThreadingHTTPServer(("127.0.0.1", 0), EchoingAuthFailure)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    deepinfra = DeepInfraFake(api_key=DEEPINFRA_KEY)
    logs = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    exporter = InMemorySpanExporter()
    env = {
        "DEEPINFRA_API_KEY": DEEPINFRA_KEY,
        "TOGETHER_API_KEY": TOGETHER_KEY,
        "CORRAL_TOGETHER_BASE_URL": f"http://127.0.0.1:{echo.server_address[1]}/v1",
        "CORRAL_API_KEYS": ADMIN_KEY,
        "DATABASE_URL": f"sqlite:///{directory / 'ledger.db'}",
    }
    try:
        with running_in_thread(deepinfra):
            env["CORRAL_DEEPINFRA_BASE_URL"] = deepinfra.base_url
            sink = QueueSink(SqlStore(env["DATABASE_URL"]), directory / "usage.journal")
            tracer = make_tracer(processor=SimpleSpanProcessor(exporter))
            with running_gateway(load_settings(env=env), sink, tracer=tracer, auth=True) as (url, _):
                yield Live(url, deepinfra, directory, exporter, logs)
    finally:
        root.removeHandler(logs)
        root.setLevel(level)
        echo.shutdown()


@pytest.mark.parametrize(
    "field_name", ["base_url", "api_base", "api_key", "headers", "extra_headers", "provider_url", "endpoints"]
)
def test_the_corral_object_cannot_name_upstream_settings(live: Live, field_name: str) -> None:
    before = len(live.deepinfra.requests)
    hostile = {**CHAT, "corral": {field_name: "http://127.0.0.1:1/steal"}}
    answer = live.post("/v1/chat/completions", hostile)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == f"corral.{field_name}"
    top_level = live.post("/v1/chat/completions", {**CHAT, field_name: "http://127.0.0.1:1/steal"})
    assert top_level.status_code == 400
    assert len(live.deepinfra.requests) == before


def test_tool_definitions_and_messages_cannot_change_url_credentials_or_headers(live: Live) -> None:
    function = {
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        "base_url": "http://127.0.0.1:1/steal",
        "api_key": "attacker-key",
        "headers": {INJECTED: "1", "authorization": "Bearer attacker-key"},
        "description": HOSTILE_VALUE,
    }
    message = {"role": "user", "content": HOSTILE_VALUE, "headers": {INJECTED: "1"}, "name": HOSTILE_VALUE}
    body = {
        **CHAT,
        "messages": [message],
        "tools": [{"type": "function", "function": function}],
        "user": HOSTILE_VALUE,
        "metadata": {INJECTED: HOSTILE_VALUE},
        "corral": {"providers": {"only": ["deepinfra"]}, "tags": {"team": HOSTILE_VALUE}},
    }
    before = len(live.deepinfra.requests)
    answer = live.post("/v1/chat/completions", body)
    assert answer.status_code == 200, answer.text
    assert INJECTED not in {name.lower() for name in answer.headers}
    [sent] = live.deepinfra.requests[before:]
    assert sent.path == "/v1/openai/chat/completions"
    headers = {name.lower(): value for name, value in sent.headers.items()}
    assert headers["authorization"] == f"Bearer {DEEPINFRA_KEY}"
    assert headers["host"] == live.deepinfra.base_url.split("//")[1].split("/")[0]
    assert INJECTED not in headers and all("\r" not in v and "\n" not in v for v in headers.values())
    assert "corral" not in sent.json


def _traffic(live: Live) -> None:
    """Successes, streams, fall-overs past the echoing 401, client auth failures, explain."""
    for model in ("llama-4-scout", "llama-4-maverick"):
        for stream in (False, True):
            live.post("/v1/chat/completions", {**CHAT, "model": model, "stream": stream})
    live.post("/v1/chat/completions", {**CHAT, "corral": {"providers": {"only": ["together"]}}})
    live.post("/v1/chat/completions", CHAT, key=WRONG_KEY)
    live.post("/v1/route/explain", CHAT)
    live.answers.append(httpx.get(live.url + "/admin/keys", headers={"authorization": f"Bearer {ADMIN_KEY}"}).text)
    live.answers.append(httpx.get(live.url + "/metrics").text)


def test_no_secret_in_logs_spans_ledger_or_answers(live: Live) -> None:
    _traffic(live)
    groq_failures = [a for a in live.answers if "Invalid API Key" in a or '"kind":"auth"' in a.replace(" ", "")]
    assert groq_failures, "the echoing provider was never reached"
    assert live.deepinfra.requests[-1].headers["Authorization"] == f"Bearer {DEEPINFRA_KEY}"
    spans = [span.to_json() for span in live.spans.get_finished_spans()]
    assert spans and live.logs.lines
    for where, texts in (("answer", live.answers), ("log", live.logs.lines), ("span", spans)):
        leaked = [text for text in texts if CANARY in text]
        assert not leaked, f"a secret in a {where}: {leaked[0][:500]}"


def test_no_secret_in_the_ledger_or_journal(live: Live) -> None:
    if not live.answers:
        _traffic(live)
    stored = [path for path in live.directory.rglob("*") if path.is_file()]
    assert any(path.name == "ledger.db" for path in stored)
    for path in stored:
        assert CANARY.encode() not in path.read_bytes(), path
