"""A real browser (Debian's Chromium driven by Playwright) against the running app."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

EXAMPLE = Path(__file__).parents[1] / "assets" / "examples" / "scene_3_cross_letter_A_triangle.png"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).parent / "screenshots"))
# The flags keep Chromium off the network it cannot reach here (and that a test must not use).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is needed for the browser test: install Debian's 'chromium' or set CHROMIUM_PATH")
    return path


def gallery_sources(page, selector: str) -> list[str]:
    return page.locator(f"{selector} img").evaluate_all("images => images.map(i => i.src)")


def wait_until_idle(page) -> None:
    """Until no Gradio output shows its loading state."""
    page.wait_for_function("() => document.querySelectorAll('.pending, .generating').length === 0", timeout=30_000)


def test_upload_select_token_click_pixel(app_server):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 2200})
        page.goto(app_server.url)
        expect(page.locator("#weights-info")).to_contain_text("nano_untrained.safetensors")

        page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
        page.locator("#analyse").click()
        expect(page.locator("#status")).to_contain_text("semantic tokens", timeout=60_000)
        expect(page.locator("#token-gallery img")).to_have_count(64, timeout=60_000)
        expect(page.locator("#token-stats")).to_contain_text("Token 0", timeout=30_000)
        before = page.locator("#token-image img").get_attribute("src")

        page.locator("#token-gallery img").nth(27).click()
        expect(page.locator("#token-stats")).to_contain_text("Token 27", timeout=30_000)
        expect(page.locator("#token-image img")).not_to_have_attribute("src", before, timeout=30_000)
        assert len(gallery_sources(page, "#filmstrip")) == 5  # every block of dualvit_nano (1+1+2+1)

        page.get_by_role("tab", name="Pixels").click()
        pixel_image = page.locator("#pixel-image img")
        expect(page.locator("#pixel-reads .js-plotly-plot")).to_be_visible(timeout=30_000)
        marker_before = pixel_image.get_attribute("src")
        box = pixel_image.bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3)
        expect(pixel_image).not_to_have_attribute("src", marker_before, timeout=30_000)
        expect(page.locator("#pixel-reads .js-plotly-plot")).to_be_visible(timeout=30_000)
        wait_until_idle(page)
        page.screenshot(path=str(SCREENSHOTS / "explorer_pixels.png"), full_page=True)
        page.get_by_role("tab", name="Semantic tokens").click()
        wait_until_idle(page)
        page.screenshot(path=str(SCREENSHOTS / "explorer_tokens.png"), full_page=True)
        browser.close()
    assert app_server.explorer.forward_passes >= 1
