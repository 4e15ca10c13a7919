"""What the export for slides and papers costs: the time to write everything for one image, and the sizes.

    python -m bench.export [--repeats 3]

For the shipped model on a scene and for dualvit_s (randomly initialised) on a photo, at 224: the page's
download, zipped (every view as PNG, SVG and PDF, the plots as offline HTML, the deck as HTML and PDF, the animations as
GIF and MP4; targets: at most 10 s on 2 cores), the deck's size (target for dualvit_s: at most 10 MB) and the
whole download's, and one picture's download button (one figure as PNG).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from analysis import trace_maths
from bench.timing import Figure, median_seconds, parse_bench_arguments, print_table, random_dualvit_s_explorer
from model.bundle import ASSETS, open_model
from viewer import export, render
from viewer.inputs import open_image
from viewer.service import Explorer

EXAMPLES = ASSETS / "examples"
CASES = (("shipped model", EXAMPLES / "scene_4_cross_star_arrow.png"), ("dualvit_s", EXAMPLES / "coffee.jpg"))


def measure(repeats: int = 3, models: tuple[str, ...] = tuple(name for name, _ in CASES)) -> list[Figure]:
    figures = []
    for name, image in [(name, image) for name, image in CASES if name in models]:
        explorer = Explorer(open_model(None, None, device="cpu")) if name == "shipped model" else \
            random_dualvit_s_explorer()
        loaded = open_image(image)
        key = explorer.analyse(loaded.image, "224", tuple(loaded.notes), name=loaded.name)
        analysis = explorer.get(key)
        block = trace_maths.default_block(analysis.trace)
        settings = export.Settings(block.label, token=trace_maths.lead_token(analysis.trace, block))
        files = export.export_files(analysis, explorer.bundle, block, settings)
        with tempfile.TemporaryDirectory() as folder:
            def download() -> Path:
                return export.write_bundle(analysis, explorer.bundle, block, settings, Path(folder))
            seconds = median_seconds(download, repeats, warmup=0)
            zipped = download().stat().st_size
        figure_seconds = median_seconds(lambda: export.figure_file(explorer, key, "token_image", "png",
                                                                   {"block": block.label}), repeats, warmup=1)
        deck_target = "≤ 10 MB" if name == "dualvit_s" else ""
        figures += [
            Figure(f"export of everything, the page's download ({len(files) + 1} files zipped), {name} 224, one image",
                   seconds, "s", "≤ 10"),
            Figure(f"the deck (HTML, offline), {name} 224", len(files["deck.html"]) / 1e6, "MB", deck_target),
            Figure(f"the deck (PDF, {render.TOUR_STEPS} slides), {name} 224",
                   len(files["deck.pdf"]) / 1e6, "MB"),
            Figure(f"the whole download, zipped (unzipped without the trace: {sum(map(len, files.values())) / 1e6:.1f} "
                   f"MB), {name} 224", zipped / 1e6, "MB"),
            Figure(f"one picture's download button (token_image.png), {name} 224", figure_seconds * 1000, "ms"),
        ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parse_bench_arguments(parser)
    print_table("export", measure(arguments.repeats))


if __name__ == "__main__":
    main()
