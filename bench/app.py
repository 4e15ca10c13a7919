"""Explorer speed: a view change drawn from the cached trace, and the time to a first result.

    python -m bench.app [--repeats 20]

View changes are timed server-side (the render function a UI event calls) on a dualvit_s trace
at 224 (target: median <= 50 ms). The first result is an upload analysed with the default weights
on the CPU: decoding, preprocessing, the one forward pass with capture, the prediction
(target <= 1 s), timed in-process and through the running server with gradio_client.
"""
from __future__ import annotations

import os
import time

from PIL import Image

import model  # noqa: F401
from analysis import trace_maths
from bench.timing import Figure, median_seconds, random_dualvit_s_explorer, run_bench
from model.bundle import ASSETS, open_model
from viewer import render
from viewer.inputs import open_image
from viewer.service import Explorer

EXAMPLE = ASSETS / "examples" / "coffee.jpg"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def view_changes(repeats: int) -> list[Figure]:
    explorer = random_dualvit_s_explorer()
    analysis = explorer.get(explorer.analyse(Image.open(EXAMPLE).convert("RGB"), "224"))
    style = render.Style()
    figures = []
    for block in (trace_maths.blocks(analysis.trace)[6], trace_maths.blocks(analysis.trace)[10]):  # a Dual and a Merge block
        timings = {
            "token detail": lambda: render.token_detail(analysis, block, "mean", style, 27),
            "pixel click": lambda: render.pixel_view(analysis, block, "mean", style, (200.0, 150.0)),
            "stages": lambda: render.stages_view(analysis, block, "mean", style, None),
            "token gallery (64 tiles)": lambda: render.token_gallery(analysis, block, "mean", style),
        }
        for name, function in timings.items():
            figures.append(Figure(f"view change from cache, dualvit_s 224, {block.label}, {name}",
                                  median_seconds(function, repeats) * 1000, "ms", "≤ 50 ms"))
    return figures


def first_result(repeats: int) -> list[Figure]:
    explorer = Explorer(open_model(None, device="cpu"))

    def analyse() -> None:
        loaded = open_image(EXAMPLE)
        explorer.get(explorer.analyse(loaded.image, "224")).trace.top_classes(5)

    figures = [Figure("first result, default weights, CPU, in-process", median_seconds(analyse, repeats) * 1000,
                      "ms", "≤ 1000 ms")]
    from gradio_client import Client, handle_file

    from viewer.ui import build_demo, launch_options
    demo = build_demo(explorer)
    demo.queue()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **launch_options(explorer))
    try:
        client = Client(demo.local_url, verbose=False)
        samples = []
        for _ in range(max(3, repeats // 4)):
            start = time.perf_counter()
            client.predict(handle_file(EXAMPLE), "224", api_name="/analyse")
            samples.append(time.perf_counter() - start)
        samples.sort()
        figures.append(Figure("first result, default weights, CPU, through the server",
                              samples[len(samples) // 2] * 1000, "ms", "≤ 1000 ms"))
    finally:
        demo.close()
    return figures


def measure(repeats: int = 20) -> list[Figure]:
    return view_changes(repeats) + first_result(repeats)


def main() -> None:
    run_bench(__doc__, "explorer speed", measure, repeats=20)


if __name__ == "__main__":
    main()
