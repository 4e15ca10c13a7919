"""The Gradio page: wiring only. Maths lives in viewer.trace_maths, drawing in viewer.overlay/figures."""
from __future__ import annotations

import functools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import gradio as gr
from starlette.middleware import Middleware

from model.bundle import ASSETS
from viewer import catalogue, help_texts, markup, overlay, render, trace_maths
from viewer.components import CheckedSlider, PredictionLabel, TokenNumber, UploadedImage
from viewer.export import Settings, write_bundle
from viewer.help_texts import EXPLANATIONS
from viewer.http_guard import UploadGuard
from viewer.inputs import ImageRejected, open_image
from viewer.service import EXPLANATION_METHODS, RESOLUTIONS, Analysis, Explorer

EXAMPLES = ASSETS / "examples"
MEAN_OF_TOKENS = "mean over tokens"


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


def view_html(elem_id: str, js_on_load: str | None = None, **kwargs) -> gr.HTML:
    """A picture of the page: an HTML value holding its image(s) and colour key."""
    return gr.HTML(elem_id=elem_id, elem_classes=["view"], js_on_load=js_on_load, **kwargs)


def user_error(error: Exception) -> gr.Error:
    return gr.Error(str(error), print_exception=False)


TAB_TITLES = catalogue.TABS
CLASS_AGNOSTIC = {"dual_rollout"}  # methods whose map is the same whatever the class
STAGE_METHODS = {"token_importance"}  # methods that ask for a stage


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
    def block(analysis: Analysis, label: str) -> trace_maths.BlockRef:
        for block in trace_maths.blocks(analysis.trace):
            if block.label == label:
                return block
        raise gr.Error(f"Unknown block {label!r}; choose one of: "
                       + ", ".join(b.label for b in trace_maths.blocks(analysis.trace)), print_exception=False)

    @staticmethod
    def token(analysis: Analysis, token: Any) -> int:
        count = analysis.trace.num_semantic
        try:
            number = float(token)
        except (TypeError, ValueError):
            number = float("nan")
        if not number.is_integer():
            raise gr.Error(f"Token must be a whole number from 0 to {count - 1}.", print_exception=False)
        index = int(number)
        if not 0 <= index < count:
            raise gr.Error(f"Token {index} does not exist: this image has tokens 0 to {count - 1}.",
                           print_exception=False)
        return index

    @staticmethod
    def style(scale: str, colormap: str, opacity: float) -> render.Style:
        return render.Style(colormap, float(opacity), scale)

    @staticmethod
    def guarded(function, *arguments):
        """Call a render function, turning a bad UI value (missing head, colormap...) into a message."""
        try:
            return function(*arguments)
        except (KeyError, ValueError, IndexError) as error:
            raise user_error(error) from None

    @staticmethod
    def head_choices(analysis: Analysis, block: trace_maths.BlockRef, fusion: str | None):
        """Only the heads this block has; the current choice kept where the block has it."""
        choices = trace_maths.fusion_choices(analysis.trace, block.stage)
        return gr.update(choices=choices, value=fusion if fusion in choices else "mean")

    # -- analyse -----------------------------------------------------------------------------
    def analyse(self, upload: Any, resolution: str, request: gr.Request,
                progress: gr.Progress = gr.Progress()) -> dict[str, Any]:
        if upload is None:
            raise gr.Error("Add an image first: upload, paste, use the webcam or pick an example.",
                           print_exception=False)
        progress(0.1, desc="reading the image")
        try:
            loaded = open_image(upload, self.explorer.limits.max_pixels)
        except ImageRejected as error:
            raise user_error(error) from None
        progress(0.3, desc="running Dual-ViT and capturing every attention map")
        try:
            key = self.explorer.analyse(loaded.image, resolution, tuple(loaded.notes), session=request.session_hash)
        except ValueError as error:
            raise user_error(error) from None
        analysis = self.explorer.get(key)
        trace = analysis.trace
        labels = [block.label for block in trace_maths.blocks(trace)]
        opening = trace_maths.default_block(trace)
        status = f"Analysed at {RESOLUTIONS[resolution]}: {trace.num_semantic} semantic tokens " \
                 f"({trace.semantic_grid.height}×{trace.semantic_grid.width} home grid). Opened on " \
                 f"{opening.label}, " + ("the last Dual block whose tokens show regions." if opening.kind == "dual"
                                         else "the block whose tokens spread most.")
        if loaded.notes:
            status += " Note: " + "; ".join(loaded.notes) + "."
        top_classes = trace.top_classes(5)
        tokens = [str(index) for index in range(trace.num_semantic)]
        return {
            "key": key,
            "prediction": {"heading": help_texts.prediction_heading(trace, self.explorer.bundle),
                           # the classes' own names: the ones the explanation API accepts
                           "confidences": dict(top_classes)},
            "verdict": help_texts.prediction_verdict(trace, self.explorer.bundle),
            "status": status,
            "block": gr.update(choices=labels, value=opening.label),
            "fusion": self.head_choices(analysis, opening, "mean"),
            "token": gr.update(maximum=trace.num_semantic - 1, value=0),
            "target_class": gr.update(choices=[name for name, _ in top_classes], value=top_classes[0][0]),
            "stage_token": gr.update(choices=[MEAN_OF_TOKENS] + tokens, value=MEAN_OF_TOKENS),
            "point": None,  # no point clicked yet on this image: the pixel view starts at the centre
        }

    def block_view(self, key, block_label, fusion, scale, colormap, opacity) -> dict[str, Any]:
        """A new block: only its heads offered (the current one kept where it has it), and its gallery."""
        analysis = self.analysis(key)
        heads = self.head_choices(analysis, self.block(analysis, block_label), fusion)
        return {"fusion": heads, **self.token_gallery(key, block_label, heads["value"], scale, colormap, opacity)}

    # -- views: each returns its values by view name (see viewer.catalogue) -------------------
    def token_gallery(self, key, block_label, fusion, scale, colormap, opacity) -> dict[str, Any]:
        analysis = self.analysis(key)
        block = self.block(analysis, block_label)
        tiles = self.guarded(render.token_gallery, analysis, block, fusion, self.style(scale, colormap, opacity))
        return {"token_gallery": markup.tiles_html(tiles, selectable=True, label=f"every token's map, {block.label}")}

    def pick_token(self, key, block_label, fusion, scale, colormap, opacity, event: gr.SelectData) -> dict[str, Any]:
        """A tile clicked: its token in the token box, and drawn, in one round trip."""
        token = int(event.index)
        return {"token": token, **self.token_detail(key, block_label, fusion, scale, colormap, opacity, token)}

    def token_detail(self, key, block_label, fusion, scale, colormap, opacity, token) -> dict[str, Any]:
        analysis = self.analysis(key)
        block, token = self.block(analysis, block_label), self.token(analysis, token)
        detail = self.guarded(render.token_detail, analysis, block, fusion, self.style(scale, colormap, opacity),
                              token)
        return {"token_image": markup.picture_html(detail.picture, f"token {token}, {block.label}"),
                "token_stats": render.statistics_markdown(token, block, detail.statistics),
                "filmstrip": markup.tiles_html(detail.filmstrip, wide=True),
                "selection": markup.selection_css(token)}

    def pixel_view(self, key, block_label, fusion, scale, colormap, opacity, point) -> dict[str, Any]:
        analysis = self.analysis(key)
        view = self.guarded(render.pixel_view, analysis, self.block(analysis, block_label), fusion,
                            self.style(scale, colormap, opacity), point)
        return {"pixel_image": view.marked, "pixel_reads": view.reads_figure,
                "top_tokens": markup.tiles_html(view.top_tokens, selectable=True, wide=True),
                "ownership": markup.picture_html(view.ownership, "ownership map", owners=view.owners)}

    def stages_view(self, key, block_label, fusion, scale, colormap, opacity, token_choice) -> dict[str, Any]:
        analysis = self.analysis(key)
        token = None if token_choice in (None, "", MEAN_OF_TOKENS) else self.token(analysis, token_choice)
        view = self.guarded(render.stages_view, analysis, self.block(analysis, block_label), fusion,
                            self.style(scale, colormap, opacity), token)
        return {"stages": markup.tiles_html(view.stages, wide=True),
                "class_attention": markup.picture_html(view.class_attention, "class attention"),
                "semantic_self": view.semantic_self_figure, "merge_quadrants": view.merge_quadrants_figure}

    def explain(self, key, method, class_name, stage, scale, colormap, opacity, progress: gr.Progress = gr.Progress()):
        analysis = self.analysis(key)
        class_names = self.explorer.bundle.class_names
        if method not in EXPLANATION_METHODS:
            raise gr.Error(f"Unknown method {method!r}; choose one of {', '.join(EXPLANATION_METHODS)}.",
                           print_exception=False)
        if method in CLASS_AGNOSTIC:
            target = 0  # the map does not depend on the class
        elif class_name in class_names:
            target = class_names.index(class_name)
        else:
            raise gr.Error(f"Unknown class {class_name!r} for these weights.", print_exception=False)
        try:
            stage = int(stage) if method in STAGE_METHODS else 2
        except (TypeError, ValueError):
            raise gr.Error("Stage must be 1, 2, 3 or 4.", print_exception=False) from None
        name = EXPLANATION_METHODS[method]
        progress(0.0, desc=f"{name}: starting")

        def on_pass(done: int, expected: int) -> None:
            # Each pass's share is reported as it starts; the last one ends at the full bar.
            progress(min(done - 1, expected) / max(expected, 1), desc=f"{name}: model pass {done} of {expected}")

        try:
            result = self.explorer.explain(key, method, target, stage, on_pass=on_pass)
        except (KeyError, ValueError) as error:
            raise user_error(error) from None
        view = self.guarded(render.explanation_view, analysis, method, result, self.style(scale, colormap, opacity),
                            stage)
        return {"explain_image": markup.picture_html(view.picture, EXPLANATION_METHODS[method]),
                "explain_text": EXPLANATIONS[f"explain_{method}"],
                "important_tokens": markup.tiles_html(view.tokens, selectable=True, wide=True) if view.tokens else "",
                "importance_plot": view.figure}

    def tour(self, key, scale, colormap, opacity) -> dict[str, Any]:
        analysis = self.analysis(key)
        steps = self.guarded(render.tour, analysis, self.style(scale, colormap, opacity))
        pictures = {tour_picture(index): markup.picture_html(step.picture, step.title, owners=step.owners)
                    for index, step in enumerate(steps)}
        texts = {tour_text(index): f"### {index + 1}. {step.title}\n{step.text}" for index, step in enumerate(steps)}
        return pictures | texts

    def export(self, key, block_label, fusion, scale, colormap, opacity, token, point):
        analysis = self.analysis(key)
        block, token = self.block(analysis, block_label), self.token(analysis, token)
        settings = Settings(block_label, fusion, colormap, float(opacity), token, tuple(point) if point else None,
                            scale)
        EXPORTS.mkdir(parents=True, exist_ok=True)
        prune_exports()
        folder = Path(tempfile.mkdtemp(dir=EXPORTS))
        return str(self.guarded(write_bundle, analysis, self.explorer.bundle, block, settings, folder,
                                self.last_explanation(key, analysis, settings.style)))

    def last_explanation(self, key: str, analysis: Analysis, style: render.Style) -> tuple[str, render.Picture] | None:
        """The latest explanation drawn for this image, titled, for the export (None if none was made)."""
        latest = self.explorer.latest_explanation(key)
        if latest is None:
            return None
        method, target, stage, result = latest
        view = render.explanation_view(analysis, method, result, style, stage)
        target_name = "" if method in CLASS_AGNOSTIC else f", {self.explorer.bundle.class_names[target]}"
        return f"{EXPLANATION_METHODS[method]}{target_name}", view.picture


