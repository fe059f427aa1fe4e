"""Issue 18, reproduction 6 (the parts that need chosen backends): `logprobs` when no
configured deployment supports it is a 400 naming `logprobs`, not a retryable 503, and
no backend is called; a garbled answer is described as a failure reading it."""

from __future__ import annotations

import socketserver
import threading
from pathlib import Path
from typing import Any

from tests.faults.conftest import open_rig
from tests.faults.harness import SCOUT, FakePark, fault_settings
from tests.faults.traffic import chat_body


def test_logprobs_nowhere_supported_is_a_400(park: FakePark, tmp_path: Path) -> None:
    """Honest failure: Scout on DeepInfra and Bedrock (neither has logprobs): 400
    unsupported_parameter naming logprobs; neither fake received a request."""
    fakes = {"deepinfra": park.add("deepinfra"), "bedrock": park.add("bedrock")}
    rig = open_rig(fault_settings(tmp_path, fakes), fakes)
    reply = rig.traffic.send(chat_body(model=SCOUT, logprobs=True))
    assert reply.status == 400, reply.body
    error = reply.body["error"]
    assert error["code"] == "unsupported_parameter" and error["param"] == "logprobs"
    assert "logprobs" in error["message"]
    assert not fakes["deepinfra"].requests and not fakes["bedrock"].requests
    served = rig.traffic.send(chat_body(model=SCOUT))
    assert served.status == 200
    rig.finish()


class BadStatusLine(socketserver.ThreadingTCPServer):
    """Answers every connection with an HTTP status line that does not parse."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BadStatusHandler)
        self.requests = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _BadStatusHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        self.request.recv(65536)
        assert isinstance(self.server, BadStatusLine)
        self.server.requests += 1
        self.request.sendall(b"HTTP/1.1 two hundred OK\r\n\r\n")


def test_a_garbled_answer_is_described_as_reading_it(park: FakePark, tmp_path: Path) -> None:
    """Honest failure: an upstream whose status line does not parse is reported as a
    malformed answer "while reading the answer's status line", not "while sending the
    request"; the other backend serves."""
    rogue = BadStatusLine()
    thread = threading.Thread(target=rogue.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        together = park.add("together")
        fakes: dict[str, Any] = {"deepinfra": rogue, "together": together}
        rig = open_rig(fault_settings(tmp_path, fakes, order=("deepinfra",)), {"together": together})
        reply = rig.traffic.send(chat_body())
        assert reply.status == 200 and reply.provider == "together" and reply.attempts == 2
        alone = rig.traffic.send(chat_body(corral={"providers": {"only": ["deepinfra"]}}))
        assert alone.status == 502, alone.body
        message = str(alone.body["error"]["attempts"])
        assert "while reading the answer's status line" in message and "sending the request" not in message
        assert rogue.requests >= 2
        rig.finish()
    finally:
        rogue.shutdown()
        rogue.server_close()
