"""A real browser (Debian's Chromium driven by Playwright) against the running app, at desktop and phone width."""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from playwright.sync_api import expect, sync_playwright

from analysis import trace_maths
from viewer import catalogue, markup, overlay

pytestmark = [pytest.mark.slow, pytest.mark.browser]

EXAMPLE = Path(__file__).parents[1] / "assets" / "examples" / "scene_4_cross_star_arrow.png"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", Path(__file__).parent / "screenshots"))
# The flags keep Chromium off the network it cannot reach here (and that a test must not use).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORTS = {"desktop": (1440, 900), "phone": (390, 844)}
TABS = ("Tour", "Semantic tokens", "Pixels", "Stages", "Explanations", "Export")
TAB_IDS = {title: tab for tab, title in catalogue.TABS.items()}
# A channel this far from the plain photo is a mark a reader sees (JPEG noise stays far below it).
VISIBLE_DIFFERENCE = 40


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is needed for the browser test: install Debian's 'chromium' or set CHROMIUM_PATH")
    return path


def wait_until_idle(page) -> None:
    """Until no Gradio output shows its loading state."""
    page.wait_for_function("() => document.querySelectorAll('.pending, .generating').length === 0", timeout=60_000)


def open_tab(page, name: str) -> None:
    """Click a tab (every tab is in sight, on a phone too: the tab bar wraps)."""
    page.get_by_role("tab", name=name, exact=True).click()
    wait_until_idle(page)


def decode(source: str) -> np.ndarray:
    """A data-URI image as RGB."""
    data = base64.b64decode(source.split(",", 1)[1])
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def visibly_changed(tile: np.ndarray, plain: np.ndarray) -> np.ndarray:
    return np.abs(tile.astype(np.int16) - plain.astype(np.int16)).max(axis=2) > VISIBLE_DIFFERENCE