CSS = markup.PAGE_CSS + """
.explanation p {color: var(--body-text-color); font-size: 0.95em;}
[id^="tour-picture"] .view-picture img {max-width: 440px;}
#definition {border-left: 4px solid var(--color-accent); padding-left: 12px;}
#model-banner {background: #fff4e5; color: #4a2b00; border: 1px solid #f0b35a; border-radius: 6px; padding: 4px 12px;}
#model-banner p, #model-banner strong, #model-banner code {color: #4a2b00;}
"""


def launch_options() -> dict[str, Any]:
    """How every server of the page is launched (app, tests, benches), as ``demo.launch(**launch_options())``.

    No run history: the browser would otherwise store every view's images in its local storage after
    every event, which cost more than drawing them. A fresh dict each time, because Gradio adds its
    own entries to ``app_kwargs``.
    """
    return {"css": CSS, "run_history": False, "app_kwargs": {"middleware": [Middleware(UploadGuard)]}}


def tour_picture(step: int) -> str:
    return f"tour_picture_{step}"


def tour_text(step: int) -> str:
    return f"tour_text_{step}"


TOUR_NAMES = [tour_picture(step) for step in range(render.TOUR_STEPS)] + \
             [tour_text(step) for step in range(render.TOUR_STEPS)]
# The help text above each tab's views.
TAB_HELP = {"pixels": "pixel_reads", "explanations": "explanations"}


