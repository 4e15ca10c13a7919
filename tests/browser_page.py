"""Driving the page in Debian's Chromium with Playwright: shared by the browser tests (not a test module)."""
from __future__ import annotations

import base64
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

import cv2
import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from bench.browser import CHROMIUM_FLAGS, find_chromium

EXAMPLES = Path(__file__).parents[1] / "assets" / "examples"
SCENE = EXAMPLES / "scene_4_cross_star_arrow.png"
PHOTO = EXAMPLES / "coffee.jpg"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).parent / "screenshots"))
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}


def chromium_path() -> str:
    path = find_chromium()
    if not path:
        pytest.fail("Chromium is needed for the browser test: install Debian's 'chromium' or set CHROMIUM_PATH")
    return path


class Visit:
    """One page in Chromium with every request beyond 127.0.0.1 blocked (and counted), and what it asked for."""

    def __init__(self, page, offline: bool = False):
        self.page = page
        self.offline = offline  # a file opened alone: nothing beyond the file itself may be fetched
        self.blocked: list[str] = []
        self.requests: list[str] = []
        page.route("**/*", self.only_local)
        page.on("request", lambda request: self.requests.append(request.url))
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def only_local(self, route) -> None:
        host = urlparse(route.request.url).hostname
        local = host in ("127.0.0.1", "localhost") and not self.offline
        if local or route.request.url.startswith(("data:", "blob:")) or (self.offline and route.request.url.startswith("file:")):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def analyse(self, image: Path, resolution: str = "224") -> str:
        """Analyse ``image`` and wait until the live views hold its maps; returns the analysis's key."""
        page = self.page
        page.locator("#upload input[type=file]").set_input_files(str(image))
        if resolution != "224":
            page.locator("#upload").locator("xpath=..").page.get_by_label(resolution, exact=True).first.check()
        before = page.evaluate("() => window.dualvitExplorer?.store.state.primary?.key ?? null")
        page.locator("#analyse").click()
        page.wait_for_function("(before) => { const data = window.dualvitExplorer?.store.state.primary;"
                               " return data && data.key !== before; }", arg=before, timeout=120_000)
        self.settle()
        return page.evaluate("() => window.dualvitExplorer.store.state.primary.key")

    def settle(self) -> None:
        """Until Gradio is idle and the live views have drawn the latest change."""
        self.page.wait_for_function("() => document.querySelectorAll('.pending, .generating').length === 0",
                                    timeout=120_000)
        self.page.evaluate("() => new Promise((resolve) => { window.dualvitExplorer?.store.flush();"
                           " requestAnimationFrame(() => requestAnimationFrame(resolve)); })")

    def set(self, **patch) -> None:
        """Change the live selection as the controls would, and wait for it to be drawn."""
        self.page.evaluate("(patch) => window.dualvitExplorer.store.set(patch)", patch)
        self.settle()

    def open_tab(self, title: str) -> None:
        self.page.get_by_role("tab", name=title, exact=True).click()
        self.settle()

    def canvas(self, selector: str) -> np.ndarray:
        """A canvas's pixels (RGB), exactly as drawn."""
        data = self.page.evaluate("""(selector) => {
            const canvas = document.querySelector(selector);
            const image = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            let text = ''; const bytes = image.data;
            for (let i = 0; i < bytes.length; i += 32768) text += String.fromCharCode(...bytes.subarray(i, i + 32768));
            return {width: canvas.width, height: canvas.height, data: btoa(text)};
        }""", selector)
        rgba = np.frombuffer(base64.b64decode(data["data"]), np.uint8).reshape(data["height"], data["width"], 4)
        return rgba[..., :3].copy()

    def shot(self, name: str, full_page: bool = True) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@contextmanager
def browser_page(url: str, viewport: str = "desktop", size: tuple[int, int] | None = None) -> Iterator[Visit]:
    """``url`` in Chromium at a viewport's size (or ``size``); a file:// URL is opened offline: every request beyond
    the file is blocked."""
    width, height = size or VIEWPORTS[viewport]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": height}, has_touch=viewport == "phone",
                                accept_downloads=True)
        visit = Visit(page, offline=url.startswith("file:"))
        page.goto(url)
        try:
            yield visit
        finally:
            browser.close()
    assert not visit.blocked, f"the page asked for something beyond {'its file' if visit.offline else '127.0.0.1'}: {visit.blocked}"
    assert not visit.errors, f"the page raised: {visit.errors}"


def decode(source: str) -> np.ndarray:
    """A data-URI image as RGB."""
    data = base64.b64decode(source.split(",", 1)[1])
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
