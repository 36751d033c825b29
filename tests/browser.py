"""Helpers for real-browser tests: find Chromium, launch it offline-safe, record every request, save screenshots.

Chromium comes from ``WORKBENCH_CHROMIUM``, else ``/usr/bin/chromium``
(Debian's package; Playwright's own browser download does not work on these
machines). Without one, tests skip with the reason on a developer's machine
and fail under CI (``CI`` set to anything but ``false``/``0``).

Every page opened through :func:`open_page` records each request it makes;
requests to anything but this machine are aborted and kept in
:attr:`RequestLog.outside`, so a test can assert that none happened.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ARTIFACTS = Path(__file__).parent / "artifacts"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Flags measured on these machines (BUILD-NOTES): headless, no sandbox as root, and no background
# traffic (without these Chromium floods a closed network with refused connections).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension"}


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[None]:
    """Replaces pytest-jupyter's autouse fixture in browser modules (import it there).

    That fixture closes the current event loop after each test, and in a
    browser module that loop is the one Playwright's sync API keeps running.
    """
    yield None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> Iterator[None]:
    """Replaces pytest-jupyter's cleanup of a Jupyter server, which browser modules of the dashboard never start."""
    yield None


def find_chromium() -> str | None:
    """The Chromium binary to drive: ``WORKBENCH_CHROMIUM``, else Debian's, else one on PATH; None if none."""
    explicit = os.environ.get("WORKBENCH_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    if Path(DEFAULT_CHROMIUM).is_file():
        return DEFAULT_CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_chromium(*, module: bool = False) -> str:
    """Chromium's path; skips without one, except under CI where a missing browser fails.

    ``module=True`` skips the whole module when called at its top, before any
    fixture (the demo workspace, a big store) is built for nothing.
    """
    found = find_chromium()
    if found:
        return found
    explicit = os.environ.get("WORKBENCH_CHROMIUM")
    reason = (
        f"No Chromium: WORKBENCH_CHROMIUM={explicit} is not a file"
        if explicit
        else "No Chromium: set WORKBENCH_CHROMIUM or install Debian's (apt-get install -y chromium)"
    ) + "; browser tests need a real browser"
    if in_ci():
        pytest.fail(reason + " (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason, allow_module_level=module)


def is_local(url: str) -> bool:
    """Whether a request stays on this machine."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


@dataclass
class RequestLog:
    """Every URL the pages of one browser asked for, and those that would have left the machine."""

    urls: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)


@contextmanager
def launch_chromium() -> Iterator[object]:
    """A headless Chromium (Playwright ``Browser``) for the duration of the block."""
    from playwright.sync_api import sync_playwright

    executable = require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: object, log: RequestLog, *, width: int = 1440, height: int = 1000) -> object:
    """A new page in its own context that records every request and aborts those leaving the machine."""
    context = browser.new_context(viewport={"width": width, "height": height})  # type: ignore[attr-defined]

    def route(route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        log.urls.append(url)
        if is_local(url):
            route.continue_()  # type: ignore[attr-defined]
        else:
            log.outside.append(url)
            route.abort()  # type: ignore[attr-defined]

    context.route("**/*", route)
    page = context.new_page()

    def websocket(ws: object) -> None:
        url = ws.url  # type: ignore[attr-defined]
        log.urls.append(url)
        if not is_local(url):
            log.outside.append(url)

    page.on("websocket", websocket)
    return page


# The tallest scrollable content: Panel templates scroll inside their main area, not the document.
_CONTENT_HEIGHT = (
    "() => Math.max(...Array.from(document.querySelectorAll('*'),"
    " el => el.getBoundingClientRect().top + window.scrollY + el.scrollHeight))"
)


def screenshot(page: object, name: str, *, max_height: int = 5000) -> Path:
    """Save the whole page as ``tests/artifacts/<name>.png`` and return its path.

    The window is made as tall as the content for the shot (templates scroll
    inside a container, which a plain full-page screenshot would cut), then
    restored.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size  # type: ignore[attr-defined]
    height = size["height"]
    for _ in range(2):  # a second pass when the content reflowed taller at the new size
        wanted = min(max_height, int(page.evaluate(_CONTENT_HEIGHT)) + 24)  # type: ignore[attr-defined]
        if wanted <= height + 100:
            break
        height = wanted
        page.set_viewport_size({"width": size["width"], "height": height})  # type: ignore[attr-defined]
        page.wait_for_timeout(500)  # type: ignore[attr-defined]  # let the layout and plots settle
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    page.set_viewport_size(size)  # type: ignore[attr-defined]
    return path