def view_component(view: catalogue.View) -> gr.components.Component:
    """The component that shows ``view``, by its form."""
    if view.form == "tiles":
        return view_html(view.elem_id, markup.PICK_TILE_JS if view.picks_token else None)
    if view.form == "picture":
        return view_html(view.elem_id, markup.NAME_OWNER_JS if view.name == "ownership" else None)
    if view.form == "photo":
        return gr.Image(label=view.title, interactive=False, elem_id=view.elem_id)
    if view.form == "plot":
        return gr.Plot(label=view.title, elem_id=view.elem_id, visible=view.name != "importance_plot")
    return gr.Markdown(elem_id=view.elem_id)


def render_views(tab: str, controls: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, Any]:
    """The tab's views in catalogue order, a view marked ``beside`` next to the one before it, each
    followed by its help text; ``controls[name]()`` renders controls right after view ``name``."""
    components: dict[str, Any] = {}
    for row in catalogue.rows(catalogue.views_on(tab)):
        with gr.Row(equal_height=False) if len(row) > 1 else gr.Column():
            for view in row:
                with gr.Column(scale=3 if view is row[0] and len(row) > 1 else 2):
                    if view.title and view.form in ("tiles", "picture"):  # images and plots carry it as a label
                        gr.Markdown(f"**{view.title}**")
                    components[view.name] = view_component(view)
                    if view.help:
                        explanation(view.help)
                if view.name in controls:
                    components.update(controls[view.name]())
    return components