def test_untrained_weights_get_a_banner_and_no_training_set(app_server):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(app_server.url)
        expect(page.locator("#model-banner")).to_contain_text("Untrained weights")
        expect(page.locator("#weights-info")).to_contain_text("not trained")
        expect(page.locator("#weights-info")).not_to_contain_text("trained on")
        browser.close()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_page_reads_at_desktop_and_phone_width(shipped_app, viewport):
    """On the shipped model, as a first-time visitor sees it."""
    app_server = shipped_app
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width, height = VIEWPORTS[viewport]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": width, "height": height}, has_touch=viewport == "phone")
        page.goto(app_server.url)
        expect(page.locator("#model-banner")).to_be_hidden()
        expect(page.locator("#weights-info")).to_contain_text("on other images its classes mean nothing")
        expect(page.locator("#definition")).to_contain_text("Semantic tokens")

        page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
        page.locator("#analyse").click()
        expect(page.locator("#tour-text-6")).to_contain_text("class token", timeout=120_000)
        wait_until_idle(page)
        analysis = app_server.explorer.cache.newest()
        opening = trace_maths.default_block(analysis.trace)
        expect(page.locator("#block input")).to_have_value(opening.label)
        # The Prediction box's heading is the model's answer: every class above one half, or none.
        present = [name.replace("_", " ") for name, p in analysis.trace.top_classes(10) if p >= 0.5]
        expect(page.locator("#prediction")).to_contain_text(", ".join(present) or "none of its classes")

        page.screenshot(path=str(SCREENSHOTS / f"{viewport}_top_screen.png"))
        # Every tab is in sight, none folded into a menu that a first-time visitor does not open.
        for title in TABS:
            expect(page.get_by_role("tab", name=title, exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="More tabs")).to_have_count(0)
        # The tour's ownership map names the token owning the spot under the pointer, or under a finger.
        last_dual = [ref for ref in trace_maths.blocks(analysis.trace) if ref.kind == "dual"][-1]
        owner, _ = trace_maths.ownership(analysis.trace, last_dual.stage, last_dual.block)
        spot = (0.3, 0.4)  # of the picture's width and height: inside one cell of the square example's grid
        expected = int(owner[int(spot[1] * owner.shape[0]), int(spot[0] * owner.shape[1])])
        ownership_map = page.locator("#tour-picture-4 figure[data-owners] img")
        ownership_map.scroll_into_view_if_needed()
        box = ownership_map.bounding_box()
        position = {"x": spot[0] * box["width"], "y": spot[1] * box["height"]}
        (ownership_map.tap if viewport == "phone" else ownership_map.hover)(position=position)
        readout = page.locator("#tour-picture-4 .owner-readout")
        expect(readout).to_have_text(f"token {expected} owns this spot")
        if viewport == "desktop":  # off the picture, it asks again instead of naming a spot left behind
            page.mouse.move(box["x"] + box["width"] + 40, box["y"] + box["height"] / 2)
            expect(readout).to_have_text(markup.OWNER_PROMPT)
        for tab in TABS:
            open_tab(page, tab)
            if tab == "Explanations":
                page.locator("#explain").click()
                expect(page.locator("#explain-image .view-picture img")).to_be_visible(timeout=60_000)
                wait_until_idle(page)
            # Every chart of the tab is drawn...
            for declared in catalogue.views_on(TAB_IDS[tab]):
                if declared.form == "plot" and declared.name != "importance_plot":
                    expect(page.locator(f"#{declared.elem_id} .js-plotly-plot")).to_be_visible(timeout=30_000)
            # ...and every drawn picture carries its colour key.
            pictures = page.locator(".view:visible").filter(has=page.locator("img"))
            assert pictures.count() > 0 or tab == "Export", tab  # the export tab draws nothing
            for index in range(pictures.count()):
                expect(pictures.nth(index).locator(".colour-key").first).to_be_visible()
            stem = f"{viewport}_{tab.split()[0].lower()}"
            page.screenshot(path=str(SCREENSHOTS / f"{stem}.png"), full_page=True)
            # One screen's worth, from the tab bar down: what the README shows.
            page.evaluate("() => document.querySelector('[role=tablist]').scrollIntoView({block: 'start'})")
            page.screenshot(path=str(SCREENSHOTS / f"{stem}_screen.png"))

        open_tab(page, "Semantic tokens")
        tiles = page.locator("#token-gallery .tile")
        expect(tiles).to_have_count(analysis.trace.num_semantic)
        boxes = tiles.evaluate_all("tiles => tiles.map(t => t.getBoundingClientRect().toJSON())")
        for box in boxes:
            assert 0 <= box["left"] and box["right"] <= width, box
        # The key is read before the 64 tiles, not a phone's screens below the first ones.
        key_box = page.locator("#token-gallery .colour-key").bounding_box()
        assert key_box["y"] + key_box["height"] <= min(box["top"] for box in boxes), (key_box, boxes[0])

        # Each tile of the default view shows its token's heat over the photo in grey: where the token
        # looks most (from 80% of its peak up) the colour shows; where it hardly looks, the grey photo is left.
        sources = page.locator("#token-gallery .tile img").evaluate_all("images => images.map(i => i.src)")
        maps = trace_maths.token_maps(analysis.trace, opening.stage, opening.block)
        backdrop = overlay.backdrop(analysis.thumbnail)
        for token, source in enumerate(sources):
            tile = decode(source)
            assert tile.shape == analysis.thumbnail.shape  # the photo's own aspect, not cropped square
            values = maps[token]
            for cells, coloured in ((values >= 0.8 * values.max(), True), (values < 0.05 * values.max(), False)):
                pixels = overlay.to_original(cells.astype(np.float32), analysis.thumbnail_geometry) == 1
                if pixels.any():
                    share = visibly_changed(tile, backdrop)[pixels].mean()
                    assert share > 0.9 if coloured else share < 0.1, (token, coloured, share)

        # The colour bar fades in from the grey the pictures show under a map, not from the page's white.
        grey = overlay.backdrop(np.full((1, 1, 3), 128, np.uint8))[0, 0]
        expect(page.locator("#token-gallery .key-bar")).to_have_css("background-color",
                                                                    "rgb({}, {}, {})".format(*grey))

        # Enter in the token box redraws the token and moves the highlight.
        token_box = page.locator("#token input")
        token_box.fill("27")
        token_box.press("Enter")
        expect(page.locator("#token-stats")).to_contain_text("Token 27", timeout=30_000)
        highlighted = page.locator('#token-gallery .tile[data-token="27"]')
        expect(highlighted).to_have_css("outline-style", "solid")
        expect(page.locator('#token-gallery .tile[data-token="0"]')).not_to_have_css("outline-style", "solid")

        # A class-agnostic method asks for no class; token ablation asks for a stage.
        open_tab(page, "Explanations")
        expect(page.locator("#explain-class")).to_be_visible()
        for method, class_shown, stage_shown in (("Attention rollout through the semantic tokens", False, False),
                                                 ("Semantic-token importance (ablation)", True, True)):
            page.locator("#explain-method input").click()
            page.get_by_role("option", name=method, exact=True).click()
            for selector, shown in (("#explain-class", class_shown), ("#explain-stage", stage_shown)):
                control = expect(page.locator(selector))
                (control.to_be_visible if shown else control.to_be_hidden)()
        open_tab(page, "Semantic tokens")

        # Clicking a tile picks its token.
        page.locator('#token-gallery .tile[data-token="5"]').click()
        expect(page.locator("#token-stats")).to_contain_text("Token 5", timeout=30_000)
        expect(token_box).to_have_value("5")
        browser.close()
    assert app_server.explorer.forward_passes >= 1
