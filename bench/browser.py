"""Latency where the user sits: a control changed, or the pointer moved, in the browser until the view is painted.

    python -m bench.browser [--repeats 5]

Debian's Chromium, driven by Playwright, against the real server on 127.0.0.1, on the shipped model and on a
randomly initialised dualvit_s, at 224 (and the pointer at 384 too):

* Analyse: from the click to the first gallery painted (the analysis, its maps fetched and drawn), with the
  maps' size on the wire (targets: no slower than the page drew them on the server, 397 and 594 ms on this
  machine; at most 1 MB for the shipped model and 3 MB for dualvit_s);
* block change: a new block picked in the Block menu until the whole gallery is painted;
* token pick: a gallery tile clicked until the token's large picture is painted;
* pixel click: a point clicked on the photo until its reads, top tokens and owner's map are painted
  (targets: 50 ms each);
* pointer move: events at 60 Hz across the photo for 2 s, each from its dispatch to the first frame painted
  after it was drawn (p95 target 33 ms at 224, 50 ms at 384);
* requests: how many HTTP requests the page made during the block changes, token picks and the pointer's
  moves (target: none).

"Painted" is the animation frame after the live views drew the change.
"""
from __future__ import annotations

import os
import shutil
import statistics

import numpy as np

import model  # noqa: F401
from bench.timing import Figure, random_dualvit_s_explorer, run_bench
from model.bundle import ASSETS, open_model
from viewer.service import Explorer

EXAMPLE = ASSETS / "examples" / "scene_4_cross_star_arrow.png"
# The flags keep Chromium off the network it cannot reach here (and that a test must not use).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def find_chromium() -> str | None:
    """Debian's Chromium, or the one CHROMIUM_PATH names (the browser tests use it too)."""
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")


# The clock starts at the press (or the menu's change) that changes the control, and stops at the first frame
# painted after the live views drew.
ARM = """() => new Promise((resolve) => {
  window.benchStart = null; window.benchPainted = null;
  const start = () => { if (window.benchStart === null) window.benchStart = performance.now(); };
  document.addEventListener('pointerdown', start, {capture: true, once: true});
  document.addEventListener('change', start, {capture: true, once: true});
  const store = window.dualvitExplorer.store;
  const stop = store.subscribe(() => {
    stop();
    requestAnimationFrame(() => { window.benchPainted = performance.now(); });
  });
  resolve();
})"""
ELAPSED = "() => window.benchPainted !== null ? window.benchPainted - window.benchStart : null"
# For an analysis, the clock stops at the first frame painted after the gallery of the new analysis was drawn.
ARM_ANALYSIS = """() => new Promise((resolve) => {
  window.benchStart = null; window.benchPainted = null;
  document.addEventListener('pointerdown', () => { window.benchStart = performance.now(); }, {capture: true, once: true});
  const store = window.dualvitExplorer.store, before = store.state.primary ? store.state.primary.key : null;
  const stop = store.subscribe((state) => {
    if (!state.primary || state.primary.key === before) return;
    stop();
    requestAnimationFrame(() => { window.benchPainted = performance.now(); });
  });
  resolve();
})"""
# 120 pointer events at 60 Hz along the photo's middle row; each one's latency: from its dispatch to the frame
# painted after the draw it caused.
POINTER = """async (selector) => {
  const canvas = document.querySelector(selector), box = canvas.getBoundingClientRect();
  const store = window.dualvitExplorer.store, latencies = [];
  let waiting = [];
  const stop = store.subscribe(() => {
    const drawn = waiting; waiting = [];
    requestAnimationFrame(() => { const now = performance.now(); for (const t of drawn) latencies.push(now - t); });
  });
  for (let i = 0; i < 120; i++) {
    const x = box.left + box.width * (0.05 + 0.9 * i / 119), y = box.top + box.height * (0.4 + 0.2 * Math.sin(i / 9));
    waiting.push(performance.now());
    canvas.dispatchEvent(new PointerEvent('pointermove', {clientX: x, clientY: y, bubbles: true, pointerType: 'mouse'}));
    await new Promise((resolve) => setTimeout(resolve, 1000 / 60));
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  stop();
  return latencies;
}"""


def show_tab(page, title: str) -> None:
    """Open a tab and wait until its live views have drawn (two frames)."""
    page.get_by_role("tab", name=title).click()
    page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))")


def percentile(values: list[float], share: float) -> float:
    return float(np.percentile(values, share * 100))


