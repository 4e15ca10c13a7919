"""Saving the explorer's views for slides and papers: the page's download, and the same files without a page.

    python -m viewer.export IMAGE_OR_FOLDER [...] --out DIR [--weights PATH] [--resolution 224|384|aspect]
                            [--block "stage 2 · block 0"] [--token 27] [--stage-token 5] [--colormap inferno]
                            [--svg] [--deck] [--animations]

For each image, DIR/<image name>/ receives every exported view as a PNG (1,200 pixels wide, headed with the
image, the model, the block, the token and the prediction, stamped where the weights are untrained or the image
lies outside what the model knows), the plots as HTML with plotly.js inside (they work offline), the trace
(.safetensors) and the settings (JSON); with ``--svg`` each view also as SVG and PDF, with ``--deck`` the tour as
an offline HTML deck and a PDF of 16:9 slides, with ``--animations`` the token through every block and the mean
over tokens through the stages as GIF and MP4. The page's download holds all of it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import Callable, Collection, Mapping

import plotly.graph_objects as go

from analysis import trace_maths
from model.bundle import ModelBundle, open_model
from model.weights import CheckpointError
from viewer import animation, catalogue, deck, figure_files, help_texts, overlay, render
from viewer.analysed import Analysis
from viewer.atlas_view import open_atlas
from viewer.errors import UserError
from viewer.figure_files import Exhibit, Heading
from viewer.inputs import images_in, open_image
from analysis.explanations import METHODS
from viewer.requests import RESOLUTIONS, ViewRequest
from viewer.service import Explorer

GALLERY_COLUMNS = 8
SERIES_COLUMNS = 4
# Files compressed already (and the trace's float maps, which deflate gains little on): stored as they are.
COMPRESSED = (".png", ".gif", ".mp4", ".pdf")
EXPORT_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class Settings:
    block: str
    fusion: str = "mean"
    colormap: str = "inferno"
    opacity: float = render.DEFAULT_OPACITY
    token: int = 0
    point: tuple[float, float] | None = None  # display-image pixels; None: the centre
    scale: str = render.DEFAULT_SCALE
    stage_token: int | None = None  # the Stages tab's token; None: the mean over tokens

    @property
    def style(self) -> render.Style:
        return render.Style(self.colormap, self.opacity, self.scale)


@dataclass(frozen=True)
class Parts:
    """What the files of one export hold: vector copies (SVG and PDF) of every view, the tour as a deck, the
    animations. The page's download holds all of them."""

    vectors: bool = True
    deck: bool = True
    animations: bool = True


@dataclass(frozen=True)
class Explained:
    """The latest explanation of the image, for the download: the method's title, the class explained with its
    probability ("" where the method explains none), and the view drawn."""

    method: str
    subject: str
    view: render.ExplanationView

    @property
    def title(self) -> str:
        return self.method + (f" for {self.subject}" if self.subject else "")


def settings_record(analysis: Analysis, bundle: ModelBundle, settings: Settings) -> dict:
    geometry = analysis.trace.geometries[0] if analysis.trace.geometries else None
    return {"weights": bundle.weights, "architecture": bundle.architecture, "resolution": analysis.resolution,
            **asdict(settings), "geometry": asdict(geometry) if geometry else None,
            "top_classes": analysis.trace.top_classes(5)}


def heading_of(analysis: Analysis, bundle: ModelBundle, title: str = "") -> Heading:
    """A figure's heading: ``title``, and the image, model, weights and prediction, with the caution stamp."""
    context = (f"{analysis.name} · {bundle.architecture}, weights {bundle.weights} · "
               f"{help_texts.prediction_line(analysis.trace, bundle)}")
    return Heading(title or analysis.name, context, help_texts.caution_stamp(analysis.trace, bundle))