def token_box() -> dict[str, Any]:
    return {"token": TokenNumber(0, minimum=0, maximum=63, step=1, elem_id="token",
                               label="Token (type a number and press Enter, or click a tile)")}


def stage_token_box() -> dict[str, Any]:
    return {"stage_token": gr.Dropdown(choices=[MEAN_OF_TOKENS], value=MEAN_OF_TOKENS, elem_id="stage-token",
                                       label="Token (or the mean over tokens)", allow_custom_value=True)}


def explanation_controls(bundle) -> dict[str, Any]:
    method = gr.Dropdown([(label, name) for name, label in EXPLANATION_METHODS.items()],
                         value=default_method(bundle), label="Method", elem_id="explain-method")
    with gr.Row():
        target_class = gr.Dropdown(choices=[], label="Class to explain", elem_id="explain-class")
        stage_choice = gr.Radio([1, 2, 3, 4], value=2, label="Stage whose tokens are removed",
                                visible=False, elem_id="explain-stage")
        explain_button = gr.Button("Explain", variant="primary", elem_id="explain")
    return {"method": method, "target_class": target_class, "stage_choice": stage_choice,
            "explain_button": explain_button}


def build_demo(explorer: Explorer) -> gr.Blocks:
    """The page, with its queue set to the explorer's limits."""
    page = Page(explorer)
    limits = explorer.limits
    bundle = explorer.bundle
    examples = sorted(str(path) for path in EXAMPLES.glob("*") if path.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with gr.Blocks(title="Dual-ViT Explorer") as demo:
        gr.Markdown("# Dual-ViT Explorer\n"
                    "What the global **semantic tokens** of the Dual Vision Transformer (Yao et al., TPAMI 2023) "
                    "look at, how every pixel reads from them, and how this changes block by block and stage by "
                    "stage.")
        gr.Markdown(help_texts.SEMANTIC_TOKENS, elem_id="definition")
        banner = help_texts.model_banner(bundle)
        gr.Markdown(banner, elem_id="model-banner", visible=bool(banner))
        named: dict[str, Any] = {"key": gr.State(None), "point": gr.State(None)}
        with gr.Row():
            with gr.Column(scale=1):
                named["upload"] = UploadedImage(label="Image", type="filepath", elem_id="upload",
                                                sources=["upload", "clipboard", "webcam"])
                named["resolution"] = gr.Radio(list(RESOLUTIONS), value="224", label="Input resolution",
                                               info=" · ".join(f"{k}: {v}" for k, v in RESOLUTIONS.items()))
                run = gr.Button("Analyse", variant="primary", elem_id="analyse")
                if examples:
                    gr.Examples(examples, inputs=named["upload"], label="Examples")
            with gr.Column(scale=1):
                gr.Markdown(help_texts.model_statement(bundle), elem_id="weights-info")
                # The verdict comes first: on an image unlike its training, it says the scores mean nothing
                # before the bars are read; the box's heading is the model's answer, not its top class.
                named["verdict"] = gr.Markdown(elem_id="verdict")
                named["prediction"] = PredictionLabel(num_top_classes=5, label="Prediction", elem_id="prediction")
                explanation("prediction")
                named["status"] = gr.Markdown(elem_id="status")
        with gr.Row():
            # Custom values reach our own check, which names the blocks this image has.
            # Wide enough for "stage 2 · block 0" beside the arrow: on a phone it takes a row of its own.
            named["block"] = gr.Dropdown(choices=[], label="Block", elem_id="block", allow_custom_value=True,
                                         min_width=240)
            named["fusion"] = gr.Dropdown(choices=list(trace_maths.FUSIONS), value="mean", label="Heads", elem_id="heads")
            named["scale"] = gr.Dropdown(choices=list(render.SCALES), value=render.DEFAULT_SCALE,
                                         label="Colour scale", elem_id="scale")
            named["colormap"] = gr.Dropdown(choices=list(overlay.COLORMAPS), value="inferno", label="Colormap")
            named["opacity"] = CheckedSlider(0, 1, value=render.DEFAULT_OPACITY, step=0.05, label="Opacity")
        explanation("overlay_controls")
        named["selection"] = gr.HTML(elem_id="selection-style")
        # Every tab in sight, on as many rows as it takes: on a phone the default menu folded four of the
        # six into a "⋯" that a first-time visitor does not open.
        with gr.Tabs(overflow_behavior="wrap") as tabs:
            with gr.Tab(TAB_TITLES["tour"], id="tour"):
                gr.Markdown("The Dual-ViT story on this image, in seven pictures. Each step names the full view "
                            "it summarises.", elem_classes=["explanation"])
                tour_links = []
                for step in range(render.TOUR_STEPS):
                    with gr.Row(equal_height=False):  # the text first: on a phone each heading tops its picture
                        with gr.Column(scale=1, min_width=280):
                            named[tour_text(step)] = gr.Markdown(elem_id=tour_text(step).replace("_", "-"))
                            view = render.TOUR_VIEWS[step]
                            tour_links.append((gr.Button(f"Open the full view: {TAB_TITLES[view]}", size="sm",
                                                         variant="secondary"), view))
                        with gr.Column(scale=1, min_width=280):
                            named[tour_picture(step)] = view_html(tour_picture(step).replace("_", "-"),
                                                                  markup.NAME_OWNER_JS)
            # Controls at the head of a tab, and controls right after a view.
            controls_first = {"stages": stage_token_box, "explanations": functools.partial(explanation_controls, bundle)}
            controls_after = {"token_gallery": token_box}
            for tab in ("tokens", "pixels", "stages", "explanations"):
                with gr.Tab(TAB_TITLES[tab], id=tab):
                    if tab in TAB_HELP:
                        explanation(TAB_HELP[tab])
                    if tab in controls_first:
                        named.update(controls_first[tab]())
                    named.update(render_views(tab, controls_after))
                    if tab == "explanations":
                        with gr.Accordion("Evidence: how well each method finds the objects", open=False):
                            gr.Markdown(help_texts.evidence_markdown())
            with gr.Tab(TAB_TITLES["export"], id="export"):
                gr.Markdown("One download: a PNG of the current views (each with its colour key), the trace "
                            "(`.safetensors`, every attention map) and the settings as JSON. "
                            "`python -m viewer.export IMAGE --out DIR` renders the standard figures without the "
                            "page.")
                export_button = gr.Button("Prepare download")
                export_file = gr.File(label="Download", elem_id="export-file")

        def components(*names: str) -> list[Any]:
            return [named[name] for name in names]

        def drawn_by(endpoint: str, *extra: str) -> list[str]:
            return [view.name for view in catalogue.views_of(endpoint)] + list(extra)

        def wire(trigger, handler, inputs: list[str], outputs: list[str], **options):
            """``trigger``(handler) with inputs and outputs by name; the handler returns values by name."""
            @functools.wraps(handler)
            def ordered(*arguments, **keywords):
                values = handler(*arguments, **keywords)
                ordered_values = tuple(values[name] for name in outputs)
                return ordered_values[0] if len(ordered_values) == 1 else ordered_values
            return trigger(ordered, components(*inputs), components(*outputs), **options)

        view_inputs = ["key", "block", "fusion", "scale", "colormap", "opacity"]
        token_outputs = drawn_by("token_detail", "selection")

        def redraw_after_gallery(event, named_api: bool = False, tour: bool = True):
            """Chain every view but the gallery (which ``event`` drew) after it; ``named_api`` gives them API
            names. The tour shows fixed blocks, so only a change of drawing (``tour``) redraws it."""
            def api(endpoint: str):
                return endpoint if named_api else False
            chain = wire(event.then, page.token_detail, view_inputs + ["token"], token_outputs,
                         api_name=api("token_detail"))
            chain = wire(chain.then, page.pixel_view, view_inputs + ["point"], drawn_by("pixel_view"),
                         api_name=api("pixel_view"))
            chain = wire(chain.then, page.stages_view, view_inputs + ["stage_token"], drawn_by("stages_view"),
                         api_name=api("stages_view"))
            if tour:
                chain = wire(chain.then, page.tour, ["key", "scale", "colormap", "opacity"], TOUR_NAMES,
                             api_name=api("tour"))
            return chain

        # Each step of a chain is a round trip to the server: the gallery, which the reader is looking
        # at, is drawn by the first one.
        analysed = wire(run.click, page.analyse, ["upload", "resolution"], ANALYSIS_OUTPUTS, api_name="analyse",
                        concurrency_limit=limits.concurrent_analyses, show_progress_on=[named["status"]])
        redraw_after_gallery(wire(analysed.success, page.token_gallery, view_inputs, drawn_by("token_gallery"),
                                  api_name="token_gallery"), named_api=True)
        redraw_after_gallery(wire(named["block"].select, page.block_view, view_inputs,
                                  ["fusion"] + drawn_by("token_gallery"), api_name="block_view"), tour=False)
        redraw_after_gallery(wire(named["fusion"].input, page.token_gallery, view_inputs, drawn_by("token_gallery"),
                                  api_name=False), tour=False)
        redraw_after_gallery(wire(functools.partial(gr.on, [named["scale"].input, named["colormap"].input,
                                                            named["opacity"].release]),
                                  page.token_gallery, view_inputs, drawn_by("token_gallery"), api_name=False))
        # A wrong token number is the token box's fault: its error shows there, not on the views.
        wire(named["token"].submit, page.token_detail, view_inputs + ["token"], token_outputs, api_name=False,
             show_progress_on=[named["token"]])
        for view in catalogue.VIEWS:
            if view.picks_token:
                picked = wire(named[view.name].select, page.pick_token, view_inputs, ["token"] + token_outputs,
                              api_name=False)
                if view.tab != "tokens":
                    picked.then(lambda: gr.Tabs(selected="tokens"), None, tabs, api_name=False)
        clicked = named["pixel_image"].select(select_point, None, named["point"], api_name=False)
        wire(clicked.then, page.pixel_view, view_inputs + ["point"], drawn_by("pixel_view"), api_name=False)
        wire(named["stage_token"].input, page.stages_view, view_inputs + ["stage_token"], drawn_by("stages_view"),
             api_name=False)
        for link, tab in tour_links:
            link.click(lambda tab=tab: gr.Tabs(selected=tab), None, tabs, api_name=False)
        named["method"].change(method_controls, named["method"],
                               components("target_class", "stage_choice", "importance_plot"), api_name=False)
        wire(named["explain_button"].click, page.explain,
             ["key", "method", "target_class", "stage_choice", "scale", "colormap", "opacity"], drawn_by("explain"),
             api_name="explain", concurrency_limit=limits.concurrent_explanations)
        export_button.click(page.export, components(*view_inputs, "token", "point"), export_file, api_name="export")
    # Views are drawn from the cache in milliseconds; only the two events above run the model.
    demo.queue(default_concurrency_limit=limits.concurrent_analyses, max_size=limits.queue_size)
    return demo


ANALYSIS_OUTPUTS = ["key", "prediction", "verdict", "status", "block", "fusion", "token", "target_class",
                    "stage_token", "point"]


def default_method(bundle) -> str:
    """The token-labeling head's class map where there is one: fast, and the best localiser measured."""
    return "aux_head" if getattr(bundle.network, "token_label", False) else "grad_cam"


def method_controls(method: str):
    """Ask for a class only where the map depends on it, for a stage only where the method has one,
    and show the token chart only for the method that draws it."""
    stage_method = method in STAGE_METHODS
    return (gr.update(visible=method not in CLASS_AGNOSTIC), gr.update(visible=stage_method),
            gr.update(visible=stage_method))


def select_point(event: gr.SelectData) -> tuple[float, float]:
    x, y = event.index
    return float(x), float(y)
