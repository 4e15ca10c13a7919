"""A real browser (Debian's Chromium driven by Playwright) against the running app, at desktop and phone width:
the page as a first-time visitor reads it, with a screenshot of every tab."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from browser_page import SCENE, VIEWPORTS, browser_page
from playwright.sync_api import expect

from analysis import trace_maths
from viewer import catalogue, export, markup, overlay, render

pytestmark = [pytest.mark.slow, pytest.mark.browser]

TABS = tuple(catalogue.TABS.values())
TAB_IDS = {title: tab for tab, title in catalogue.TABS.items()}


def test_untrained_weights_get_a_banner_and_no_training_set(app_server):
    with browser_page(app_server.url) as visit:
        expect(visit.page.locator("#model-banner")).to_contain_text("Untrained weights")
        expect(visit.page.locator("#weights-info")).to_contain_text("not trained")
        expect(visit.page.locator("#weights-info")).not_to_contain_text("trained on")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_page_reads_at_desktop_and_phone_width(shipped_app, viewport):
    """On the shipped model, as a first-time visitor sees it."""
    width, height = VIEWPORTS[viewport]
    with browser_page(shipped_app.url, viewport) as visit:
        page = visit.page
        expect(page.locator("#model-banner")).to_be_hidden()
        expect(page.locator("#weights-info")).to_contain_text("on other images its classes mean nothing")
        expect(page.locator("#definition")).to_contain_text("Semantic tokens")
        key = visit.analyse(SCENE)
        expect(page.locator("#tour-text-6")).to_contain_text("class token", timeout=120_000)
        # The shipped atlas was built with these weights: the tour says what its token does across 2,000 scenes.
        expect(page.locator("#tour-text-2")).to_contain_text("Across the atlas's 2,000 held-out generated scenes, token")
        visit.settle()
        analysis = shipped_app.explorer.get(key)
        opening = trace_maths.default_block(analysis.trace)
        expect(page.locator('#controls select[data-control="block"]')).to_have_value(opening.label)
        # The Prediction box's heading is the model's answer: every class above one half, or none.
        present = [name.replace("_", " ") for name, p in analysis.trace.top_classes(10) if p >= 0.5]
        expect(page.locator("#prediction")).to_contain_text(", ".join(present) or "none of its classes")
        visit.shot(f"{viewport}_top_screen", full_page=False)
        # Every tab is in sight, none folded into a menu that a first-time visitor does not open.
        for title in TABS:
            expect(page.get_by_role("tab", name=title, exact=True)).to_be_visible()
        expect(page.get_by_role("button", name="More tabs")).to_have_count(0)
        # The tour's ownership map names the token owning the spot under the pointer, or under a finger.
        last_dual = [ref for ref in trace_maths.blocks(analysis.trace) if ref.kind == "dual"][-1]
        owner, _ = trace_maths.ownership(analysis.trace, last_dual.stage, last_dual.block)
        spot = (0.3, 0.4)  # of the picture's width and height: inside one cell of the square example's grid
        expected = int(owner[int(spot[1] * owner.shape[0]), int(spot[0] * owner.shape[1])])
        # The tour presents one step at a time: Next steps on, the counter says where.
        expect(page.locator(".tour-step:visible")).to_have_count(1)
        for _ in range(4):
            page.get_by_role("button", name="Next ›").click()
        expect(page.locator(".dvx-presenter .deck-counter")).to_have_text(f"5 / {render.TOUR_STEPS}")
        expect(page.locator(".tour-step:visible")).to_have_count(1)
        expect(page.locator("#tour-step-4")).to_be_visible()
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
        for title in TABS:
            visit.open_tab(title)
            tab = TAB_IDS[title]
            if tab == "explanations":
                page.locator("#explain").click()
                expect(page.locator("#explain-image .view-picture img")).to_be_visible(timeout=60_000)
                visit.settle()
            # Every map of the tab carries its colour key: the live ones and the server's alike.
            for declared in catalogue.views_on(tab):
                if declared.keyed and declared.live:
                    expect(page.locator(f"#{declared.elem_id} .colour-key").first).to_be_visible()
            pictures = page.locator(".view:visible").filter(has=page.locator("img"))
            for index in range(pictures.count()):
                expect(pictures.nth(index).locator(".colour-key").first).to_be_visible()
            stem = f"{viewport}_{title.split()[0].lower()}"
            visit.shot(stem)
            # One screen's worth, from the tab bar down: what the README shows.
            page.evaluate("() => document.querySelector('[role=tablist]').scrollIntoView({block: 'start'})")
            visit.shot(f"{stem}_screen", full_page=False)

        visit.open_tab("Semantic tokens")
        tiles = page.locator("#token-gallery .dvx-tile")
        expect(tiles).to_have_count(analysis.trace.num_semantic)
        boxes = tiles.evaluate_all("tiles => tiles.map(t => t.getBoundingClientRect().toJSON())")
        for box in boxes:
            assert 0 <= box["left"] and box["right"] <= width, box
        # Laid out on the home grid: a tile's place is its token's home (row, column).
        columns = analysis.trace.semantic_grid.width
        lefts = sorted({round(box["left"]) for box in boxes})
        assert len(lefts) == columns
        assert all(round(boxes[token]["left"]) == lefts[token % columns] for token in range(len(boxes)))
        # The key is read before the tiles, not a phone's screens below the first ones.
        key_box = page.locator("#token-gallery .colour-key").bounding_box()
        assert key_box["y"] + key_box["height"] <= min(box["top"] for box in boxes), (key_box, boxes[0])
        # The colour bar fades in from the grey the pictures show under a map, not from the page's white.
        grey = overlay.backdrop(np.full((1, 1, 3), 128, np.uint8))[0, 0]
        expect(page.locator("#token-gallery .key-bar")).to_have_css("background-color", "rgb({}, {}, {})".format(*grey))

        # Enter in the token box draws that token and moves the highlight (the pointer off the tiles, whose hover
        # would show the tile under it instead).
        page.mouse.move(0, 0)
        token_box = page.locator("#live-tokens .dvx-token-box input")
        token_box.fill("27")
        token_box.press("Enter")
        expect(page.locator("#token-stats")).to_contain_text("Token 27")
        expect(page.locator('#token-gallery .dvx-tile[data-index="27"]')).to_have_class("tile dvx-tile selected")
        token_box.fill("64")
        token_box.press("Enter")
        expect(page.locator("#live-tokens .dvx-error")).to_contain_text("Token 64 does not exist")

        # A class-agnostic method asks for no class; token ablation asks for a stage.
        visit.open_tab("Explanations")
        expect(page.locator("#explain-class")).to_be_visible()
        for method, class_shown, stage_shown in (("Attention rollout through the semantic tokens", False, False),
                                                 ("Semantic-token importance (ablation)", True, True)):
            page.locator("#explain-method input").click()
            page.get_by_role("option", name=method, exact=True).click()
            for selector, shown in (("#explain-class", class_shown), ("#explain-stage", stage_shown)):
                control = expect(page.locator(selector))
                (control.to_be_visible if shown else control.to_be_hidden)()
        visit.open_tab("Semantic tokens")

        # Clicking a tile picks its token.
        page.locator('#token-gallery .dvx-tile[data-index="5"]').click()
        expect(page.locator("#token-stats")).to_contain_text("Token 5")
        expect(token_box).to_have_value("5")

        # A picture's download is the slide-ready figure of what the page shows: the server's file for the selection.
        if viewport == "desktop":
            with page.expect_download() as downloading:
                page.locator("#token-image .dvx-download a[data-format=png]").click()
            download = downloading.value
            assert download.suggested_filename == "token_image.png"
            state = page.evaluate("() => { const s = window.dualvitExplorer.store.state; return {block: s.block, "
                                  "fusion: s.fusion, scale: s.scale, colormap: s.colormap, opacity: String(s.opacity), "
                                  "token: String(s.token)}; }")
            assert state["token"] == "5"
            expected = export.figure_file(shipped_app.explorer, key, "token_image", "png", state)
            assert Path(download.path()).read_bytes() == expected
            image = cv2.imread(download.path())
            assert image.shape[1] >= 1080
    assert shipped_app.explorer.forward_passes >= 1


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_token_s_link_opens_its_atlas_entry_keyed_at_both_widths(shipped_app, viewport):
    with browser_page(shipped_app.url, viewport) as visit:
        page = visit.page
        visit.analyse(SCENE)
        visit.open_tab("Semantic tokens")
        visit.set(token=38)
        page.mouse.move(0, 0)
        link = page.locator("#token-stats a[data-atlas]")
        expect(link).to_have_text("token 38 across the dataset (Atlas)")
        link.click()
        expect(page.locator("#atlas-said")).to_contain_text("Token 38 at stage 2 · block 0, across 2,000 images",
                                                            timeout=60_000)
        expect(page.locator("#atlas-examples .tile")).to_have_count(8)
        expect(page.locator("#atlas-examples .colour-key")).to_be_visible()  # every map keyed
        for plot in ("#atlas-lifts", "#atlas-classes", "#atlas-blocks"):
            expect(page.locator(f"{plot} .js-plotly-plot .legend, {plot} .js-plotly-plot .xtick").first).to_be_attached()
        expect(page.locator("#atlas-blocks-said")).to_contain_text("tokens follow objects")
        tiles = page.locator("#atlas-examples .tile").evaluate_all("t => t.map(e => e.getBoundingClientRect().right)")
        assert max(tiles) <= VIEWPORTS[viewport][0]
        page.evaluate("() => document.querySelector('#atlas-said').scrollIntoView({block: 'start'})")
        visit.shot(f"{viewport}_atlas_screen", full_page=False)
        visit.shot(f"{viewport}_atlas")