def exhibits(analysis: Analysis, bundle: ModelBundle, block: trace_maths.BlockRef, settings: Settings,
             names: Collection[str] | None = None) -> list[Exhibit]:
    """The views the catalogue marks as exported (or those of ``names``, exported or only downloadable from the
    page), headed, in the catalogue's order; each tab's views drawn once, and only where one of them is asked
    for."""
    style, token, fusion = settings.style, settings.token, settings.fusion
    detail = cache(lambda: render.token_detail(analysis, block, fusion, style, token))
    pixels = cache(lambda: render.pixel_view(analysis, block, fusion, style, settings.point))
    stages = cache(lambda: render.stages_view(analysis, block, fusion, style, settings.stage_token))
    x, y = settings.point or render.centre_of(analysis)
    stage_subject = f"token {settings.stage_token}" if settings.stage_token is not None else "mean over tokens"
    drawn: dict[str, tuple[str | Callable[[], str], Callable[[], figure_files.Content], int]] = {
        "token_gallery": (f"Every token's map at {block.label}",
                          lambda: render.token_gallery(analysis, block, fusion, style), GALLERY_COLUMNS),
        "token_image": (f"Token {token} at {block.label}", lambda: detail().picture, 1),
        "filmstrip": (f"Token {token} through every block", lambda: detail().filmstrip, SERIES_COLUMNS),
        "pixel_image": (f"The point read: pixel ({x:.0f}, {y:.0f}) of the picture", lambda: pixels().marked, 1),
        "pixel_reads": (f"What the pixel at ({x:.0f}, {y:.0f}) reads from each token at {block.label}",
                        lambda: pixels().reads_figure, 1),
        "ownership": (f"Ownership at {block.label}: each pixel coloured by the token it reads most",
                      lambda: pixels().ownership, 1),
        "stages": (f"The last block of each stage: {stage_subject}", lambda: stages().stages, SERIES_COLUMNS),
        "class_attention": ("Class attention: where the class token looks", lambda: stages().class_attention, 1),
        "semantic_self": (f"Semantic self-attention at {block.label}", lambda: stages().semantic_self_figure, 1),
        "merge_quadrants": ("Merge blocks: where attention goes", lambda: stages().merge_quadrants_figure, 1),
        # Not in the download, but downloadable from under their picture on the page.
        "pixel_owner": (lambda: f"The token the pixel at ({x:.0f}, {y:.0f}) reads most: token "
                                f"{render.top_tokens(pixels().reads)[0]} at {block.label}", lambda: pixels().owner_map, 1),
        "top_tokens": (f"The tokens the pixel at ({x:.0f}, {y:.0f}) reads most, at {block.label}",
                       lambda: pixels().top_tokens, render.TOP_TOKENS),
    }
    chosen = [view.name for view in catalogue.VIEWS if view.name in drawn and (
        view.name in names if names is not None else view.exported)]
    return [Exhibit(name, heading_of(analysis, bundle, title() if callable(title) else title), content(), columns)
            for name, (title, content, columns) in ((name, drawn[name]) for name in chosen)]


def explanation_exhibits(analysis: Analysis, bundle: ModelBundle, explanation: Explained) -> list[Exhibit]:
    """The latest explanation's picture (or its tokens) and plot, headed with the method and the class."""
    view = explanation.view
    heading = heading_of(analysis, bundle, explanation.title)
    shown: list[Exhibit] = [Exhibit("explain_image", heading, view.tokens if view.tokens is not None else view.picture,
                                    GALLERY_COLUMNS)]
    if view.figure is not None:
        shown.append(Exhibit("importance_plot", heading, view.figure))
    return shown


def latest_explained(explorer: Explorer, request: ViewRequest) -> Explained | None:
    """The latest explanation drawn for this image, in the request's style (None if none was made)."""
    latest = explorer.latest_explanation(request.key)
    if latest is None:
        return None
    (_, method_name, target, stage), result = latest
    method = METHODS[method_name]
    view = render.explanation_view(request.analysis, method, result, request.style, stage, target)
    return Explained(method.title, help_texts.explained_class(request.analysis.trace, target)[0], view)


TOUR_SLIDE = "tour_step_"


def settings_of(request: ViewRequest) -> Settings:
    return Settings(request.block.label, request.fusion, request.style.colormap, request.style.opacity, request.token,
                    request.point, request.style.scale, request.stage_token)