def measure_app(explorer: Explorer, label: str, analyse_target: str, size_target: str, repeats: int) -> list[Figure]:
    from playwright.sync_api import sync_playwright

    from viewer.ui import build_demo, launch_options

    demo = build_demo(explorer)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options(explorer))
    chromium = find_chromium()
    samples: dict[str, list[float]] = {"block change (whole gallery)": [], "token pick": [], "pixel click": []}
    analyse_times, payload_bytes, requests, pointer = [], [], [], {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.on("request", lambda request: requests.append(request.url)
                    if request.url.startswith(("http:", "https:")) else None)
            page.goto(demo.local_url)
            show_tab(page, "Semantic tokens")
            page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
            page.wait_for_function("() => window.dualvitExplorer !== undefined", timeout=60_000)
            page.evaluate("() => { window.benchLoads = []; window.addEventListener('dualvit:loaded', "
                          "(event) => window.benchLoads.push(event.detail.bytes)); }")
            for repeat in range(repeats + 1):  # the first round warms the browser and the caches
                page.evaluate(ARM_ANALYSIS)
                page.locator("#analyse").click()
                page.wait_for_function(ELAPSED, polling="raf", timeout=120_000)
                elapsed = page.evaluate(ELAPSED)
                page.wait_for_function("() => document.querySelectorAll('.pending, .generating').length === 0")
                if repeat:
                    analyse_times.append(elapsed)
            payload_bytes = page.evaluate("() => window.benchLoads")
            labels = page.evaluate("() => window.dualvitExplorer.store.state.primary.blocks.map((b) => b.label)")
            asked = len(requests)
            for repeat in range(repeats + 1):
                current = page.evaluate("() => window.dualvitExplorer.store.state.block")
                target = labels[(labels.index(current) + 1) % len(labels)]
                page.evaluate(ARM)
                page.locator('#controls select[data-control="block"]').select_option(target)
                page.wait_for_function(ELAPSED, polling="raf")
                block_time = page.evaluate(ELAPSED)
                page.evaluate(ARM)
                page.locator(f'#token-gallery .dvx-tile[data-index="{7 + repeat}"]').click()
                page.wait_for_function(ELAPSED, polling="raf")
                token_time = page.evaluate(ELAPSED)
                show_tab(page, "Pixels")
                photo = page.locator("#pixel-image canvas.dvx-marker")
                photo.scroll_into_view_if_needed()
                box = photo.bounding_box()
                page.evaluate(ARM)
                page.mouse.click(box["x"] + box["width"] * (0.2 + 0.1 * (repeat % 6)), box["y"] + box["height"] * 0.4)
                page.wait_for_function(ELAPSED, polling="raf")
                pixel_time = page.evaluate(ELAPSED)
                show_tab(page, "Semantic tokens")
                if repeat:
                    for name, value in zip(samples, (block_time, token_time, pixel_time)):
                        samples[name].append(value)
            show_tab(page, "Pixels")
            page.locator("#pixel-image canvas.dvx-marker").scroll_into_view_if_needed()
            pointer["224"] = page.evaluate(POINTER, "#pixel-image canvas.dvx-marker")
            during = requests[asked:]
            show_tab(page, "Semantic tokens")
            page.locator("input[type=radio][value='384']").first.check()
            page.evaluate(ARM_ANALYSIS)
            page.locator("#analyse").click()
            page.wait_for_function(ELAPSED, polling="raf", timeout=120_000)
            page.wait_for_function("() => document.querySelectorAll('.pending, .generating').length === 0")
            show_tab(page, "Pixels")
            page.locator("#pixel-image canvas.dvx-marker").scroll_into_view_if_needed()
            page.evaluate(POINTER, "#pixel-image canvas.dvx-marker")  # warm: every token drawn once
            pointer["384"] = page.evaluate(POINTER, "#pixel-image canvas.dvx-marker")
            payload_384 = page.evaluate("() => window.benchLoads[window.benchLoads.length - 1]")
            browser.close()
    finally:
        demo.close()
    figures = [Figure(f"browser, {label} 224, Analyse to first gallery painted", statistics.median(analyse_times),
                      "ms", analyse_target),
               Figure(f"browser, {label} 224, the maps of one analysis on the wire", statistics.median(payload_bytes) / 1e6,
                      "MB", size_target),
               Figure(f"browser, {label} 384, the maps of one analysis on the wire", payload_384 / 1e6, "MB")]
    figures += [Figure(f"browser, {label} 224, {name}: click to painted", statistics.median(values), "ms", "≤ 50 ms")
                for name, values in samples.items()]
    for size, target in (("224", "≤ 33 ms"), ("384", "≤ 50 ms")):
        figures.append(Figure(f"browser, {label} {size}, pointer over the photo at 60 Hz: move to painted, p95",
                              percentile(pointer[size], 0.95), "ms", target))
    figures.append(Figure(f"browser, {label}: HTTP requests during block changes, token picks and pointer moves",
                          len(during), "requests", "0"))
    if during:
        print(f"{label}: requests during the live interactions: {during}")
    return figures


def measure(repeats: int = 5, models: tuple[str, ...] = ("shipped model", "dualvit_s")) -> list[Figure]:
    """The figures of each of ``models``: the shipped model, a randomly initialised dualvit_s."""
    explorers = {"shipped model": lambda: Explorer(open_model(None, device="cpu")),
                 "dualvit_s": random_dualvit_s_explorer}
    targets = {"shipped model": ("no slower than 397 ms", "≤ 1 MB"), "dualvit_s": ("no slower than 594 ms", "≤ 3 MB")}
    return [figure for name in models for figure in measure_app(explorers[name](), name, *targets[name], repeats)]


def main() -> None:
    run_bench(__doc__, "browser latency", measure, repeats=5)


if __name__ == "__main__":
    main()
