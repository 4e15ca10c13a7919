"""The page's answers: each handler takes one checked request and returns its views' values by name.

The names are those of :mod:`viewer.catalogue` (views) and of the page's controls; ``viewer.ui`` wires
them to components. Errors are answered in :func:`answering`: a user's mistake as its message, anything
else as a bug, logged with its traceback.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlencode

import gradio as gr

from analysis import trace_maths
from viewer import atlas_view, help_texts, markup, render
from viewer.errors import UserError
from viewer.export import TOUR_SLIDE, latest_explained, settings_of, write_bundle
from viewer.figure_files import FILE_FORMATS
from viewer.live import FIGURES, data_url
from viewer.requests import (RESOLUTIONS, AnalyseRequest, AtlasRequest, ExplainRequest, ExportRequest, TourRequest,
                             ViewRequest)
from viewer.service import Explorer

log = logging.getLogger(__name__)
INTERNAL_ERROR = ("Internal error: the explorer failed on this request. This is a fault of the explorer, not of "
                  "what you sent; it was written to the server's log.")

EXPORTS = Path(tempfile.gettempdir()) / "dualvit-explorer-exports"
EXPORT_LIFETIME_SECONDS = 3600


@contextmanager
def answering() -> Iterator[None]:
    """A user's mistake reaches the page as its message; any other failure as :data:`INTERNAL_ERROR`, with its
    traceback in the log."""
    try:
        yield
    except UserError as error:
        raise gr.Error(str(error), print_exception=False) from None
    except gr.Error:
        raise
    except Exception:
        log.exception("internal error while answering a request")
        raise gr.Error(INTERNAL_ERROR, print_exception=False) from None


def tour_picture(step: int) -> str:
    return f"tour_picture_{step}"


def tour_text(step: int) -> str:
    return f"tour_text_{step}"


TOUR_NAMES = [tour_picture(step) for step in range(render.TOUR_STEPS)] + \
             [tour_text(step) for step in range(render.TOUR_STEPS)]


# On the page an ownership picture names the region under the pointer (a deck's picture cannot).
OWNER_HINT = " Hover over a region, or tap it, to name its token."


def figure_url(key: str, name: str, style: render.Style) -> str:
    """Where the page downloads one of its pictures as a figure (relative to the page; no format yet)."""
    query = urlencode({"scale": style.scale, "colormap": style.colormap, "opacity": style.opacity})
    return f"{FIGURES}/{key}/{name}.{{format}}?{query}"


def prune_exports() -> None:
    """Delete downloads older than an hour, so a long-running Space does not fill its disk."""
    cutoff = time.time() - EXPORT_LIFETIME_SECONDS
    for folder in EXPORTS.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


class Handlers:
    """Handlers bound to one Explorer: a request in, the values of the views it draws out, by name."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer

    def analysed(self, request: AnalyseRequest, progress: Callable[..., None], what: str) -> tuple[str, Any, str]:
        """The request's image analysed, its maps set building for the browser: (key, trace, what was done)."""
        progress(0.3, desc=f"running Dual-ViT on {what} and capturing every attention map")
        loaded = request.image
        key = self.explorer.analyse(loaded.image, request.resolution, tuple(loaded.notes), session=request.session,
                                   name=loaded.name)
        self.explorer.prepare_payload(key)
        trace = self.explorer.get(key).trace
        said = f"Analysed at {RESOLUTIONS[request.resolution]}: {trace.num_semantic} semantic tokens " \
               f"({trace.semantic_grid.height}×{trace.semantic_grid.width} home grid)."
        if loaded.notes:
            said += " Note: " + "; ".join(loaded.notes) + "."
        return key, trace, said

    def analyse(self, request: AnalyseRequest, progress: Callable[..., None]) -> dict[str, Any]:
        key, trace, said = self.analysed(request, progress, "the image")
        top_classes = trace.top_classes(5)
        bundle = self.explorer.bundle
        return {
            "key": key,
            "prediction": {"heading": help_texts.prediction_heading(trace, bundle),
                           # the classes' own names: the ones the explanation API accepts
                           "confidences": dict(top_classes)},
            "verdict": help_texts.prediction_verdict(trace, bundle),
            "status": f"{said} {help_texts.opening_said(trace, trace_maths.default_block(trace))}",
            "target_class": gr.update(choices=[name for name, _ in top_classes], value=top_classes[0][0]),
            # The browser fetches the analysis's maps and draws the live views from them.
            "controls": {"load": {"key": key, "url": data_url(key)}},
        }

    def analyse_second(self, request: AnalyseRequest, progress: Callable[..., None]) -> dict[str, Any]:
        """A second image for the Compare tab (or the first again, at another resolution)."""
        key, _, said = self.analysed(request, progress, "the second image")
        return {"live_compare": {"load": {"key": key, "url": data_url(key)}}, "second_status": f"Second image: {said}",
                "second_key": key}

    def token_gallery(self, request: ViewRequest) -> dict[str, Any]:
        tiles = render.token_gallery(request.analysis, request.block, request.fusion, request.style)
        return {"token_gallery": markup.tiles_html(tiles, selectable=True,
                                                   label=f"every token's map, {request.block.label}")}

    def token_detail(self, request: ViewRequest) -> dict[str, Any]:
        block, token = request.block, request.token
        detail = render.token_detail(request.analysis, block, request.fusion, request.style, token)
        return {"token_image": markup.picture_html(detail.picture, f"token {token}, {block.label}"),
                "token_stats": render.statistics_markdown(token, block, detail.statistics),
                "filmstrip": markup.tiles_html(detail.filmstrip, wide=True)}

    def pixel_view(self, request: ViewRequest) -> dict[str, Any]:
        view = render.pixel_view(request.analysis, request.block, request.fusion, request.style, request.point)
        owner = render.top_tokens(view.reads)[0]
        return {"pixel_image": markup.image_uri(view.marked),
                "pixel_owner": markup.picture_html(view.owner_map, f"the map of token {owner}"),
                "pixel_reads": view.reads_figure,
                "top_tokens": markup.tiles_html(view.top_tokens, selectable=True, wide=True),
                "ownership": markup.picture_html(view.ownership, "ownership map", owners=view.owners)}

    def stages_view(self, request: ViewRequest) -> dict[str, Any]:
        view = render.stages_view(request.analysis, request.block, request.fusion, request.style, request.stage_token)
        return {"stages": markup.tiles_html(view.stages, wide=True),
                "class_attention": markup.picture_html(view.class_attention, "class attention"),
                "semantic_self": view.semantic_self_figure, "merge_quadrants": view.merge_quadrants_figure}

    def tour(self, request: TourRequest) -> dict[str, Any]:
        steps = render.tour(request.analysis, request.style, self.explorer.atlas_citation())
        pictures = {tour_picture(index): markup.picture_html(step.picture, step.title, owners=step.owners)
                    + markup.download_links(figure_url(request.key, f"{TOUR_SLIDE}{index + 1}", request.style),
                                            ("png", "pdf"), "Download this step as a slide:")
                    for index, step in enumerate(steps)}
        texts = {tour_text(index): f"### {index + 1}. {step.title}\n{step.text}"
                 + (OWNER_HINT if step.owners is not None else "") for index, step in enumerate(steps)}
        return pictures | texts

    def atlas(self, request: AtlasRequest) -> dict[str, Any]:
        atlas = self.explorer.atlas
        view = atlas_view.entry(atlas, request.block, request.token, request.style)
        said = view.said
        if not atlas.describes(self.explorer.weights_sha256):
            said = (f"⚠️ This atlas was built with other weights ({atlas.meta['weights']}, "
                    f"{atlas.meta['architecture']}) than the page's: it says what *those* tokens do.\n\n{said}")
        return {"atlas_block": request.block, "atlas_token": request.token, "atlas_said": said,
                "atlas_examples": markup.tiles_html(view.examples, wide=True,
                                                    label=f"token {request.token}'s examples, {request.block}"),
                "atlas_lifts": view.lifts, "atlas_classes": view.classes,
                "atlas_blocks_said": atlas_view.summary_said(atlas), "atlas_blocks": atlas_view.summary_figure(atlas)}

    def explain(self, request: ExplainRequest, progress: Callable[..., None]) -> dict[str, Any]:
        method = request.method
        progress(0.0, desc=f"{method.title}: starting")

        def on_pass(done: int, expected: int) -> None:
            # Each pass's share is reported as it starts; the last one ends at the full bar.
            progress(min(done - 1, expected) / max(expected, 1),
                     desc=f"{method.title}: model pass {done} of {expected}")

        result = self.explorer.explain(request, on_pass=on_pass)
        view = render.explanation_view(request.analysis, method, result, request.style, request.stage, request.target)
        links = markup.download_links(figure_url(request.key, "explain_image", request.style), FILE_FORMATS,
                                      "Download as a figure:") if view.picture.image is not None or view.tokens else ""
        return {"explain_image": markup.picture_html(view.picture, method.title) + links,
                "explain_text": method.help,
                "important_tokens": markup.tiles_html(view.tokens, selectable=True, wide=True) if view.tokens else "",
                "importance_plot": view.figure}

    def export(self, request: ExportRequest) -> dict[str, Any]:
        view = request.view
        EXPORTS.mkdir(parents=True, exist_ok=True)
        prune_exports()
        folder = Path(tempfile.mkdtemp(dir=EXPORTS))
        archive = write_bundle(view.analysis, self.explorer.bundle, view.block, settings_of(view), folder,
                               latest_explained(self.explorer, view), request.compared, self.explorer.atlas_citation())
        return {"export_file": str(archive)}