def figure_file(explorer: Explorer, key: str, name: str, file_format: str, asked: Mapping[str, str]) -> bytes:
    """One picture of the page as a file, for its download button: an exported view (``asked``: the page's
    selection), the latest explanation (``explain_image``, ``importance_plot``) or a tour step as a 16:9 slide
    (``tour_step_N``, PNG or PDF)."""
    point = asked.get("point")
    request = explorer.view_request(key, asked.get("block") or trace_maths.default_block(explorer.get(key).trace).label,
                                    asked.get("fusion", "mean"), asked.get("scale", render.DEFAULT_SCALE),
                                    asked.get("colormap", "inferno"), asked.get("opacity", render.DEFAULT_OPACITY),
                                    token=asked.get("token", 0), point=point.split(",") if point else None,
                                    stage_token=asked.get("stageToken"))
    if file_format not in figure_files.FILE_FORMATS:
        raise UserError(f"A figure is a PNG, SVG or PDF file, not {file_format!r}.")
    analysis, bundle = request.analysis, explorer.bundle
    if name.startswith(TOUR_SLIDE):
        steps = talk_of(analysis, bundle, request.style, explorer.atlas_citation())
        number = name[len(TOUR_SLIDE):]
        if not number.isdigit() or not 1 <= int(number) <= len(steps.steps):
            raise UserError(f"The tour has steps 1 to {len(steps.steps)}.")
        figure = deck.slide_figure(steps, int(number), steps.steps[int(number) - 1])
        return figure_files.saved(figure, file_format)
    if name in ("explain_image", "importance_plot"):
        explained = latest_explained(explorer, request)
        shown = [exhibit for exhibit in explanation_exhibits(analysis, bundle, explained) if exhibit.name == name] \
            if explained is not None else []
    else:
        shown = exhibits(analysis, bundle, request.block, settings_of(request), {name})
    if not shown:
        raise UserError(f"No figure named {name!r} to download for this image.")
    return figure_files.saved(figure_files.exhibit_figure(shown[0], analysis), file_format)


def talk_of(analysis: Analysis, bundle: ModelBundle, style: render.Style,
            cite: Callable[[str, int], str] | None = None) -> deck.Talk:
    return deck.Talk(analysis, render.tour(analysis, style, cite), heading_of(analysis, bundle),
                     deck.plain(help_texts.model_statement(bundle)))


def offline_html(exhibit: Exhibit) -> dict[str, bytes]:
    """A plot as a page that works offline: plotly.js inside it."""
    return {f"{exhibit.name}.html": exhibit.content.to_html(include_plotlyjs=True, full_html=True).encode()}


def export_files(analysis: Analysis, bundle: ModelBundle, block: trace_maths.BlockRef, settings: Settings,
                 parts: Parts = Parts(), explanation: Explained | None = None,
                 compared: Analysis | None = None, cite: Callable[[str, int], str] | None = None) -> dict[str, bytes]:
    """Every file of one image's export, by name: the views (PNG, and with ``parts.vectors`` SVG and PDF), the
    plots as offline HTML, the deck, the animations, the trace and the settings."""
    shown = exhibits(analysis, bundle, block, settings)
    if explanation is not None:
        shown += explanation_exhibits(analysis, bundle, explanation)
    formats = figure_files.FILE_FORMATS if parts.vectors else ("png",)
    jobs: list[Callable[[], dict[str, bytes]]] = [partial(figure_files.exhibit_files, exhibit, analysis, formats)
                                                  for exhibit in shown]
    jobs += [partial(offline_html, exhibit) for exhibit in shown if isinstance(exhibit.content, go.Figure)]
    if parts.deck:
        talks = [talk_of(analysis, bundle, settings.style, cite)]
        if compared is not None:
            talks.append(talk_of(compared, bundle, settings.style, cite))
        jobs += [lambda: {"deck.html": deck.deck_html(talks).encode()}, lambda: {"deck.pdf": deck.deck_pdf(talks)}]
    if parts.animations:
        jobs.append(partial(animation.animation_files, analysis, settings.style, settings.fusion, settings.token,
                            heading_of(analysis, bundle)))
    # The files are drawn side by side: encoding and compressing release the interpreter, and an export of
    # everything stays within seconds.
    with ThreadPoolExecutor(max_workers=EXPORT_THREADS) as pool:
        files: dict[str, bytes] = {}
        for made in pool.map(lambda job: job(), jobs):
            files |= made
    record = settings_record(analysis, bundle, settings) | {"explanation": explanation.method if explanation else None}
    files["settings.json"] = json.dumps(record, indent=2).encode()
    return files


