"""A headless Chromium driven through the Chrome DevTools Protocol, with the standard library
only: the browser is started with ``--remote-debugging-pipe`` and reads the protocol's JSON
messages, each ended by a NUL byte, from file descriptor 3 and writes its answers and events to
file descriptor 4 (https://chromedevtools.github.io/devtools-protocol/; the transport puppeteer
uses with ``pipe: true``). No port, no websocket client, no downloaded browser: Debian's
``chromium`` package (``.ci/chromium.sh install``, which ``.ci/run`` runs).

:class:`Chromium` starts and stops the browser; :meth:`Chromium.open` loads a page and returns
a :class:`Page` that evaluates JavaScript in the page or in one of its frames, takes screenshots
and collects what went wrong (uncaught exceptions, ``console.error``, the browser's error log,
requests that left the machine). Every wait is bounded and a timeout names what was awaited.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["BrowserError", "Chromium", "Page", "find_chromium"]

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
LOCAL_SCHEMES = (
    "data:",
    "file:",
    "about:",
    "blob:",
    "chrome:",
    "chrome-error:",
    "devtools:",
    "chrome-extension:",
)  # the browser's own pages (its PDF viewer is an extension)


class BrowserError(RuntimeError):
    """The browser failed, answered a command with an error, or a wait timed out."""


def find_chromium() -> str | None:
    """The path of an installed Chromium (Debian: ``/usr/bin/chromium``), or None."""
    return next((path for name in EXECUTABLES if (path := shutil.which(name))), None)


class Chromium:
    """One headless Chromium process with a fresh profile in ``profile`` (a folder); its
    stderr goes to ``profile/chromium.log``. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self, executable: str, profile: Path, *, size: tuple[int, int] = (1400, 1000),
        timeout: float = 60.0,
    ) -> None:  # fmt: skip
        self.timeout = timeout
        self.log = profile / "chromium.log"
        profile.mkdir(parents=True, exist_ok=True)
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
            f"--user-data-dir={profile / 'profile'}", f"--window-size={size[0]},{size[1]}",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--mute-audio", "about:blank",
        ]  # fmt: skip
        # the shell puts our pipes on the descriptors the browser expects: 3 (commands in) and
        # 4 (answers and events out)
        wiring = 'exec "$@" 3<&0 4>&1 </dev/null >/dev/null'
        with self.log.open("wb") as log:
            self._process = subprocess.Popen(
                ["sh", "-c", wiring, "sh", executable, *flags],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
            )  # fmt: skip
        self._lock = threading.Condition()
        self._answers: dict[int, dict] = {}
        self._events: list[dict] = []
        self._next_id = 0
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()
        self.version = self.call("Browser.getVersion")["product"]

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _read(self) -> None:
        """Split the browser's output into messages: answers by id, events in order."""
        assert self._process.stdout is not None
        buffer = b""
        while chunk := self._process.stdout.read1(1 << 20):
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._lock:
                for raw in messages:
                    message = json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self._events.append(message)
                self._lock.notify_all()
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def _log_tail(self) -> str:
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return "\n".join(lines[-15:])

    def _wait(self, ready: Callable[[], Any], what: str, timeout: float | None) -> Any:
        """Wait (at most ``timeout`` s) until ``ready()`` returns something truthy."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._lock:
            while not (found := ready()):
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"chromium exited while waiting for {what}; its log "
                                       f"({self.log}):\n{self._log_tail()}")  # fmt: skip
                if left <= 0:
                    raise BrowserError(f"no {what} within {timeout or self.timeout:g} s")
                self._lock.wait(min(left, 0.5))
            return found

    def call(
        self, method: str, params: dict | None = None, *, session: str | None = None,
        timeout: float | None = None,
    ) -> dict:  # fmt: skip
        """Send one protocol command and return its result (an error answer raises)."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message).encode() + b"\0")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise BrowserError(f"chromium is gone; its log:\n{self._log_tail()}") from None
        answer = self._wait(lambda: self._answers.pop(ident, None), f"answer to {method}",
                            timeout)  # fmt: skip
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer["result"]

    def events(self, session: str, method: str | None = None, start: int = 0) -> list[dict]:
        """The events of ``session`` received so far (from index ``start``), of ``method``."""
        with self._lock:
            found = self._events[start:]
        return [e for e in found
                if e.get("sessionId") == session and method in (None, e["method"])]  # fmt: skip

    def event_count(self) -> int:
        with self._lock:
            return len(self._events)

    def wait_event(
        self, session: str, method: str, start: int, timeout: float | None = None
    ) -> dict:
        """The first event ``method`` of ``session`` from index ``start`` on (waits for it)."""

        def first() -> dict | None:
            return next((e for e in self._events[start:] if e.get("sessionId") == session
                         and e["method"] == method), None)  # fmt: skip

        return self._wait(first, f"event {method}", timeout)["params"]

    def open(self, url: str, *, timeout: float | None = None) -> Page:
        """A new tab, its errors recorded from the start, that has loaded ``url``."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        page = Page(self, session["sessionId"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.goto(url, timeout=timeout)
        return page

    def close(self) -> None:
        """Stop the browser (politely, then by its process id)."""
        if self._process.poll() is None:
            with contextlib.suppress(BrowserError):  # then stopped by its process id
                self.call("Browser.close", timeout=10)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                stream.close()


class Page:
    """One tab of a :class:`Chromium`, attached through a flat protocol session."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict | None = None, **kwargs: Any) -> dict:
        return self.browser.call(method, params, session=self.session, **kwargs)

    def goto(self, url: str, *, timeout: float | None = None) -> None:
        """Navigate to ``url`` and wait for its load event."""
        start = self.browser.event_count()
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise BrowserError(f"loading {url}: {answer['errorText']}")
        self.browser.wait_event(self.session, "Page.loadEventFired", start, timeout)

    def evaluate(self, expression: str, *, context: int | None = None) -> Any:
        """The value of a JavaScript expression (promises awaited); a thrown error raises."""
        params: dict[str, Any] = {"expression": expression, "returnByValue": True,
                                  "awaitPromise": True}  # fmt: skip
        if context is not None:
            params["contextId"] = context
        answer = self.call("Runtime.evaluate", params)
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"evaluating {expression[:80]!r}: {text}")
        return answer["result"].get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 30.0) -> Any:
        """Evaluate ``expression`` until it is truthy (every 0.1 s, at most ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise BrowserError(f"{what}: not within {timeout:g} s ({expression[:80]!r})")
            time.sleep(0.1)
        return value

    def frames(self) -> list[dict]:
        """Every frame below the main one: ``{"id", "url"}`` (depth first)."""
        found: list[dict] = []

        def walk(node: dict) -> None:
            for child in node.get("childFrames", []):
                found.append({"id": child["frame"]["id"], "url": child["frame"]["url"]})
                walk(child)

        walk(self.call("Page.getFrameTree")["frameTree"])
        return found

    def frame_context(self, frame: str) -> int:
        """A JavaScript context in ``frame`` (an isolated world: it sees the frame's DOM)."""
        world = self.call("Page.createIsolatedWorld", {"frameId": frame, "worldName": "test"})
        return int(world["executionContextId"])

    def screenshot(self, path: Path) -> Path:
        """The visible part of the page as a PNG at ``path``."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self) -> list[str]:
        """What went wrong so far: uncaught exceptions, ``console.error`` and ``assert``
        calls, error entries of the browser's log, and requests to anything but local
        schemes (``data:``, ``file:``, ...): a self-contained page makes none."""
        found = []
        for event in self.browser.events(self.session):
            method, params = event["method"], event["params"]
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                text = details.get("exception", {}).get("description") or details["text"]
                found.append(f"exception: {text}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                args = [str(a.get("value", a.get("description", ""))) for a in params["args"]]
                found.append(f"console.{params['type']}: {' '.join(args)}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                found.append(f"log ({entry['source']}): {entry['text']} {entry.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(LOCAL_SCHEMES):
                    found.append(f"request to {url}")
        return found
