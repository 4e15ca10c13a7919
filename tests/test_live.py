"""The live explorer in Debian's Chromium: its pixels are the server's, it follows the pointer without asking the
server, compares two images, keeps one selection, brings results into view on a phone and keeps its memory."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from browser_page import EXAMPLES, PHOTO, SCENE, browser_page

from analysis import trace_maths
from viewer import overlay, render

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SECOND_SCENE = EXAMPLES / "scene_10_circle_triangle_heart.png"
# Drawn alike to the level: both renderers compute the same float64 sums (viewer/levels.py, viewer/static/).
TOLERANCE = 2


def assert_same_pixels(browser: np.ndarray, server: np.ndarray, what: str) -> None:
    assert browser.shape == server.shape, (what, browser.shape, server.shape)
    difference = np.abs(browser.astype(int) - server.astype(int))
    assert difference.max() <= TOLERANCE, (what, int(difference.max()), int((difference > TOLERANCE).sum()))


@pytest.mark.parametrize("image, style", [
    (SCENE, render.Style()),
    (SCENE, render.Style("viridis", 0.6, "shared")),
    (PHOTO, render.Style("magma", 0.8, "mass")),  # a centre crop of a photo: the dimmed bands too
], ids=["scene-per-map", "scene-shared", "photo-mass"])
def test_the_browser_draws_every_map_view_as_the_server_does(shipped_app, image, style):
    viewport = "phone" if style.scale == "shared" else "desktop"  # one case at a phone's width
    with browser_page(shipped_app.url, viewport) as visit:
        key = visit.analyse(image)
        analysis = shipped_app.explorer.get(key)
        trace = analysis.trace
        visit.set(scale=style.scale, colormap=style.colormap, opacity=style.opacity)
        for block in trace_maths.blocks(trace):
            visit.set(block=block.label, token=7)
            visit.open_tab("Semantic tokens")
            gallery = render.token_gallery(analysis, block, "mean", style)
            for token in (0, 7, trace.num_semantic - 1):
                assert_same_pixels(visit.canvas(f'#token-gallery .dvx-tile[data-index="{token}"] canvas'),
                                   gallery.tiles[token].image, f"{block.label} tile {token}")
            detail = render.token_detail(analysis, block, "mean", style, 7)
            assert_same_pixels(visit.canvas("#token-image canvas"), detail.picture.image, f"{block.label} token 7")
            for index, tile in enumerate(detail.filmstrip.tiles):
                assert_same_pixels(visit.canvas(f'#filmstrip .dvx-tile[data-index="{index}"] canvas'), tile.image,
                                   f"{block.label} filmstrip {index}")
            visit.open_tab("Pixels")
            point = (float(analysis.display.shape[1] // 3), float(analysis.display.shape[0] // 2))
            visit.set(point=list(point))
            pixels = render.pixel_view(analysis, block, "mean", style, point)
            assert_same_pixels(visit.canvas("#pixel-owner canvas"), pixels.owner_map.image, f"{block.label} owner map")
            for index, tile in enumerate(pixels.top_tokens.tiles):
                assert_same_pixels(visit.canvas(f'#top-tokens .dvx-tile[data-index="{index}"] canvas'), tile.image,
                                   f"{block.label} top token {index}")
            owner, _ = trace_maths.ownership(trace, block.stage, block.block)
            unnumbered = render.ownership_picture(analysis, owner, style, numbered=False)
            assert_same_pixels(visit.canvas("#ownership canvas"), unnumbered.image, f"{block.label} ownership")
        visit.open_tab("Stages")
        stages = render.stages_view(analysis, trace_maths.blocks(trace)[-1], "mean", style, None)
        for index, tile in enumerate(stages.stages.tiles):
            assert_same_pixels(visit.canvas(f'#stages .dvx-tile[data-index="{index}"] canvas'), tile.image,
                               f"stage tile {index}")
        assert_same_pixels(visit.canvas("#class-attention canvas"), stages.class_attention.image, "class attention")
        visit.shot(f"live_equal_{image.stem}_{style.scale.replace(' ', '_')}")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_the_pointer_over_the_photo_redraws_the_reads_the_top_tokens_and_the_owners_map_without_asking_the_server(
        shipped_app, viewport):
    """A mouse moving over the photo on a desktop; a finger dragging across it on a phone."""
    with browser_page(shipped_app.url, viewport) as visit:
        key = visit.analyse(SCENE)
        analysis = shipped_app.explorer.get(key)
        visit.open_tab("Pixels")
        page = visit.page
        block = trace_maths.block_ref(analysis.trace, 2, 0)
        photo = page.locator("#pixel-image canvas.dvx-marker")
        photo.scroll_into_view_if_needed()
        box = photo.bounding_box()
        asked = len(visit.requests)
        touch = page.context.new_cdp_session(page) if viewport == "phone" else None
        seen = set()
        for step, fraction in enumerate(np.linspace(0.1, 0.9, 9)):
            x, y = box["x"] + fraction * box["width"], box["y"] + 0.45 * box["height"]
            if touch is None:
                page.mouse.move(x, y)
            else:
                kind = "touchStart" if step == 0 else "touchMove"
                touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
            visit.settle()
            x, y = (int(v) for v in photo.get_attribute("data-point").split(","))
            reads = render.reads_at(analysis, block, "mean", (x + 0.5, y + 0.5))
            top = render.top_tokens(reads)
            assert page.locator("#pixel-owner figure").get_attribute("data-token") == str(top[0]), fraction
            assert page.locator("#pixel-reads canvas").get_attribute("data-top") == ",".join(map(str, top))
            readout = page.locator("#pixel-image .dvx-readout").inner_text()
            assert readout.startswith(f"this pixel reads token {top[0]} most"), readout
            seen.add(top[0])
        if touch is not None:
            touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        assert len(seen) > 1  # the owner changed as the pointer crossed the scene
        assert len(visit.requests) == asked, visit.requests[asked:]  # following the pointer asked the server nothing
        if touch is not None:
            return
        page.mouse.click(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
        visit.settle()
        pinned = page.evaluate("() => window.dualvitExplorer.store.state.point")
        assert abs(pinned[0] - 0.3 * analysis.display.shape[1]) < 2 and abs(pinned[1] - 0.3 * analysis.display.shape[0]) < 2
        page.mouse.move(box["x"] + box["width"] + 50, box["y"])  # off the photo: back to the pinned point
        visit.settle()
        assert photo.get_attribute("data-point") == ",".join(str(round(v)) for v in pinned)
        visit.shot("live_pixels_hover")
        page.mouse.move(box["x"] + 0.42 * box["width"], box["y"] + 0.45 * box["height"])
        visit.settle()
        page.evaluate("() => document.querySelector('#live-pixels').scrollIntoView({block: 'start'})")
        visit.shot("live_pixels_hover_screen", full_page=False)


def test_a_tile_under_the_pointer_shows_large_and_arrow_keys_step_tokens_and_blocks(shipped_app):
    with browser_page(shipped_app.url) as visit:
        visit.analyse(SCENE)
        visit.open_tab("Semantic tokens")
        page = visit.page
        pinned = page.evaluate("() => window.dualvitExplorer.store.state.token")
        asked = len(visit.requests)
        page.locator('#token-gallery .dvx-tile[data-index="10"]').hover()
        visit.settle()
        assert page.locator("#token-image figure").get_attribute("data-token") == "10"
        assert "Token 10" in page.locator("#token-stats").inner_text()
        page.mouse.move(0, 0)
        visit.settle()
        assert page.locator("#token-image figure").get_attribute("data-token") == str(pinned)
        gallery = page.locator("#token-gallery .dvx-tiles").first
        gallery.focus()
        page.keyboard.press("ArrowRight")
        visit.settle()
        assert page.locator("#token-image figure").get_attribute("data-token") == str(min(pinned + 1, 63))
        assert page.evaluate("() => document.activeElement.classList.contains('dvx-tiles')")
        assert page.locator('#token-gallery .dvx-tile.selected').get_attribute("data-index") == str(min(pinned + 1, 63))
        before = page.locator('#controls select[data-control="block"]').input_value()
        page.keyboard.press("ArrowUp")
        visit.settle()
        after = page.locator('#controls select[data-control="block"]').input_value()
        assert after != before and after == page.evaluate("() => window.dualvitExplorer.store.state.block")
        assert len(visit.requests) == asked, visit.requests[asked:]  # a token pick and a block change: no request
        visit.shot("live_tokens_keys")


def test_the_ownership_map_names_lights_and_isolates_the_region_under_the_pointer(shipped_app):
    with browser_page(shipped_app.url) as visit:
        key = visit.analyse(SCENE)
        analysis = shipped_app.explorer.get(key)
        visit.open_tab("Pixels")
        page = visit.page
        canvas = page.locator("#ownership canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        owner, _ = trace_maths.ownership(analysis.trace, 2, 0)
        cells = overlay.cell_index(tuple(analysis.trace.grid(2)), analysis.geometry)
        x, y = int(0.3 * analysis.display.shape[1]), int(0.4 * analysis.display.shape[0])
        expected = int(owner.ravel()[cells[y, x]])
        page.mouse.move(box["x"] + (x + 0.5) * box["width"] / analysis.display.shape[1],
                        box["y"] + (y + 0.5) * box["height"] / analysis.display.shape[0])
        visit.settle()
        readout = page.locator("#ownership .dvx-readout").inner_text()
        assert readout.startswith(f"token {expected} owns this spot"), readout
        lit = visit.canvas("#ownership canvas")
        page.mouse.click(box["x"] + (x + 0.5) * box["width"] / analysis.display.shape[1],
                         box["y"] + (y + 0.5) * box["height"] / analysis.display.shape[0])
        visit.settle()
        assert "isolated" in page.locator("#ownership .dvx-readout").inner_text()
        isolated = visit.canvas("#ownership canvas")
        others = (owner.ravel()[cells] != expected) & (cells >= 0)
        grey = overlay.backdrop(analysis.display)
        # Every other region goes back to the photo in grey (but for the seams and the lit border).
        assert (np.abs(isolated[others].astype(int) - grey[others]).max(axis=1) <= 1).mean() > 0.8
        assert (np.abs(lit[others].astype(int) - grey[others]).max(axis=1) <= 1).mean() < 0.2
        visit.shot("live_ownership_isolated")


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_compare_shows_the_same_token_on_both_images_and_mirrors_the_pointer(shipped_app, viewport):
    with browser_page(shipped_app.url, viewport) as visit:
        visit.analyse(SCENE)
        visit.open_tab("Compare")
        page = visit.page
        page.locator("#second-upload input[type=file]").set_input_files(str(SECOND_SCENE))
        before = page.evaluate("() => window.dualvitExplorer.store.state.compare")
        assert before is None
        page.locator("#second-analyse").click()
        page.wait_for_function("() => window.dualvitExplorer.store.state.compare !== null", timeout=120_000)
        visit.set(token=12, scale="shared")
        left, right = page.locator("#compare-left figure"), page.locator("#compare-right figure")
        assert left.get_attribute("data-token") == right.get_attribute("data-token") == "12"
        assert page.locator(".dvx-pair-key .colour-key").count() == 1  # one key for the pair on a shared scale
        assert left.locator(".colour-key").count() == 0 and right.locator(".colour-key").count() == 0
        marker = page.locator("#compare-left canvas.dvx-marker")
        marker.scroll_into_view_if_needed()
        box = marker.bounding_box()
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
        visit.settle()
        state = page.evaluate("() => window.dualvitExplorer.store.state.comparePoint")
        assert abs(state[0] - 0.5) < 0.02 and abs(state[1] - 0.5) < 0.02
        for side in ("#compare-left", "#compare-right"):
            assert "token 12's attention" in page.locator(f"{side} .dvx-readout").inner_text()
        page.evaluate("() => document.querySelector('#live-compare').scrollIntoView({block: 'start'})")
        visit.shot(f"live_compare_screen_{viewport}", full_page=False)
        visit.set(scale="per map")
        assert left.locator(".colour-key").count() == 1 and right.locator(".colour-key").count() == 1
        visit.shot(f"live_compare_{viewport}")
        # The right-hand picture downloads as the token's figure on the second image, at its own block.
        with page.expect_download() as downloading:
            page.locator("#compare-right .dvx-download a[data-format=svg]").click()
        said = Path(downloading.value.path()).read_text()
        assert "Token 12 at" in said and SECOND_SCENE.name in said
        if viewport == "desktop":  # the page's download: the compared image's tour follows the first's in the deck
            visit.open_tab("Export")
            page.get_by_role("button", name="Prepare download").click()
            link = page.locator("#export-file a").first
            link.wait_for(timeout=120_000)
            with page.expect_download() as downloading:
                link.click()
            with zipfile.ZipFile(downloading.value.path()) as bundle:
                deck = bundle.read("deck.html").decode()
                assert json.loads(bundle.read("settings.json"))["token"] == 12
            assert deck.count('<section class="slide') == 2 * (render.TOUR_STEPS + 1)
            assert deck.index(SCENE.name) < deck.index("The compared image") < deck.rindex(SECOND_SCENE.name)


def test_the_selection_stays_one_state_when_a_dropdown_is_opened_and_a_tile_clicked_at_once(shipped_app):
    """The race of the old page: opening and closing the Colour scale menu redrew with the old token, and a tile
    clicked meanwhile left the token box on 20 while the picture stayed on token 0."""
    with browser_page(shipped_app.url) as visit:
        visit.analyse(SCENE)
        visit.open_tab("Semantic tokens")
        page = visit.page
        scale = page.locator('#controls select[data-control="scale"]')
        for _ in range(4):
            scale.click()
            page.keyboard.press("Escape")
            page.locator('#token-gallery .dvx-tile[data-index="20"]').click()
            visit.settle()
            assert page.locator("#token-image figure").get_attribute("data-token") == "20"
            assert "Token 20" in page.locator("#token-stats").inner_text()
            assert page.locator("#live-tokens .dvx-token-box input").input_value() == "20"
            assert page.locator("#token-gallery .dvx-tile.selected").get_attribute("data-index") == "20"
            visit.set(token=0)


def test_on_a_phone_the_result_of_analyse_and_of_a_tile_tap_is_on_the_screen(shipped_app):
    with browser_page(shipped_app.url, "phone") as visit:
        page = visit.page
        visit.analyse(SCENE)
        top = page.locator("#prediction").bounding_box()["y"]
        assert 0 <= top < 844, top
        visit.open_tab("Semantic tokens")
        tile = page.locator('#token-gallery .dvx-tile[data-index="33"]')
        tile.scroll_into_view_if_needed()
        tile.tap()
        visit.settle()
        detail = page.locator("#token-image figure").bounding_box()
        assert 0 <= detail["y"] < 844 and page.locator("#token-image figure").get_attribute("data-token") == "33"
        visit.shot("live_phone_tap", full_page=False)


def test_a_map_no_more_peaked_than_uniform_is_drawn_faint_on_every_scale(app_server):
    """Untrained weights attend almost evenly: their tiles must look like the grey photo, not like peaks."""
    with browser_page(app_server.url) as visit:
        key = visit.analyse(SCENE)
        analysis = app_server.explorer.get(key)
        assert "no block's token maps stand out from uniform attention" in visit.page.locator("#status").inner_text()
        visit.open_tab("Semantic tokens")
        grey = overlay.backdrop(analysis.thumbnail)
        for scale in render.SCALES:
            visit.set(scale=scale)
            for token in (0, 21, 42, 63):
                tile = visit.canvas(f'#token-gallery .dvx-tile[data-index="{token}"] canvas')
                assert np.abs(tile.astype(int) - grey).max() <= 40, (scale, token)


def test_the_heap_stays_bounded_over_twenty_analyses(shipped_app):
    with browser_page(shipped_app.url) as visit:
        page = visit.page
        devtools = page.context.new_cdp_session(page)
        devtools.send("Performance.enable")
        for round_ in range(20):
            visit.analyse(SCENE if round_ % 2 else PHOTO)
        devtools.send("HeapProfiler.collectGarbage")
        metrics = {metric["name"]: metric["value"] for metric in devtools.send("Performance.getMetrics")["metrics"]}
        heap_mib = metrics["JSHeapUsedSize"] / 2 ** 20
        print(f"JS heap after 20 analyses: {heap_mib:.1f} MiB")
        assert heap_mib <= 300
