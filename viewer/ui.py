"""The Gradio page: wiring only. Maths lives in viewer.views, drawing in viewer.overlay/figures."""
from __future__ import annotations

import base64
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr

from model.bundle import ASSETS
from viewer import overlay, render, views
from viewer.explanations import EXPLANATIONS
from viewer.export import Settings, write_bundle
from viewer.inputs import ImageRejected, open_image
from viewer.service import EXPLANATION_METHODS, RESOLUTIONS, Analysis, Explorer

EXAMPLES = ASSETS / "examples"
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


EXPORTS = Path(tempfile.gettempdir()) / "dualvit-explorer-exports"
EXPORT_LIFETIME_SECONDS = 3600


def prune_exports() -> None:
    """Delete downloads older than an hour, so a long-running Space does not fill its disk."""
    cutoff = time.time() - EXPORT_LIFETIME_SECONDS
    for folder in EXPORTS.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def explanation(view: str) -> gr.Markdown:
    return gr.Markdown(EXPLANATIONS[view], elem_classes=["explanation"])


def user_error(error: Exception) -> gr.Error:
    return gr.Error(str(error), print_exception=False)


class Page:
    """Handlers bound to one Explorer: UI values in, rendered views out."""

    def __init__(self, explorer: Explorer):
        self.explorer = explorer

    # -- turning UI values into arguments ----------------------------------------------------
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
    def guarded(function, *arguments):
        """Call a render function, turning a bad UI value (missing head, colormap...) into a message."""
        try:
            return function(*arguments)
        except (KeyError, ValueError, IndexError) as error:
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
        trace = self.explorer.get(key).trace
        labels = [block.label for block in views.blocks(trace)]
        # Every head of the widest stage; a block with fewer heads says so when asked for a missing one.
        fusions = max((views.fusion_choices(trace, block.stage) for block in views.blocks(trace)), key=len)
        status = f"Analysed at {RESOLUTIONS[resolution]}: {trace.num_semantic} semantic tokens " \
                 f"({trace.semantic_grid.height}×{trace.semantic_grid.width} home grid)."
        if loaded.notes:
            status += " Note: " + "; ".join(loaded.notes) + "."
        top_classes = trace.top_classes(5)
        return (
            key,
            dict(top_classes),
            status,
            gr.update(choices=labels, value=labels[0]),
            gr.update(choices=fusions, value="mean"),
            gr.update(maximum=trace.num_semantic - 1, value=0),
            gr.update(choices=[name for name, _ in top_classes], value=top_classes[0][0]),
        )

    # -- views -------------------------------------------------------------------------------
    def token_gallery(self, key, block_label, fusion, colormap, opacity):
        analysis = self.analysis(key)
        return self.guarded(render.token_gallery, analysis, self.block(analysis, block_label), fusion,
                           render.Style(colormap, opacity))

    def token_detail(self, key, block_label, fusion, colormap, opacity, token):
        analysis = self.analysis(key)
        block, token = self.block(analysis, block_label), self.token(analysis, token)
        detail = self.guarded(render.token_detail, analysis, block, fusion, render.Style(colormap, opacity), token)
        return detail.image, render.statistics_markdown(token, block, detail.statistics), detail.filmstrip

    def pixel_view(self, key, block_label, fusion, colormap, opacity, point):
        analysis = self.analysis(key)
        view = self.guarded(render.pixel_view, analysis, self.block(analysis, block_label), fusion,
                           render.Style(colormap, opacity), point)
        return view.marked, view.reads_figure, view.top_tokens, view.ownership

    def stages_view(self, key, block_label, fusion, colormap, opacity, token_choice):
        analysis = self.analysis(key)
        token = None if token_choice in (None, "", MEAN_OF_TOKENS) else self.token(analysis, token_choice)
        view = self.guarded(render.stages_view, analysis, self.block(analysis, block_label), fusion,
                           render.Style(colormap, opacity), token)
        return view.stages, view.class_attention, view.semantic_self_figure, view.merge_quadrants_figure

    def explain(self, key, method, class_name, stage, colormap, opacity, progress: gr.Progress = gr.Progress()):
        analysis = self.analysis(key)
        class_names = self.explorer.bundle.class_names
        if class_name not in class_names:
            raise gr.Error(f"Unknown class {class_name!r} for these weights.", print_exception=False)
        progress(0.2, desc=f"computing: {EXPLANATION_METHODS.get(method, method)}")
        try:
            result = self.explorer.explain(key, method, class_names.index(class_name), int(stage))
        except (KeyError, ValueError) as error:
            raise user_error(error) from None
        view = self.guarded(render.explanation_view, analysis, method, result, render.Style(colormap, opacity),
                           int(stage))
        return view.image, EXPLANATIONS[f"explain_{method}"], view.tokens, view.figure

    def export(self, key, block_label, fusion, colormap, opacity, token, point):
        analysis = self.analysis(key)
        block, token = self.block(analysis, block_label), self.token(analysis, token)
        settings = Settings(block_label, fusion, colormap, float(opacity), token, tuple(point) if point else None)
        EXPORTS.mkdir(parents=True, exist_ok=True)
        prune_exports()
        folder = Path(tempfile.mkdtemp(dir=EXPORTS))
        return str(self.guarded(write_bundle, analysis, self.explorer.bundle, block, settings, folder))


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
                top_tokens = gr.Gallery(label="Its top tokens", columns=render.TOP_TOKENS, height=220, allow_preview=False,
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
            with gr.Tab("Explanations", id="explanations"):
                explanation("explanations")
                with gr.Row():
                    method = gr.Dropdown([(label, name) for name, label in EXPLANATION_METHODS.items()],
                                         value="grad_cam", label="Method", elem_id="explain-method")
                    target_class = gr.Dropdown(choices=[], label="Class to explain", elem_id="explain-class")
                    stage_choice = gr.Radio([1, 2, 3, 4], value=2, label="Stage (token importance)")
                    explain_button = gr.Button("Explain", variant="primary", elem_id="explain")
                with gr.Row():
                    explain_image = gr.Image(label="Attribution on the image", interactive=False,
                                             elem_id="explain-image")
                    explain_text = gr.Markdown(elem_id="explain-text")
                important_tokens = gr.Gallery(label="Most important semantic tokens (logit drop)", columns=8,
                                              height="auto", allow_preview=False, elem_id="important-tokens")
                importance_plot = gr.Plot(label="Token importance")
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

        analysed = run.click(page.analyse, [upload, resolution],
                             [key, prediction, status, block, fusion, token, target_class],
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
        explain_button.click(page.explain, [key, method, target_class, stage_choice, colormap, opacity],
                             [explain_image, explain_text, important_tokens, importance_plot], api_name="explain",
                             concurrency_limit=1)
        export_button.click(page.export, view_inputs + [token, point], export_file, api_name="export")
    return demo


def select_token(event: gr.SelectData) -> int:
    return int(event.index)


def select_point(event: gr.SelectData) -> tuple[float, float]:
    x, y = event.index
    return float(x), float(y)
