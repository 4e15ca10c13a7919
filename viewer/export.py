"""Saving the explorer's views: the page's download, and the standard figures without a page.

    python -m viewer.export IMAGE [IMAGE ...] --out DIR [--weights PATH] [--resolution 224|384|aspect]
                            [--block "stage 2 · block 0"] [--token 27] [--colormap inferno]

For each image, DIR/<image name>/ receives the standard teaching figures as PNG (every token's
map, one token in detail and through every block, ownership, stages, class attention, a contact
sheet), the plotly figures as HTML, the trace (.safetensors) and the settings (JSON).
"""
from __future__ import annotations

import argparse
import json
import sys
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from analysis import trace_maths
from model.bundle import ModelBundle, open_model
from model.weights import CheckpointError
from viewer import catalogue, keys, overlay, render
from viewer.analysed import THUMBNAIL_SIDE, Analysis
from viewer.errors import UserError
from viewer.inputs import open_image
from viewer.requests import RESOLUTIONS
from viewer.service import Explorer

GALLERY_COLUMNS = 8


@dataclass(frozen=True)
class Settings:
    block: str
    fusion: str = "mean"
    colormap: str = "inferno"
    opacity: float = render.DEFAULT_OPACITY
    token: int = 0
    point: tuple[float, float] | None = None  # display-image pixels; None: the centre
    scale: str = render.DEFAULT_SCALE

    @property
    def style(self) -> render.Style:
        return render.Style(self.colormap, self.opacity, self.scale)


