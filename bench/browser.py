"""Latency where the user sits: a control changed in the browser until its view is painted.

    python -m bench.browser [--repeats 5]

Debian's Chromium, driven by Playwright, against the real server on 127.0.0.1, at 224 on the
shipped model (target <= 300 ms) and on a randomly initialised dualvit_s (target <= 500 ms):

* block change: a new block picked in the dropdown until every tile of the token gallery is decoded;
* token pick: a gallery tile clicked until the token's large picture is decoded;
* pixel click: a point clicked on the photo until the marked photo (sent with the top tokens and the
  ownership map, in one response) is decoded.

Each time runs from the click that changes the control to the first animation frame after the
new images are complete.
"""
from __future__ import annotations

import os
import shutil
import statistics

import model  # noqa: F401
from bench.timing import Figure, random_dualvit_s_explorer, run_bench
from model.bundle import ASSETS, open_model
from viewer.service import Explorer

EXAMPLE = ASSETS / "examples" / "scene_4_cross_star_arrow.png"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# The clock starts at the pointer press of the click that changes the control, in the page.
ARM = """() => { window.benchPressed = null;
  document.addEventListener('pointerdown', () => { window.benchPressed = performance.now(); },
                            {capture: true, once: true}); }"""
# True once the view shows what was asked for (``ready``, a CSS selector) and all its images are decoded.
PAINTED = """([view, ready]) => {
  if (!document.querySelector(ready)) return false;
  const images = [...document.querySelectorAll(view + ' img')];
  return images.length > 0 && images.every(image => image.complete && image.naturalWidth > 0);
}"""
LAID_OUT = """(selector) => { const image = document.querySelector(selector);
  return image !== null && image.complete && image.getBoundingClientRect().width > 0; }"""
NEXT_FRAME = "() => new Promise(resolve => requestAnimationFrame(() => resolve(performance.now())))"


def timed(page, action, view: str, ready: str) -> float:
    """Seconds from the press that ``action`` makes to the first frame showing ``view`` decoded and ``ready``."""
    page.evaluate(ARM)
    action()
    page.wait_for_function(PAINTED, arg=[view, ready], polling="raf", timeout=60_000)
    painted = page.evaluate(NEXT_FRAME)
    return (painted - page.evaluate("() => window.benchPressed")) / 1000


def wait_until_idle(page) -> None:
    page.wait_for_function("() => document.querySelectorAll('.pending, .generating').length === 0", timeout=60_000)


def measure_app(explorer: Explorer, label: str, target: str, repeats: int) -> list[Figure]:
    from playwright.sync_api import sync_playwright

    from analysis import trace_maths
    from viewer.ui import build_demo, launch_options

    demo = build_demo(explorer)
    demo.queue(default_concurrency_limit=2, max_size=64)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options())
    chromium = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
    samples: dict[str, list[float]] = {"block change (whole gallery)": [], "token pick": [], "pixel click": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(demo.local_url)
            page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
            page.locator("#analyse").click()
            page.locator("#tour-text-6 h3").wait_for(timeout=120_000)
            wait_until_idle(page)
            labels = [ref.label for ref in trace_maths.blocks(explorer.cache.newest().trace)]
            page.get_by_role("tab", name="Semantic tokens").click()
            wait_until_idle(page)
            for repeat in range(repeats + 1):  # the first round warms the browser and the caches
                block_label = labels[repeat % len(labels)] if labels[repeat % len(labels)] != page.locator(
                    "#block input").input_value() else labels[(repeat + 1) % len(labels)]
                page.locator("#block input").click()
                option = page.get_by_role("option", name=block_label, exact=True)
                block_time = timed(page, option.click, "#token-gallery",
                                   f'#token-gallery .tile-grid[aria-label$="{block_label}"]')
                wait_until_idle(page)
                token = 7 + repeat
                token_time = timed(page, page.locator(f'#token-gallery .tile[data-token="{token}"]').click,
                                   "#token-image", f'#token-image img[alt^="token {token},"]')
                wait_until_idle(page)
                page.get_by_role("tab", name="Pixels").click()
                wait_until_idle(page)
                # A tab's content is laid out when first shown: click only once the photo has its size.
                page.wait_for_function(LAID_OUT, arg="#pixel-image img", timeout=60_000)
                box = page.locator("#pixel-image img").bounding_box()
                x, y = box["x"] + box["width"] * (0.2 + 0.1 * (repeat % 6)), box["y"] + box["height"] * 0.4
                before = page.locator("#pixel-image img").get_attribute("src")
                pixel_time = timed(page, lambda: page.mouse.click(x, y), "#pixel-image",
                                   f'#pixel-image img:not([src="{before}"])')
                wait_until_idle(page)
                page.get_by_role("tab", name="Semantic tokens").click()
                wait_until_idle(page)
                if repeat:
                    for name, value in zip(samples, (block_time, token_time, pixel_time)):
                        samples[name].append(value)
            browser.close()
    finally:
        demo.close()
    return [Figure(f"browser, {label} 224, {name}: click to painted", statistics.median(values) * 1000, "ms", target)
            for name, values in samples.items()]


def measure(repeats: int = 5, models: tuple[str, ...] = ("shipped model", "dualvit_s")) -> list[Figure]:
    """The figures of each of ``models``: the shipped model, a randomly initialised dualvit_s."""
    explorers = {"shipped model": lambda: Explorer(open_model(None, device="cpu")),
                 "dualvit_s": random_dualvit_s_explorer}
    targets = {"shipped model": "≤ 300 ms", "dualvit_s": "≤ 500 ms"}
    return [figure for name in models for figure in measure_app(explorers[name](), name, targets[name], repeats)]


def main() -> None:
    run_bench(__doc__, "browser latency", measure, repeats=5)


if __name__ == "__main__":
    main()