def write_bundle(analysis: Analysis, bundle: ModelBundle, block: trace_maths.BlockRef, settings: Settings,
                 folder: Path, explanation: Explained | None = None,
                 compared: Analysis | None = None, cite: Callable[[str, int], str] | None = None) -> Path:
    """The page's single download: every file of the export (:func:`export_files`) and the trace, zipped."""
    trace_path = folder / "trace.safetensors"
    analysis.trace.save(trace_path)
    archive = folder / "dualvit_explorer_export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as bundle_file:
        for name, data in export_files(analysis, bundle, block, settings, Parts(), explanation, compared,
                                       cite).items():
            bundle_file.writestr(name, data, compress_type=zipfile.ZIP_STORED if name.endswith(COMPRESSED) else None)
        bundle_file.write(trace_path, "trace.safetensors", compress_type=zipfile.ZIP_STORED)
    trace_path.unlink()
    return archive


def export_image(explorer: Explorer, image_path: Path, out: Path, resolution: str, block_label: str | None,
                 settings: Settings, parts: Parts) -> Path:
    """One image's files in ``out/<its stem>/``; a bad image or setting is a UserError."""
    loaded = open_image(image_path)
    key = explorer.analyse(loaded.image, resolution, tuple(loaded.notes), name=loaded.name)
    analysis = explorer.get(key)
    label = block_label or trace_maths.default_block(analysis.trace).label  # the block the page opens on
    request = explorer.view_request(key, label, settings.fusion, settings.scale, settings.colormap,
                                    settings.opacity, token=settings.token, stage_token=settings.stage_token)
    settings = replace(settings, block=request.block.label)
    folder = out / image_path.stem
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in export_files(analysis, explorer.bundle, request.block, settings, parts,
                                   cite=explorer.atlas_citation()).items():
        (folder / name).write_bytes(data)
    analysis.trace.save(folder / "trace.safetensors")
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
    parser.add_argument("--stage-token", type=int, help="the token of the stages figure (default: the mean over tokens)")
    parser.add_argument("--fusion", default="mean")
    parser.add_argument("--colormap", default="inferno", choices=list(overlay.COLORMAPS))
    parser.add_argument("--opacity", type=float, default=render.DEFAULT_OPACITY)
    parser.add_argument("--scale", default=render.DEFAULT_SCALE, choices=list(render.SCALES))
    parser.add_argument("--svg", action="store_true", help="every view also as SVG and PDF (vector)")
    parser.add_argument("--deck", action="store_true", help="the tour as an offline HTML deck and a PDF of slides")
    parser.add_argument("--animations", action="store_true",
                        help="the token through every block and the mean through the stages, as GIF and MP4")
    arguments = parser.parse_args(argv)
    try:
        explorer = Explorer(open_model(arguments.weights, arguments.model, device="auto"), atlas=open_atlas(None))
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = Settings("", arguments.fusion, arguments.colormap, arguments.opacity, arguments.token,
                        scale=arguments.scale, stage_token=arguments.stage_token)
    parts = Parts(vectors=arguments.svg, deck=arguments.deck, animations=arguments.animations)
    failures = 0
    # A folder stands for every image below it.
    paths = [found for given in arguments.images for found in (images_in(given) if given.is_dir() else [given])]
    for image_path in paths:
        try:
            folder = export_image(explorer, image_path, arguments.out, arguments.resolution, arguments.block, settings, parts)
            print(f"{image_path}: wrote {folder}")
        except UserError as error:
            failures += 1
            print(f"{image_path}: skipped: {error}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
