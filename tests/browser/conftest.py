"""Real headless Chromium, driven over the Chrome DevTools Protocol (CDP).

Needs Debian's `chromium` (`make test-browser` installs it) and the `websockets` package for
the CDP connection; without either the browser tests are skipped with the reason. Chromium
runs as a child of the test with a fresh profile and the flags this machine needs (no
sandbox as root, no background networking: the network is closed), on a free debugging
port it reports through `DevToolsActivePort`.

The accessibility checks inject axe-core (Deque, MPL-2.0), fetched from the npm registry's
tarball when first needed, checked against the integrity the registry publishes for that
version (pinned below) and cached in `run/cache/`; it is never committed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import itertools
import json
import math
import os
import shutil
import signal
import tarfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
AXE_VERSION = "4.14.1"
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
#: The npm registry's `dist.integrity` of that tarball.
AXE_INTEGRITY = ("sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37O"
                 "gudVGtQ==")
#: The rules the report, the index and the sign-in page must pass with no violation.
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
CHROMIUM_CANDIDATES = ("chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--mute-audio", "--password-store=basic", "--use-mock-keychain", "--lang=da-DK",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank",
)


def chromium_executable() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


class CDPError(RuntimeError):
    pass


class CDP:
    """A flat-session CDP connection: commands by id, events kept for later assertions."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self.pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        if "error" in message:
                            future.set_exception(CDPError(str(message["error"])))
                        else:
                            future.set_result(message.get("result", {}))
                else:
                    async with self.changed:
                        self.events.append(message)
                        self.changed.notify_all()
        finally:
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(CDPError("connection to Chromium closed"))

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        command_id = next(self.ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[command_id] = future
        await self.ws.send(json.dumps(message))
        return await asyncio.wait_for(future, timeout)

    async def wait_for(self, method: str, since: int = 0,
                       where: Callable[[dict[str, Any]], bool] = lambda _params: True,
                       timeout: float = 30.0) -> dict[str, Any]:
        """The first event `method` at index >= `since` whose params satisfy `where`."""
        deadline = time.monotonic() + timeout

        def found() -> dict[str, Any] | None:
            for event in self.events[since:]:
                if event.get("method") == method and where(event.get("params", {})):
                    return event
            return None

        async with self.changed:
            while (event := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {method} event within {timeout} s")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), remaining)
            return event

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(Exception):
            await self.reader


class Page:
    """One tab: navigation, clicks and typing as a person would, JS for reading the page."""

    def __init__(self, cdp: CDP, session: str) -> None:
        self.cdp = cdp
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.cdp.send(method, params, session=self.session)

    def mark(self) -> int:
        return len(self.cdp.events)

    async def loaded(self, since: int, timeout: float = 30.0) -> None:
        await self.cdp.wait_for("Page.loadEventFired", since, timeout=timeout)

    async def goto(self, url: str) -> None:
        since = self.mark()
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigation to {url} failed: {result['errorText']}")
        await self.loaded(since)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True})
        if "exceptionDetails" in result:
            raise CDPError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def centre_of(self, selector: str) -> tuple[float, float]:
        """A point where a person would click the element: the middle of its first line box,
        checked to hit the element itself (not something covering it)."""
        point = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getClientRects()[0] || e.getBoundingClientRect();"
            " const x = r.x + Math.min(r.width / 2, 20), y = r.y + r.height / 2;"
            " const hit = document.elementFromPoint(x, y);"
            " return [x, y, !!hit && (hit === e || e.contains(hit))]; })()")
        if point is None:
            raise AssertionError(f"nothing matches {selector!r} on {await self.evaluate('location.href')}")
        x, y, hits = point
        assert hits, f"{selector!r} is covered or off screen at ({x}, {y})"
        return x, y

    async def click(self, selector: str, *, navigates: bool = True) -> None:
        """A real mouse click on the element's centre; waits for the next page when it navigates."""
        x, y = await self.centre_of(selector)
        since = self.mark()
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                         "clickCount": 0 if kind == "mouseMoved" else 1})
        if navigates:
            await self.loaded(since)

    async def type_into(self, selector: str, text: str) -> None:
        await self.click(selector, navigates=False)
        await self.send("Input.insertText", {"text": text})

    async def type_text(self, text: str) -> None:
        """Type into whatever has the keyboard focus."""
        await self.send("Input.insertText", {"text": text})

    async def press_tab(self, *, shift: bool = False) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", {"type": kind, "key": "Tab", "code": "Tab",
                                                       "windowsVirtualKeyCode": 9,
                                                       "modifiers": 8 if shift else 0})

    async def press_enter(self) -> None:
        since = self.mark()
        for kind in ("keyDown", "keyUp"):
            await self.send("Input.dispatchKeyEvent", {"type": kind, "key": "Enter", "code": "Enter",
                                                       "windowsVirtualKeyCode": 13, "text": "\r"})
        await self.loaded(since)

    async def focused(self) -> str:
        """What has the keyboard focus: `tag#id`, `a[href]` for a link, or the tag."""
        return await self.evaluate(
            "(() => { const e = document.activeElement; if (!e) return '';"
            " if (e.id) return e.tagName.toLowerCase() + '#' + e.id;"
            " if (e.tagName === 'A') return 'a[' + e.getAttribute('href') + ']';"
            " return e.tagName.toLowerCase(); })()")

    async def axe_violations(self, source: str) -> list[str]:
        """axe-core's WCAG 2.0/2.1 A and AA rules on the current page: one line per violation
        (rule, impact, what to fix, the elements), none when the page passes."""
        if not await self.evaluate("typeof window.axe === 'object'"):
            await self.evaluate(source + "\n;true")
        result = await self.evaluate(
            "axe.run(document, {runOnly: {type: 'tag', values: " + json.dumps(list(WCAG_TAGS)) + "},"
            " resultTypes: ['violations']}).then(r => r.violations.map(v => v.id + ' (' + v.impact"
            " + '): ' + v.help + ' -- ' + v.nodes.map(n => n.target.join(' ') + ': '"
            " + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | ')))")
        return list(result)

    async def screenshot(self, path: Path, *, full_page: bool = True, until: str | None = None) -> Path:
        """The whole page, or the viewport (full_page=False), or the page from its top down to
        32 px below the element `until` selects (a short page without the empty window below)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page or until is not None:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            height = size["height"]
            if until is not None:
                bottom = await self.evaluate(
                    f"document.querySelector({json.dumps(until)}).getBoundingClientRect().bottom"
                    " + window.scrollY")
                height = min(height, math.ceil(bottom) + 32)
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": height, "scale": 1})
        shot = await self.send("Page.captureScreenshot", params)
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))
        return path

    def problems(self, since: int = 0) -> list[str]:
        """Console errors, uncaught exceptions, error log entries (CSP, failed loads) so far."""
        found = []
        for event in self.cdp.events[since:]:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append("console: " + " ".join(str(a.get("value", a.get("description", "")))
                                                     for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append("exception: " + str(details.get("exception", {}).get("description")
                                                 or details.get("text")))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                if urlsplit(entry.get("url", "")).path == "/favicon.ico":
                    continue  # the browser's own favicon probe, not the page (no icon is served)
                found.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")
        return found


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


async def _debugging_port(profile: Path, process: asyncio.subprocess.Process, log: Path,
                          timeout: float = 30.0) -> int:
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while True:
        if marker.exists():
            lines = marker.read_text().splitlines()
            if lines and lines[0].strip().isdigit():
                return int(lines[0])
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with {process.returncode}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"chromium did not open its debugging port: {_tail(log)}")
        await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def launch(executable: str, workdir: Path) -> AsyncIterator[Page]:
    """Start Chromium, attach to a fresh tab with Page/Runtime/Log enabled, stop it afterwards."""
    import httpx
    from websockets.asyncio.client import connect

    profile = workdir / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    log = workdir / "chromium.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            executable, f"--user-data-dir={profile}", *CHROMIUM_FLAGS,
            stdout=sink, stderr=sink, stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
    cdp: CDP | None = None
    try:
        port = await _debugging_port(profile, process, log)
        async with httpx.AsyncClient(timeout=10) as http:
            version = (await http.get(f"http://127.0.0.1:{port}/json/version")).json()
        ws = await connect(version["webSocketDebuggerUrl"], max_size=None, open_timeout=20)
        cdp = CDP(ws)
        target = await cdp.send("Target.createTarget", {"url": "about:blank"})
        attached = await cdp.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(cdp, attached["sessionId"])
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        await page.send("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        yield page
    finally:
        if cdp is not None:
            with contextlib.suppress(Exception):
                await cdp.send("Browser.close", timeout=5)
            await cdp.close()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the group this test started, by its id
            await process.wait()


def _axe_download(cache: Path) -> str:
    """axe.min.js of AXE_VERSION: from the cache, else from the npm registry, checked."""
    import httpx

    target = cache / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if target.exists():
        return target.read_text(encoding="utf-8")
    response = httpx.get(AXE_TARBALL, timeout=60, follow_redirects=True)
    response.raise_for_status()
    algorithm, expected = AXE_INTEGRITY.split("-", 1)
    got = base64.b64encode(hashlib.new(algorithm, response.content).digest()).decode()
    if got != expected:
        raise RuntimeError(f"{AXE_TARBALL}: integrity {algorithm}-{got}, expected {AXE_INTEGRITY}")
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None
        source = member.read().decode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(source, encoding="utf-8")
    tmp.replace(target)
    return source


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script (see the module's docstring); skipped with the reason if unreachable."""
    import httpx

    try:
        return _axe_download(ROOT / "run" / "cache")
    except httpx.HTTPError as exc:
        pytest.skip(f"axe-core {AXE_VERSION} could not be fetched from the npm registry: {exc}")


@pytest.fixture
def chromium() -> str:
    executable = chromium_executable()
    if executable is None:
        pytest.skip("Chromium not installed (no `chromium` on PATH, no /usr/bin/chromium): "
                    "run `make test-browser`, which installs Debian's chromium")
    pytest.importorskip(
        "websockets", reason="the CDP connection needs the `websockets` package "
        "(add websockets==17.4 to the dev extras in pyproject.toml)")
    return executable


@pytest.fixture
async def browser(chromium, tmp_path) -> AsyncIterator[Page]:
    async with launch(chromium, tmp_path) as page:
        yield page
