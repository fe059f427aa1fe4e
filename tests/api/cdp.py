"""Just enough of the Chrome DevTools Protocol to drive Debian's headless Chromium from a
test: open a page, wait for it to load, evaluate JavaScript, take a screenshot."""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from websockets.sync.client import ClientConnection, connect

BINARIES = ("chromium", "chromium-browser", "google-chrome")


def chromium_binary() -> str | None:
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


class Page:
    def __init__(self, socket: ClientConnection, session: str) -> None:
        self._socket = socket
        self._session = session
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if self._session:
            message["sessionId"] = self._session
        self._socket.send(orjson.dumps(message).decode())
        while True:
            reply = orjson.loads(self._socket.recv(timeout=30))
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def wait_for(self, event: str) -> None:
        while orjson.loads(self._socket.recv(timeout=30)).get("method") != event:
            pass

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def run(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def click_and_wait(self, selector: str) -> None:
        self.run(f"setTimeout(() => document.querySelector({orjson.dumps(selector).decode()}).click(), 0); true")
        self.wait_for("Page.loadEventFired")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


def _devtools_url(process: subprocess.Popen[str]) -> str:
    assert process.stderr is not None
    for line in process.stderr:
        if "DevTools listening on " in line:
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return line.split("DevTools listening on ", 1)[1].strip()
    raise RuntimeError("chromium exited before it offered a DevTools endpoint")


@contextmanager
def headless_page(binary: str, width: int = 1200, height: int = 1600) -> Iterator[Page]:
    # Chromium's helper processes can still be writing the profile when the browser itself has
    # exited: the whole process group is stopped, and what is left in the profile never fails a test.
    with tempfile.TemporaryDirectory(prefix="corral-chromium-", ignore_cleanup_errors=True) as profile:
        args = [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            with connect(_devtools_url(process), max_size=64 * 1024 * 1024) as socket:
                page = Page(socket, "")
                target = page.call("Target.createTarget", url="about:blank")["targetId"]
                session = page.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
                attached = Page(socket, session)
                attached.call("Page.enable")
                yield attached
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