def png_bytes(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("could not encode the figure as PNG")
    return encoded.tobytes()


def settings_record(analysis: Analysis, bundle: ModelBundle, settings: Settings) -> dict:
    geometry = analysis.trace.geometries[0] if analysis.trace.geometries else None
    return {"weights": bundle.weights, "architecture": bundle.architecture, "resolution": analysis.resolution,
            **asdict(settings), "geometry": asdict(geometry) if geometry else None,
            "top_classes": analysis.trace.top_classes(5)}


def main_views(analysis: Analysis, block: trace_maths.BlockRef,
               settings: Settings) -> tuple[render.TokenDetail, render.PixelView, render.StagesView]:
    style = settings.style
    return (render.token_detail(analysis, block, settings.fusion, style, settings.token),
            render.pixel_view(analysis, block, settings.fusion, style, settings.point),
            render.stages_view(analysis, block, settings.fusion, style, None))


def sheet(tiles: render.Tiles, columns: int, size: int = THUMBNAIL_SIDE) -> np.ndarray:
    """Tiles as one labelled contact sheet, with their key below."""
    return keys.with_key(overlay.tile([tile.image for tile in tiles.tiles], columns=columns,
                                      labels=[tile.caption for tile in tiles.tiles], size=size), tiles.key)


def keyed(picture: render.Picture) -> np.ndarray:
    return keys.with_key(picture.image, picture.key)


def drawn_views(analysis: Analysis, block: trace_maths.BlockRef, settings: Settings) -> dict[str, object]:
    """Every view the export can write, by its catalogue name: PNG-ready images (maps with their colour
    key) and plotly figures."""
    detail, pixels, stages = main_views(analysis, block, settings)
    gallery = render.token_gallery(analysis, block, settings.fusion, settings.style)
    return {
        "token_gallery": sheet(gallery, GALLERY_COLUMNS),
        "token_image": keyed(detail.picture),
        "filmstrip": sheet(detail.filmstrip, len(detail.filmstrip.tiles)),
        "pixel_image": pixels.marked,
        "pixel_reads": pixels.reads_figure,
        "ownership": keyed(pixels.ownership),
        "stages": sheet(stages.stages, len(stages.stages.tiles)),
        "class_attention": keyed(stages.class_attention),
        "semantic_self": stages.semantic_self_figure,
        "merge_quadrants": stages.merge_quadrants_figure,
        "contact_sheet": render.contact_sheet(detail, pixels, stages, settings.token, block),
    }


def standard_figures(analysis: Analysis, block: trace_maths.BlockRef, settings: Settings) -> tuple[dict, dict]:
    """The views the catalogue marks as exported, plus the contact sheet: images and plots, by file stem."""
    drawn = drawn_views(analysis, block, settings)
    chosen = {view.name: drawn[view.name] for view in catalogue.VIEWS if view.exported}
    chosen["contact_sheet"] = drawn["contact_sheet"]
    images = {name: value for name, value in chosen.items() if isinstance(value, np.ndarray)}
    plots = {name: value for name, value in chosen.items() if not isinstance(value, np.ndarray)}
    return images, plots


def write_bundle(analysis: Analysis, bundle: ModelBundle, block: trace_maths.BlockRef, settings: Settings,
                 folder: Path, explanation: tuple[str, render.Picture] | None = None) -> Path:
    """The page's single download: a PNG of the current views (with ``explanation``, a titled picture,
    when one was made), the trace and the settings, zipped."""
    detail, pixels, stages = main_views(analysis, block, settings)
    trace_path = folder / "trace.safetensors"
    analysis.trace.save(trace_path)
    archive = folder / "dualvit_explorer_export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle_file:
        sheet_image = render.contact_sheet(detail, pixels, stages, settings.token, block, explanation)
        bundle_file.writestr("trace_maths.png", png_bytes(sheet_image))
        bundle_file.write(trace_path, "trace.safetensors")
        record = settings_record(analysis, bundle, settings) | {"explanation": explanation[0] if explanation else None}
        bundle_file.writestr("settings.json", json.dumps(record, indent=2))
    trace_path.unlink()
    return archive


def export_image(explorer: Explorer, image_path: Path, out: Path, resolution: str, block_label: str | None,
                 settings: Settings) -> Path:
    """The standard figures of one image in ``out/<its stem>/``; a bad image or setting is a UserError."""
    loaded = open_image(image_path)
    key = explorer.analyse(loaded.image, resolution, tuple(loaded.notes))
    analysis = explorer.get(key)
    label = block_label or trace_maths.default_block(analysis.trace).label  # the block the page opens on
    request = explorer.view_request(key, label, settings.fusion, settings.scale, settings.colormap,
                                    settings.opacity, token=settings.token)
    block = request.block
    settings = replace(settings, block=block.label)
    folder = out / image_path.stem
    folder.mkdir(parents=True, exist_ok=True)
    images, plots = standard_figures(analysis, block, settings)
    for stem, image in images.items():
        (folder / f"{stem}.png").write_bytes(png_bytes(image))
    for stem, figure in plots.items():
        figure.write_html(folder / f"{stem}.html", include_plotlyjs="cdn")
    analysis.trace.save(folder / "trace.safetensors")
    (folder / "settings.json").write_text(json.dumps(settings_record(analysis, explorer.bundle, settings), indent=2))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m viewer.export", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--weights", help="checkpoint or hf://OWNER/REPO/FILE (default: the shipped scene model)")
    parser.add_argument("--model", help="architecture, when the weights do not say")
    parser.add_argument("--resolution", default="224", choices=list(RESOLUTIONS))
    parser.add_argument("--block", help='e.g. "stage 2 · block 0" (default: the block the page opens on)')
    parser.add_argument("--token", type=int, default=0)
    parser.add_argument("--fusion", default="mean")
    parser.add_argument("--colormap", default="inferno", choices=list(overlay.COLORMAPS))
    parser.add_argument("--opacity", type=float, default=render.DEFAULT_OPACITY)
    parser.add_argument("--scale", default=render.DEFAULT_SCALE, choices=list(render.SCALES))
    arguments = parser.parse_args(argv)
    try:
        explorer = Explorer(open_model(arguments.weights, arguments.model, device="auto"))
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = Settings("", arguments.fusion, arguments.colormap, arguments.opacity, arguments.token,
                        scale=arguments.scale)
    failures = 0
    for image_path in arguments.images:
        try:
            folder = export_image(explorer, image_path, arguments.out, arguments.resolution, arguments.block, settings)
            print(f"{image_path}: wrote {folder}")
        except UserError as error:
            failures += 1
            print(f"{image_path}: skipped: {error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
