"""The Gradio page: wiring only. Maths lives in viewer.views, drawing in viewer.overlay/figures."""
from __future__ import annotations

import base64
import json
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
from PIL import Image

from model.bundle import ASSETS
from viewer import figures, overlay, views
from viewer.explanations import EXPLANATIONS
from viewer.inputs import ImageRejected, open_image
from viewer.service import RESOLUTIONS, Analysis, Explorer

EXAMPLES = ASSETS / "examples"
THUMBNAIL_SIDE = 160
TOP_TOKENS = 4
MEAN_OF_TOKENS = "mean over tokens"


class UploadedImage(gr.Image):
    """gr.Image that hands the upload over undecoded: decoding and its error messages are ours."""

    is_template = True  # rendered by the ordinary Image front end

    def preprocess(self, payload):  # noqa: D102
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return base64.b64decode(payload.url.split(",", 1)[1])
        return payload.path


def explanation(view: str) -> gr.Markdown:
    return gr.Markdown(EXPLANATIONS[view], elem_classes=["explanation"])


def user_error(error: Exception) -> gr.Error:
    return gr.Error(str(error), print_exception=False)


class Page:
    """Handlers bound to one Explorer; each turns UI values into view-function calls."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer

    # -- helpers -----------------------------------------------------------------------------
    def analysis(self, key: str | None) -> Analysis:
        try:
            return self.explorer.get(key)
        except LookupError as error:
            raise user_error(error) from None

    @staticmethod
    def block(analysis: Analysis, label: str) -> views.BlockRef:
        for block in views.blocks(analysis.trace):
            if block.label == label:
                return block
        raise gr.Error(f"Unknown block {label!r}; choose one of: "
                       + ", ".join(b.label for b in views.blocks(analysis.trace)), print_exception=False)

    @staticmethod
    def token(analysis: Analysis, token: Any) -> int:
        count = analysis.trace.num_semantic
        try:
            index = int(token)
        except (TypeError, ValueError):
            raise gr.Error(f"Token must be a whole number from 0 to {count - 1}.", print_exception=False) from None
        if not 0 <= index < count:
            raise gr.Error(f"Token {index} does not exist: this image has tokens 0 to {count - 1}.",
                           print_exception=False)
        return index

    @staticmethod
    def thumbnail(analysis: Analysis) -> tuple[np.ndarray, Any]:
        image = Image.fromarray(analysis.display)
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        return np.asarray(image), analysis.geometry.for_display(image.size)

    def draw(self, analysis: Analysis, values: np.ndarray, colormap: str, opacity: float,
             vrange: tuple[float, float] | None = None, small: bool = False) -> np.ndarray:
        image, geometry = self.thumbnail(analysis) if small else (analysis.display, analysis.geometry)
        try:
            return overlay.overlay(image, values, geometry, colormap=colormap, opacity=float(opacity), vrange=vrange)
        except ValueError as error:
            raise user_error(error) from None

    # -- analyse -----------------------------------------------------------------------------
    def analyse(self, upload: Any, resolution: str, progress: gr.Progress = gr.Progress()):
        if upload is None:
            raise gr.Error("Add an image first: upload, paste, use the webcam or pick an example.",
                           print_exception=False)
        progress(0.1, desc="reading the image")
        try:
            loaded = open_image(upload)
        except ImageRejected as error:
            raise user_error(error) from None
        progress(0.3, desc="running Dual-ViT and capturing every attention map")
        try:
            key = self.explorer.analyse(loaded.image, resolution, tuple(loaded.notes))
        except ValueError as error:
            raise user_error(error) from None
        analysis = self.explorer.get(key)
        trace = analysis.trace
        labels = [block.label for block in views.blocks(trace)]
        # Every head of the widest stage; a block with fewer heads says so when asked for a missing one.
        fusions = max((views.fusion_choices(trace, block.stage) for block in views.blocks(trace)), key=len)
        status = f"Analysed at {RESOLUTIONS[resolution]}: {trace.num_semantic} semantic tokens " \
                 f"({trace.semantic_grid.height}×{trace.semantic_grid.width} home grid)."
        if loaded.notes:
            status += " Note: " + "; ".join(loaded.notes) + "."
        return (
            key,
            dict(trace.top_classes(5)),
            status,
            gr.update(choices=labels, value=labels[0]),
            gr.update(choices=fusions, value="mean"),
            gr.update(maximum=trace.num_semantic - 1, value=0),
        )

    # -- semantic tokens ---------------------------------------------------------------------
    def token_gallery(self, key, block_label, fusion, colormap, opacity):
        analysis = self.analysis(key)
        block = self.block(analysis, block_label)
        maps = self.fused(views.token_maps, analysis.trace, block.stage, block.block, fusion)
        vrange = views.shared_range(list(maps))
        return [(self.draw(analysis, token_map, colormap, opacity, vrange, small=True), f"token {index}")
                for index, token_map in enumerate(maps)]

    def token_detail(self, key, block_label, fusion, colormap, opacity, token):
        analysis = self.analysis(key)
        block = self.block(analysis, block_label)
        token = self.token(analysis, token)
        trace = analysis.trace
        token_map = self.fused(views.token_maps, trace, block.stage, block.block, fusion)[token]
        large = overlay.home_box(self.draw(analysis, token_map, colormap, opacity), trace, token, analysis.geometry)
        stats = views.token_statistics(trace, token_map, token)
        strip = self.fused(views.token_filmstrip, trace, token, fusion)
        vrange = views.shared_range([values for _, values in strip])
        film = [(self.draw(analysis, values, colormap, opacity, vrange, small=True), ref.label) for ref, values in strip]
        return large, statistics_markdown(token, block, stats), film

    # -- pixels ------------------------------------------------------------------------------
    def pixel_view(self, key, block_label, fusion, colormap, opacity, point):
        analysis = self.analysis(key)
        block = self.block(analysis, block_label)
        trace = analysis.trace
        point = point or centre_of(analysis)
        model_point = analysis.geometry.original_to_model(np.array(point, dtype=float))
        reads = self.fused(views.pixel_reads, trace, block.stage, block.block, tuple(model_point), fusion)
        marked = overlay.mark_point(analysis.display, tuple(point))
        top = np.argsort(-reads)[:TOP_TOKENS]
        maps = self.fused(views.token_maps, trace, block.stage, block.block, fusion)
        vrange = views.shared_range([maps[index] for index in top])
        top_maps = [(self.draw(analysis, maps[index], colormap, opacity, vrange, small=True),
                     f"token {index}: {reads[index]:.2f}") for index in top]
        owner, confidence = self.fused(views.ownership, trace, block.stage, block.block, fusion)
        ownership_image = overlay.ownership_overlay(analysis.display, owner, confidence, analysis.geometry,
                                                    opacity=float(opacity))
        return marked, figures.pixel_reads_figure(reads, top_k=TOP_TOKENS), top_maps, ownership_image

    # -- stages ------------------------------------------------------------------------------
    def stages_view(self, key, block_label, fusion, colormap, opacity, token_choice):
        analysis = self.analysis(key)
        trace = analysis.trace
        token = None if token_choice in (None, "", MEAN_OF_TOKENS) else self.token(analysis, token_choice)
        overview = self.fused(views.stage_overview, trace, token, fusion)
        vrange = views.shared_range([values for _, values in overview])
        stages = [(self.draw(analysis, values, colormap, opacity, vrange, small=True), ref.label)
                  for ref, values in overview]
        class_fusion = fusion if fusion in views.FUSIONS else "mean"  # the class block's heads are its own
        class_map = self.draw(analysis, self.fused(views.class_attention_map, trace, class_fusion), colormap, opacity)
        block = self.block(analysis, block_label)
        dual_block = block if block.kind == "dual" else views.blocks(trace)[0]
        matrix = self.fused(views.semantic_self_matrix, trace, dual_block.stage, dual_block.block,
                            views.fusion_in(trace, dual_block, fusion))
        self_figure = figures.semantic_self_figure(matrix, f"semantic self-attention, {dual_block.label}")
        quadrants = figures.merge_quadrants_figure(views.merge_quadrants(trace))
        return stages, class_map, self_figure, quadrants

    # -- export ------------------------------------------------------------------------------
    def export(self, key, block_label, fusion, colormap, opacity, token, point):
        analysis = self.analysis(key)
        large, _, _ = self.token_detail(key, block_label, fusion, colormap, opacity, token)
        marked, _, _, ownership_image = self.pixel_view(key, block_label, fusion, colormap, opacity, point)
        stages, class_map, _, _ = self.stages_view(key, block_label, fusion, colormap, opacity, MEAN_OF_TOKENS)
        sheet = overlay.tile([large, ownership_image, class_map] + [image for image, _ in stages], columns=4,
                             labels=["token", "ownership", "class attention"] + [label for _, label in stages],
                             size=320)
        settings = {"weights": self.explorer.bundle.weights, "architecture": self.explorer.bundle.architecture,
                    "resolution": analysis.resolution, "block": block_label, "fusion": fusion,
                    "colormap": colormap, "opacity": float(opacity), "token": int(token),
                    "point": list(point) if point else None,
                    "geometry": asdict(analysis.trace.geometries[0]) if analysis.trace.geometries else None}
        folder = Path(tempfile.mkdtemp(prefix="dualvit-export-"))
        archive = folder / "dualvit_explorer_export.zip"
        trace_path = folder / "trace.safetensors"
        analysis.trace.save(trace_path)
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            bundle.writestr("views.png", cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))[1].tobytes())
            bundle.write(trace_path, "trace.safetensors")
            bundle.writestr("settings.json", json.dumps(settings, indent=2))
        return str(archive)

    @staticmethod
    def fused(function, *arguments):
        """Call a view function, turning a bad UI value (unknown fusion, missing map) into a message."""
        try:
            return function(*arguments)
        except (KeyError, ValueError, IndexError) as error:
            raise user_error(error) from None


def centre_of(analysis: Analysis) -> tuple[float, float]:
    height, width = analysis.display.shape[:2]
    return width / 2, height / 2


def statistics_markdown(token: int, block: views.BlockRef, stats: views.TokenStatistics) -> str:
    return (f"**Token {token}**, {block.label}  \n"
            f"home cell (row, column): {stats.home} · peak {stats.peak:.3f} at cell {stats.peak_cell}  \n"
            f"entropy {stats.entropy:.2f} nats ({stats.normalised_entropy:.0%} of uniform) · "
            f"half of its mass lies on {stats.area_50:.0%} of the pixels · total mass on pixels {stats.mass:.2f}")


CSS = ".explanation p {color: var(--body-text-color-subdued); font-size: 0.95em;}"


def build_demo(explorer: Explorer) -> gr.Blocks:
    page = Page(explorer)
    bundle = explorer.bundle
    examples = sorted(str(path) for path in EXAMPLES.glob("*") if path.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with gr.Blocks(title="Dual-ViT Explorer") as demo:
        gr.Markdown("# Dual-ViT Explorer\n"
                    "What the global **semantic tokens** of the Dual Vision Transformer look at, how every pixel "
                    "reads from them, and how this changes block by block and stage by stage.")
        gr.Markdown(f"Weights: **{bundle.weights}** ({bundle.architecture}), trained on: {bundle.domain}.",
                    elem_id="weights-info")
        key = gr.State(None)
        point = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1):
                upload = UploadedImage(label="Image", type="filepath", sources=["upload", "clipboard", "webcam"],
                                       elem_id="upload")
                resolution = gr.Radio(list(RESOLUTIONS), value="224", label="Input resolution",
                                      info=" · ".join(f"{k}: {v}" for k, v in RESOLUTIONS.items()))
                run = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples(examples, inputs=upload, label="Examples")
            with gr.Column(scale=1):
                prediction = gr.Label(num_top_classes=5, label="Prediction", elem_id="prediction")
                explanation("prediction")
                status = gr.Markdown(elem_id="status")
        with gr.Row():
            # Custom values reach our own check, which names the blocks this image has.
            block = gr.Dropdown(choices=[], label="Block", elem_id="block", allow_custom_value=True)
            fusion = gr.Dropdown(choices=list(views.FUSIONS), value="mean", label="Heads")
            colormap = gr.Dropdown(choices=list(overlay.COLORMAPS), value="inferno", label="Colormap")
            opacity = gr.Slider(0, 1, value=0.6, step=0.05, label="Opacity")
        explanation("overlay_controls")
        with gr.Tabs():
            with gr.Tab("Semantic tokens", id="tokens"):
                explanation("token_gallery")
                gallery = gr.Gallery(label="Every token's attention over the pixels", columns=8, height="auto",
                                     allow_preview=False, elem_id="token-gallery")
                token = gr.Slider(0, 63, value=0, step=1, label="Token", elem_id="token")
                with gr.Row():
                    with gr.Column():
                        token_image = gr.Image(label="Selected token", interactive=False, elem_id="token-image")
                        explanation("token_detail")
                    with gr.Column():
                        token_stats = gr.Markdown(elem_id="token-stats")
                filmstrip = gr.Gallery(label="The token through every block", columns=6, height="auto",
                                       allow_preview=False, elem_id="filmstrip")
                explanation("filmstrip")
            with gr.Tab("Pixels", id="pixels"):
                explanation("pixel_reads")
                with gr.Row():
                    pixel_image = gr.Image(label="Click a point", interactive=False, elem_id="pixel-image")
                    reads_plot = gr.Plot(label="What this pixel reads from each token", elem_id="pixel-reads")
                top_tokens = gr.Gallery(label="Its top tokens", columns=TOP_TOKENS, height=220, allow_preview=False,
                                        object_fit="contain", elem_id="top-tokens")
                ownership_image = gr.Image(label="Ownership", interactive=False, elem_id="ownership")
                explanation("ownership")
            with gr.Tab("Stages", id="stages"):
                explanation("stages")
                stage_token = gr.Dropdown(choices=[MEAN_OF_TOKENS] + [str(i) for i in range(64)], value=MEAN_OF_TOKENS,
                                          label="Token (or the mean over tokens)", allow_custom_value=True)
                stages = gr.Gallery(label="Last block of each stage, one colour scale", columns=4, height="auto",
                                    allow_preview=False, elem_id="stages")
                with gr.Row():
                    with gr.Column():
                        class_image = gr.Image(label="Class attention", interactive=False)
                        explanation("class_attention")
                    with gr.Column():
                        self_plot = gr.Plot(label="Semantic self-attention")
                        explanation("semantic_self")
                quadrant_plot = gr.Plot(label="Merge blocks: where attention goes")
                explanation("merge_quadrants")
            with gr.Tab("Export", id="export"):
                gr.Markdown("One download: a PNG of the current views, the trace (`.safetensors`, every attention "
                            "map) and the settings as JSON. `python -m viewer.export IMAGE --out DIR` renders the "
                            "standard figures without the page.")
                export_button = gr.Button("Prepare download")
                export_file = gr.File(label="Download", elem_id="export-file")

        view_inputs = [key, block, fusion, colormap, opacity]
        token_outputs = [token_image, token_stats, filmstrip]
        pixel_outputs = [pixel_image, reads_plot, top_tokens, ownership_image]
        stage_outputs = [stages, class_image, self_plot, quadrant_plot]

        def redraw_views(event, named: bool = False):
            """Chain every view after ``event``; ``named`` gives them API names (once per page)."""
            def name(endpoint: str):
                return endpoint if named else False
            return (event.then(page.token_gallery, view_inputs, gallery, api_name=name("token_gallery"))
                    .then(page.token_detail, view_inputs + [token], token_outputs, api_name=name("token_detail"))
                    .then(page.pixel_view, view_inputs + [point], pixel_outputs, api_name=name("pixel_view"))
                    .then(page.stages_view, view_inputs + [stage_token], stage_outputs, api_name=name("stages_view")))

        analysed = run.click(page.analyse, [upload, resolution], [key, prediction, status, block, fusion, token],
                             api_name="analyse", concurrency_limit=2)
        redraw_views(analysed.success(lambda: None, None, point, api_name=False), named=True)
        controls_changed = gr.on([block.input, fusion.input, colormap.input, opacity.release], lambda: None,
                                 None, None, api_name=False)
        redraw_views(controls_changed)
        token.release(page.token_detail, view_inputs + [token], token_outputs, api_name=False)
        gallery.select(select_token, None, token, api_name=False).then(
            page.token_detail, view_inputs + [token], token_outputs, api_name=False)
        pixel_image.select(select_point, None, point, api_name=False).then(
            page.pixel_view, view_inputs + [point], pixel_outputs, api_name=False)
        stage_token.input(page.stages_view, view_inputs + [stage_token], stage_outputs, api_name=False)
        export_button.click(page.export, view_inputs + [token, point], export_file, api_name="export")
    return demo


def select_token(event: gr.SelectData) -> int:
    return int(event.index)


def select_point(event: gr.SelectData) -> tuple[float, float]:
    x, y = event.index
    return float(x), float(y)
