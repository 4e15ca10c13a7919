"""The export for slides and papers, as a user runs it: every view as PNG, SVG and PDF, the plots as offline HTML,
the tour as an offline deck and a PDF of 16:9 slides, the animations as GIF and MP4."""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import numpy as np
import pytest
from matplotlib.text import Text
from PIL import Image
from pypdf import PdfReader

from analysis import trace_maths
from model.bundle import open_model
from model.trace import Trace
from browser_page import SCREENSHOTS, browser_page
from viewer import animation, catalogue, deck, export, figure_files, help_texts, render
from viewer.analysed import MIN_DISPLAY_SIDE
from viewer.inputs import open_image
from viewer.service import Explorer

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "assets" / "examples"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def exported(small_weights, tmp_path_factory) -> Path:
    """``python -m viewer.export`` with everything asked for, on a photo (its own aspect) and a scene."""
    out = tmp_path_factory.mktemp("exported")
    images = [EXAMPLES / "coffee.jpg", EXAMPLES / "scene_7_ring.png"]
    command = [sys.executable, "-m", "viewer.export", *map(str, images), "--out", str(out), "--weights",
               str(small_weights), "--token", "9", "--stage-token", "5", "--resolution", "aspect", "--svg", "--deck",
               "--animations"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def analysed(small_weights):
    """The untrained small model's analysis of a scene, in this process."""
    explorer = Explorer(open_model(str(small_weights), None, device="cpu"))
    loaded = open_image(EXAMPLES / "scene_7_ring.png")
    analysis = explorer.get(explorer.analyse(loaded.image, "224", tuple(loaded.notes), name=loaded.name))
    return analysis, explorer.bundle


def exported_views() -> list[catalogue.View]:
    return [view for view in catalogue.VIEWS if view.exported]


@pytest.mark.slow
def test_the_command_writes_every_view_as_png_svg_and_pdf_and_the_deck_and_animations(exported):
    folder = exported / "coffee"
    expected = {f"{view.name}.{suffix}" for view in exported_views() for suffix in ("png", "svg", "pdf")}
    expected |= {f"{view.name}.html" for view in exported_views() if view.form == "plot"}
    expected |= {"deck.html", "deck.pdf", "trace.safetensors", "settings.json"}
    expected |= {f"{name}.{suffix}" for name in animation.ANIMATIONS for suffix in ("gif", "mp4")}
    assert {"token_gallery.svg", "filmstrip.pdf", "pixel_reads.svg", "semantic_self.html"} <= expected
    assert {path.name for path in folder.iterdir()} == expected
    settings = json.loads((folder / "settings.json").read_text())
    trace = Trace.load(folder / "trace.safetensors")
    assert settings["token"] == 9 and settings["stage_token"] == 5 and settings["resolution"] == "aspect"
    assert settings["block"] == trace_maths.default_block(trace).label  # the block the page opens on
    assert trace.geometries[0].original_size == (600, 400)


@pytest.mark.slow
def test_exported_pngs_are_slide_sized_and_stamped_as_untrained(exported):
    stamp = np.array([int(figure_files.STAMP_COLOUR[i:i + 2], 16) for i in (1, 3, 5)])
    for view in exported_views():
        image = cv2.cvtColor(cv2.imread(str(exported / "coffee" / f"{view.name}.png")), cv2.COLOR_BGR2RGB)
        assert max(image.shape[:2]) >= 1080, view.name
        stamped = (np.abs(image.astype(int) - stamp).sum(axis=2) < 12).sum()
        assert stamped > 5_000, f"{view.name}: no untrained-weights stamp"  # a band across the figure, in red


def drawn_text_outside(figure) -> list[str]:
    """The texts of ``figure`` drawn (in part) beyond its margins (a plot's, beyond its edges), measured by the
    renderer."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    width, height = figure.bbox.width, figure.bbox.height
    undrawn = set()  # the labels of ticks beyond an axis's range, which matplotlib keeps but does not draw
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            undrawn |= {id(label) for tick in axis.get_major_ticks() if not low - 1e-9 <= tick.get_loc() <= high + 1e-9
                        for label in (tick.label1, tick.label2)}
    outside = []
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or id(text) in undrawn:
            continue
        box = text.get_window_extent(renderer)
        # The figure's own words (titles, stamp, key, captions) keep within its margins, the stamp's within its red
        # band; a plot's labels within the figure.
        margin = figure_files.MARGIN * figure.dpi - 0.5 if text.axes is None else -0.5
        if box.x0 < margin or box.y0 < -0.5 or box.x1 > width - margin or box.y1 > height + 0.5:
            outside.append(text.get_text())
    return outside


@pytest.mark.slow
def test_no_label_of_any_figure_slide_or_frame_is_cut(analysed):
    analysis, bundle = analysed
    trace = analysis.trace
    block = trace_maths.default_block(trace)
    settings = export.Settings(block.label, token=63, stage_token=2, scale="mass")
    exhibits = export.exhibits(analysis, bundle, block, settings)
    assert [exhibit.name for exhibit in exhibits] == [view.name for view in exported_views()]
    for exhibit in exhibits:
        assert help_texts.caution_stamp(trace, bundle) == exhibit.heading.stamp and "UNTRAINED" in exhibit.heading.stamp
        assert exhibit.heading.context.startswith("scene_7_ring.png · dualvit_nano")
        figure = figure_files.exhibit_figure(exhibit, analysis)
        assert figure.bbox.width >= 1080
        assert drawn_text_outside(figure) == [], exhibit.name
        said = " ".join(text.get_text() for text in figure.findobj(Text))  # a long title wraps onto lines
        assert exhibit.heading.title in said
    talk = export.talk_of(analysis, bundle, settings.style)
    for number, step in enumerate(talk.steps, start=1):
        assert drawn_text_outside(deck.slide_figure(talk, number, step)) == [], step.title
    frames = animation.frame_exhibits(analysis, trace_maths.token_filmstrip(trace, 63, "mean"), settings.style, 63,
                                      export.heading_of(analysis, bundle))
    for frame in frames:
        assert drawn_text_outside(figure_files.exhibit_figure(frame, analysis)) == [], frame.heading.title


def test_long_text_wraps_within_its_width():
    text = "half of the map's mass lies on twelve cells near the ring's upper edge " * 6
    for size, width in ((11, 3.0), (18, 4.9), (26, 12.1)):
        lines = figure_files.wrapped(text, size, width)
        assert len(lines) > 1 and " ".join(lines).split() == text.split()
        figure = figure_files.laid_out([figure_files.text_block(text, size, width, figure_files.MARGIN)],
                                       width=width + 2 * figure_files.MARGIN)
        assert drawn_text_outside(figure) == []


def test_the_stamp_says_untrained_weights_and_images_outside_what_the_model_knows():
    def trace(probabilities, multi_label=True):
        names = [f"class {index}" for index in range(len(probabilities))]
        ranked = sorted(zip(names, probabilities), key=lambda pair: -pair[1])
        return SimpleNamespace(multi_label=multi_label, class_names=names, top_classes=lambda k: ranked[:k])

    trained = SimpleNamespace(trained=True, domain="generated scenes")
    assert help_texts.caution_stamp(trace([0.9, 0.1]), trained) == ""
    assert help_texts.caution_stamp(trace([0.3, 0.1]), trained).startswith("OUTSIDE WHAT THE MODEL KNOWS")
    assert help_texts.caution_stamp(trace([0.3, 0.1], multi_label=False), trained) == ""  # softmax: cannot tell
    assert help_texts.caution_stamp(trace([0.9, 0.1]), SimpleNamespace(trained=False)).startswith("UNTRAINED")


def key_texts(svg_path: Path) -> list[str]:
    root = ElementTree.parse(svg_path).getroot()
    return [" ".join(element.itertext()).strip() for element in root.iter(f"{SVG}text")]


@pytest.mark.slow
def test_every_svg_parses_and_keeps_its_words_as_text(exported):
    folder = exported / "scene_7_ring"
    for view in exported_views():
        texts = key_texts(folder / f"{view.name}.svg")
        assert any(text.startswith("UNTRAINED WEIGHTS") for text in texts), view.name
    trace = Trace.load(folder / "trace.safetensors")
    block = trace_maths.default_block(trace)
    cells = trace.grid(block.stage).height * trace.grid(block.stage).width
    texts = key_texts(folder / "token_image.svg")
    # The key's two ends: uniform attention over the block's pixels, and the map's top in multiples of it.
    assert f"uniform (1/{cells})" in texts
    assert any(re.fullmatch(r"[0-9.]+× uniform", text) for text in texts)
    assert "attention weight" in texts
    ownership = key_texts(folder / "ownership.svg")
    assert sum(bool(re.fullmatch(r"token \d+ \(\d+(\.\d+)?%\)", text)) for text in ownership) >= 2
    # The map is a raster at the trace's resolution, one pixel a token, over the photo; the outline and the home
    # cell are vector paths.
    root = ElementTree.parse(folder / "token_image.svg").getroot()
    images = [element.get("{http://www.w3.org/1999/xlink}href") or element.get("href")
              for element in root.iter(f"{SVG}image")]
    sizes = [Image.open(io.BytesIO(base64.b64decode(href.split(",", 1)[1]))).size for href in images]
    grid = trace.grid(block.stage)
    # The 224-pixel scene as the page draws it (enlarged to MIN_DISPLAY_SIDE), then the map's cells.
    assert sizes == [(MIN_DISPLAY_SIDE, MIN_DISPLAY_SIDE), (grid.width, grid.height)]
    assert len(list(root.iter(f"{SVG}path"))) > 20


@pytest.mark.slow
def test_the_deck_pdf_has_one_16_9_page_per_tour_step(exported):
    reader = PdfReader(exported / "scene_7_ring" / "deck.pdf")
    assert len(reader.pages) == render.TOUR_STEPS
    for number, page in enumerate(reader.pages, start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(width / height - 16 / 9) < 1e-3
        text = page.extract_text()
        assert re.search(rf"^{number}\. \w", text, re.MULTILINE) and "UNTRAINED WEIGHTS" in text  # its step's title


def blocks_with_token_maps(trace: Trace) -> list[str]:
    """The blocks whose tokens have maps, read from the trace's own map names."""
    found = {re.match(r"stage(\d)\.block(\d+)\.", name).groups() for name in trace.maps
             if name.endswith((".semantic_to_pixel", ".merged"))}
    return [f"stage {stage} · block {block}" for stage, block in sorted(found, key=lambda pair: (int(pair[0]), int(pair[1])))]


def mp4_frames(path: Path | io.BytesIO) -> tuple[list[np.ndarray], float]:
    with av.open(path if isinstance(path, io.BytesIO) else str(path)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        return decoded, container.duration / av.time_base


@pytest.mark.slow
def test_each_animation_has_one_frame_per_block_named_in_it(exported, analysed):
    folder = exported / "scene_7_ring"
    trace = Trace.load(folder / "trace.safetensors")
    blocks = blocks_with_token_maps(trace)
    stages = sorted({label.split(" · ")[0] for label in blocks})
    for name, count in (("token_through_blocks", len(blocks)), ("mean_through_stages", len(stages))):
        gif = Image.open(folder / f"{name}.gif")
        durations = []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
        assert gif.n_frames == count, name
        assert durations == [animation.FRAME_MILLISECONDS] * (count - 1) + [animation.HOLD_MILLISECONDS]
        frames, seconds = mp4_frames(folder / f"{name}.mp4")
        assert len(frames) == count
        assert seconds == pytest.approx((count - 1 + animation.HOLD_MILLISECONDS / 1000), abs=0.05)
    # Each frame is its block's figure, titled with the block's name: the video's frames are those drawn here.
    analysis, bundle = analysed
    exhibits = animation.frame_exhibits(analysis, trace_maths.token_filmstrip(analysis.trace, 9, "mean"),
                                        render.Style(), 9, export.heading_of(analysis, bundle))
    assert [exhibit.heading.title.split(":")[0] for exhibit in exhibits] == blocks
    drawn = animation.frames(analysis, exhibits)
    video, _ = mp4_frames(io.BytesIO(animation.mp4_bytes(drawn)))
    for index, frame in enumerate(video):
        differences = [np.abs(frame.astype(int) - other.astype(int)).mean() for other in drawn]
        assert int(np.argmin(differences)) == index and differences[index] < 3


def test_an_mp4_holds_its_last_frame_whatever_the_pictures():
    rng = np.random.default_rng(0)
    for count in (2, 5, 16):  # random pictures: an encoder would reorder frames here if it could
        pictures = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(count)]
        frames, seconds = mp4_frames(io.BytesIO(animation.mp4_bytes(pictures)))
        assert len(frames) == count
        assert seconds == pytest.approx(count - 1 + animation.HOLD_MILLISECONDS / 1000, abs=0.05)


@pytest.mark.slow
@pytest.mark.browser
def test_an_exported_plot_renders_with_the_network_blocked(exported):
    with browser_page((exported / "coffee" / "pixel_reads.html").as_uri()) as visit:
        visit.page.wait_for_selector(".main-svg .bars path", timeout=30_000)
        assert visit.page.evaluate("() => typeof window.Plotly") == "object"


@pytest.mark.slow
@pytest.mark.browser
def test_the_deck_steps_through_every_slide_offline(exported):
    slides = render.TOUR_STEPS + 1  # the title slide, then one a step
    with browser_page((exported / "scene_7_ring" / "deck.html").as_uri(), size=(1280, 720)) as visit:
        page = visit.page
        assert page.locator(".slide").count() == slides
        shown = "() => [...document.querySelectorAll('.slide')].findIndex((slide) => !slide.hidden)"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for index in range(slides):
            assert page.evaluate(shown) == index
            assert page.locator(".slide:not([hidden])").count() == 1
            page.screenshot(path=str(SCREENSHOTS / f"deck_{index}.png"))
            if index:
                # Body text at projector size: at least 24 pixels on the 1280 x 720 slide.
                size = page.evaluate("() => parseFloat(getComputedStyle(document.querySelector("
                                     "'.slide:not([hidden]) .text p')).fontSize)")
                assert size >= 24
                assert page.locator(".slide:not([hidden]) img").count() == 1
            page.keyboard.press("ArrowRight")
        assert page.evaluate(shown) == slides - 1  # the last slide stays
        page.keyboard.press("ArrowLeft")
        assert page.evaluate(shown) == slides - 2
        page.locator(".slide:not([hidden]) h2").click()  # a click steps on
        assert page.evaluate(shown) == slides - 1
        page.keyboard.press("n")
        assert page.locator(".slide:not([hidden]) aside.notes").is_visible()
        title = page.locator(".slide").first.inner_text()
        assert "scene_7_ring.png" in title and "dualvit_nano" in title and "UNTRAINED WEIGHTS" in title


@pytest.mark.slow
def test_a_compared_image_s_tour_follows_the_first_s_in_the_deck(analysed, small_weights):
    analysis, bundle = analysed
    explorer = Explorer(open_model(str(small_weights), None, device="cpu"))
    loaded = open_image(EXAMPLES / "coffee.jpg")
    compared = explorer.get(explorer.analyse(loaded.image, "224", tuple(loaded.notes), name=loaded.name))
    block = trace_maths.default_block(analysis.trace)
    files = export.export_files(analysis, bundle, block, export.Settings(block.label),
                                export.Parts(vectors=False, animations=False), compared=compared)
    page = files["deck.html"].decode()
    assert page.count('<section class="slide') == 2 * (render.TOUR_STEPS + 1)
    assert page.index("scene_7_ring.png") < page.index("The compared image") < page.rindex("coffee.jpg")
    assert len(PdfReader(io.BytesIO(files["deck.pdf"])).pages) == 2 * render.TOUR_STEPS


@pytest.mark.slow
def test_export_command_reports_a_bad_image_and_goes_on(small_weights, tmp_path):
    folder = tmp_path / "images"  # a folder stands for its images
    folder.mkdir()
    bad = folder / "broken.png"
    bad.write_bytes(b"not an image at all")
    shutil.copy(EXAMPLES / "rocket.jpg", folder / "rocket.jpg")
    command = [sys.executable, "-m", "viewer.export", str(folder), "--out", str(tmp_path / "out"), "--weights",
               str(small_weights)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "broken.png: skipped: This file is not an image" in result.stderr
    assert (tmp_path / "out" / "rocket" / "token_image.png").exists()
    assert not (tmp_path / "out" / "rocket" / "deck.html").exists()  # asked for the PNGs alone
