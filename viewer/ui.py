"""The Gradio page: layout and event wiring only, built from the catalogue of views and the explanation methods.

Each part of the page is a small class whose ``render`` lays its components out (returning them by name);
:class:`Wiring` connects them to the handlers of :mod:`viewer.handlers`, each event parsing the values it
sends into one checked request (:mod:`viewer.requests`). Maths lives in :mod:`analysis`, drawing in
:mod:`viewer.render`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import gradio as gr
from starlette.middleware import Middleware

from analysis import trace_maths
from analysis.explanations import METHODS, default_method
from model.bundle import ASSETS, ModelBundle
from viewer import catalogue, help_texts, markup, overlay, render
from viewer.components import CheckedSlider, PredictionLabel, TokenNumber, UploadedImage
from viewer.handlers import TOUR_NAMES, Handlers, answering, tour_picture, tour_text
from viewer.help_texts import EXPLANATIONS
from viewer.http_guard import UploadGuard
from viewer.requests import MEAN_OF_TOKENS, RESOLUTIONS, analyse_request
from viewer.service import Explorer

EXAMPLES = ASSETS / "examples"
TAB_TITLES = catalogue.TABS
# The help text above each tab's views.
TAB_HELP = {"pixels": "pixel_reads", "explanations": "explanations"}
Named = dict[str, Any]

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


def explanation(view: str) -> gr.Markdown:
    return gr.Markdown(EXPLANATIONS[view], elem_classes=["explanation"])


def view_html(elem_id: str, js_on_load: str | None = None, **kwargs) -> gr.HTML:
    """A picture of the page: an HTML value holding its image(s) and colour key."""
    return gr.HTML(elem_id=elem_id, elem_classes=["view"], js_on_load=js_on_load, **kwargs)


# ----------------------------------------------------------------------------- layout


class Header:
    """The title, what semantic tokens are, and a banner for weights that know nothing."""

    @staticmethod
    def render(bundle: ModelBundle) -> Named:
        gr.Markdown("# Dual-ViT Explorer\n"
                    "What the global **semantic tokens** of the Dual Vision Transformer (Yao et al., TPAMI 2023) "
                    "look at, how every pixel reads from them, and how this changes block by block and stage by "
                    "stage.")
        gr.Markdown(help_texts.SEMANTIC_TOKENS, elem_id="definition")
        banner = help_texts.model_banner(bundle)
        gr.Markdown(banner, elem_id="model-banner", visible=bool(banner))
        return {"key": gr.State(None), "point": gr.State(None)}


class ImagePanel:
    """The image and its resolution beside what the model answers."""

    @staticmethod
    def render(bundle: ModelBundle) -> Named:
        named: Named = {}
        examples = sorted(str(path) for path in EXAMPLES.glob("*") if path.suffix.lower() in (".png", ".jpg", ".jpeg"))
        with gr.Row():
            with gr.Column(scale=1):
                named["upload"] = UploadedImage(label="Image", type="filepath", elem_id="upload",
                                                sources=["upload", "clipboard", "webcam"])
                named["resolution"] = gr.Radio(list(RESOLUTIONS), value="224", label="Input resolution",
                                               info=" · ".join(f"{k}: {v}" for k, v in RESOLUTIONS.items()))
                named["analyse"] = gr.Button("Analyse", variant="primary", elem_id="analyse")
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
        return named


class Controls:
    """What every map view shares: the block, how heads are fused, and how values become colours."""

    @staticmethod
    def render() -> Named:
        named: Named = {}
        with gr.Row():
            # Custom values reach our own check, which names the blocks this image has. Wide enough for
            # "stage 2 · block 0" beside the arrow: on a phone it takes a row of its own.
            named["block"] = gr.Dropdown(choices=[], label="Block", elem_id="block", allow_custom_value=True,
                                         min_width=240)
            named["fusion"] = gr.Dropdown(choices=list(trace_maths.FUSIONS), value="mean", label="Heads",
                                          elem_id="heads")
            named["scale"] = gr.Dropdown(choices=list(render.SCALES), value=render.DEFAULT_SCALE,
                                         label="Colour scale", elem_id="scale")
            named["colormap"] = gr.Dropdown(choices=list(overlay.COLORMAPS), value="inferno", label="Colormap")
            named["opacity"] = CheckedSlider(0, 1, value=render.DEFAULT_OPACITY, step=0.05, label="Opacity")
        explanation("overlay_controls")
        named["selection"] = gr.HTML(elem_id="selection-style")
        return named


class TourTab:
    """The Dual-ViT story in seven steps, each with a link to its full view."""

    @staticmethod
    def render() -> tuple[Named, list[tuple[gr.Button, str]]]:
        named: Named = {}
        links = []
        gr.Markdown("The Dual-ViT story on this image, in seven pictures. Each step names the full view "
                    "it summarises.", elem_classes=["explanation"])
        for step in range(render.TOUR_STEPS):
            with gr.Row(equal_height=False):  # the text first: on a phone each heading tops its picture
                with gr.Column(scale=1, min_width=280):
                    named[tour_text(step)] = gr.Markdown(elem_id=tour_text(step).replace("_", "-"))
                    view = render.TOUR_VIEWS[step]
                    links.append((gr.Button(f"Open the full view: {TAB_TITLES[view]}", size="sm",
                                            variant="secondary"), view))
                with gr.Column(scale=1, min_width=280):
                    named[tour_picture(step)] = view_html(tour_picture(step).replace("_", "-"),
                                                          markup.NAME_OWNER_JS)
        return named, links


class ViewTab:
    """A tab of map views, laid out from the catalogue: a view marked ``beside`` next to the one before it,
    each followed by its help text; ``controls_first`` at the tab's head, ``controls_after[name]`` after view
    ``name``."""

    def __init__(self, tab: str, controls_first: Callable[[], Named] | None = None,
                 controls_after: dict[str, Callable[[], Named]] | None = None):
        self.tab, self.controls_first, self.controls_after = tab, controls_first, controls_after or {}

    def render(self) -> Named:
        named: Named = {}
        if self.tab in TAB_HELP:
            explanation(TAB_HELP[self.tab])
        if self.controls_first:
            named.update(self.controls_first())
        for row in catalogue.rows(catalogue.views_on(self.tab)):
            with gr.Row(equal_height=False) if len(row) > 1 else gr.Column():
                for view in row:
                    with gr.Column(scale=3 if view is row[0] and len(row) > 1 else 2):
                        if view.title and view.form in ("tiles", "picture"):  # images and plots carry it as a label
                            gr.Markdown(f"**{view.title}**")
                        named[view.name] = view_component(view)
                        if view.help:
                            explanation(view.help)
                    if view.name in self.controls_after:
                        named.update(self.controls_after[view.name]())
        return named


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


def token_box() -> Named:
    return {"token": TokenNumber(0, minimum=0, maximum=63, step=1, elem_id="token",
                                 label="Token (type a number and press Enter, or click a tile)")}


def stage_token_box() -> Named:
    return {"stage_token": gr.Dropdown(choices=[MEAN_OF_TOKENS], value=MEAN_OF_TOKENS, elem_id="stage-token",
                                       label="Token (or the mean over tokens)", allow_custom_value=True)}


def explanation_controls(bundle: ModelBundle) -> Named:
    """The method (from the declared methods), the class and stage where the method asks for them."""
    method = default_method(bundle.network)
    named: Named = {"method": gr.Dropdown([(declared.title, name) for name, declared in METHODS.items()],
                                          value=method.name, label="Method", elem_id="explain-method")}
    with gr.Row():
        named["target_class"] = gr.Dropdown(choices=[], label="Class to explain", elem_id="explain-class",
                                            visible=method.needs_class)
        named["stage_choice"] = gr.Radio([1, 2, 3, 4], value=2, label="Stage whose tokens are removed",
                                         visible=method.needs_stage, elem_id="explain-stage")
        named["explain_button"] = gr.Button("Explain", variant="primary", elem_id="explain")
    return named


def method_controls(method: str) -> tuple[dict, dict, dict]:
    """Ask for a class only where the result depends on it, for a stage only where the method has one, and
    show the token chart only for methods that score tokens."""
    declared = METHODS.get(method)
    if declared is None:
        return gr.update(), gr.update(), gr.update()  # the method's own check says what is wrong
    return (gr.update(visible=declared.needs_class), gr.update(visible=declared.needs_stage),
            gr.update(visible=declared.result == "token scores"))


class ExportTab:
    @staticmethod
    def render() -> Named:
        gr.Markdown("One download: a PNG of the current views (each with its colour key), the trace "
                    "(`.safetensors`, every attention map) and the settings as JSON. "
                    "`python -m viewer.export IMAGE --out DIR` renders the standard figures without the page.")
        return {"export_button": gr.Button("Prepare download"),
                "export_file": gr.File(label="Download", elem_id="export-file")}


def render_tabs(bundle: ModelBundle) -> tuple[Named, list[tuple[gr.Button, str]]]:
    """Every tab in sight, on as many rows as it takes: on a phone the default menu folded four of the six
    into a "⋯" that a first-time visitor does not open."""
    tabs = {"tokens": ViewTab("tokens", controls_after={"token_gallery": token_box}),
            "pixels": ViewTab("pixels"),
            "stages": ViewTab("stages", controls_first=stage_token_box),
            "explanations": ViewTab("explanations", controls_first=lambda: explanation_controls(bundle))}
    with gr.Tabs(overflow_behavior="wrap") as tab_bar:
        with gr.Tab(TAB_TITLES["tour"], id="tour"):
            named, links = TourTab.render()
        for tab, section in tabs.items():
            with gr.Tab(TAB_TITLES[tab], id=tab):
                named.update(section.render())
                if tab == "explanations":
                    with gr.Accordion("Evidence: how well each method finds the objects", open=False):
                        gr.Markdown(help_texts.evidence_markdown())
        with gr.Tab(TAB_TITLES["export"], id="export"):
            named.update(ExportTab.render())
    return named | {"tabs": tab_bar}, links


# ----------------------------------------------------------------------------- wiring

# The parameter names a component's value has in the API, where they differ from its name on the page.
API_PARAMETERS = {"block": "block_label", "stage_token": "token_choice", "target_class": "class_name",
                  "stage_choice": "stage"}
VIEW_INPUTS = ["key", "block", "fusion", "scale", "colormap", "opacity"]
ANALYSIS_OUTPUTS = ["key", "prediction", "verdict", "status", "block", "fusion", "token", "target_class",
                    "stage_token", "point"]


def event_function(parse: Callable[..., Any], handler: Callable[..., dict[str, Any]], inputs: Sequence[str],
                   outputs: Sequence[str], specials: Sequence[str] = ()) -> Callable[..., Any]:
    """The function Gradio calls: the values of the components named ``inputs`` (and the ``specials`` Gradio
    provides: "session", "event", "progress") parsed by ``parse`` into one request, the handler's values
    returned in ``outputs`` order. The handler gets the progress bar too, where asked for."""
    def call(*values: Any) -> Any:
        named = dict(zip([*inputs, *specials], values))
        with answering():
            request = parse(**{name: value for name, value in named.items() if name != "progress"})
            answer = handler(request, named["progress"]) if "progress" in named else handler(request)
        ordered = tuple(answer[name] for name in outputs)
        return ordered[0] if len(ordered) == 1 else ordered

    # Gradio reads the parameters' names (the API's) and the special ones' types or defaults.
    parameters = [inspect.Parameter(API_PARAMETERS.get(name, name), inspect.Parameter.POSITIONAL_OR_KEYWORD)
                  for name in inputs]
    special_types = {"session": gr.Request, "event": gr.SelectData}
    parameters += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD) for name in specials
                   if name != "progress"]
    if "progress" in specials:
        parameters.append(inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                            default=gr.Progress()))
    call.__signature__ = inspect.Signature(parameters)
    call.__annotations__ = {name: special_types[name] for name in specials if name in special_types}
    call.__name__ = handler.__name__
    return call


class Wiring:
    """The page's events: each one parses what it sends into a request and draws what its handler returns."""

    def __init__(self, explorer: Explorer, named: Named):
        self.explorer, self.named, self.handlers = explorer, named, Handlers(explorer)

    def components(self, names: Sequence[str]) -> list[Any]:
        return [self.named[name] for name in names]

    def on(self, trigger, parse, handler, inputs: Sequence[str], outputs: Sequence[str],
           specials: Sequence[str] = (), **options):
        """``trigger`` (an event listener) runs ``handler`` on the request ``parse`` makes of ``inputs``."""
        return trigger(event_function(parse, handler, inputs, outputs, specials), self.components(inputs),
                       self.components(outputs), **options)

    def view(self, **options: Any) -> Callable[..., Any]:
        """The parser of a view's values (with ``options`` for :func:`viewer.requests.view_request`)."""
        return lambda key, block, fusion, scale, colormap, opacity, **selection: self.explorer.view_request(
            key, block, fusion, scale, colormap, opacity, **selection, **options)

    def redraw_after_gallery(self, event, named_api: bool = False, tour: bool = True):
        """Every view but the gallery (which ``event`` drew) after it; ``named_api`` gives them API names. The
        tour shows fixed blocks, so only a change of drawing (``tour``) redraws it. Each step is a round trip:
        the gallery, which the reader is looking at, comes first."""
        handlers = self.handlers
        steps = [(handlers.token_detail, ["token"], drawn_by("token_detail", "selection")),
                 (handlers.pixel_view, ["point"], drawn_by("pixel_view")),
                 (handlers.stages_view, ["stage_token"], drawn_by("stages_view"))]
        chain = event
        for handler, selection, outputs in steps:
            chain = self.on(chain.then, self.view(), handler, VIEW_INPUTS + selection, outputs,
                            api_name=handler.__name__ if named_api else False)
        if tour:
            chain = self.on(chain.then, self.explorer.tour_request, handlers.tour,
                            ["key", "scale", "colormap", "opacity"], TOUR_NAMES,
                            api_name="tour" if named_api else False)
        return chain

    def analysis(self) -> None:
        """Analyse runs the model; every view is then drawn from its trace."""
        limits = self.explorer.limits
        analysed = self.on(self.named["analyse"].click,
                           lambda upload, resolution, session: analyse_request(
                               upload, resolution, limits.max_pixels, session.session_hash),
                           self.handlers.analyse, ["upload", "resolution"], ANALYSIS_OUTPUTS, ["session", "progress"],
                           api_name="analyse", concurrency_limit=limits.concurrent_analyses,
                           show_progress_on=[self.named["status"]])
        self.redraw_after_gallery(self.on(analysed.success, self.view(), self.handlers.token_gallery, VIEW_INPUTS,
                                          drawn_by("token_gallery"), api_name="token_gallery"), named_api=True)

    def controls(self) -> None:
        """A new block, heads or drawing redraws the gallery first, then the rest."""
        named, handlers = self.named, self.handlers
        self.redraw_after_gallery(self.on(named["block"].select, self.view(fusion_or_mean=True), handlers.block_view,
                                          VIEW_INPUTS, ["fusion"] + drawn_by("token_gallery"),
                                          api_name="block_view"), tour=False)
        self.redraw_after_gallery(self.on(named["fusion"].input, self.view(), handlers.token_gallery, VIEW_INPUTS,
                                          drawn_by("token_gallery"), api_name=False), tour=False)
        drawing = [named["scale"].input, named["colormap"].input, named["opacity"].release]
        self.redraw_after_gallery(self.on(lambda *args, **kwargs: gr.on(drawing, *args, **kwargs), self.view(),
                                          handlers.token_gallery, VIEW_INPUTS, drawn_by("token_gallery"),
                                          api_name=False))
        self.on(named["stage_token"].input, self.view(), handlers.stages_view, VIEW_INPUTS + ["stage_token"],
                drawn_by("stages_view"), api_name=False)

    def selection(self) -> None:
        """Tokens picked by number or by tile, points picked on the photo."""
        named, handlers = self.named, self.handlers
        # A wrong token number is the token box's fault: its error shows there, not on the views.
        self.on(named["token"].submit, self.view(), handlers.token_detail, VIEW_INPUTS + ["token"],
                drawn_by("token_detail", "selection"), api_name=False, show_progress_on=[named["token"]])
        view = self.view()
        picked_token = lambda event, **values: view(**values, token=event.index)  # noqa: E731
        for declared in catalogue.VIEWS:
            if declared.picks_token:
                picked = self.on(named[declared.name].select, picked_token, handlers.pick_token, VIEW_INPUTS,
                                 ["token"] + drawn_by("token_detail", "selection"), ["event"], api_name=False)
                if declared.tab != "tokens":
                    picked.then(lambda: gr.Tabs(selected="tokens"), None, named["tabs"], api_name=False)
        clicked = named["pixel_image"].select(select_point, None, named["point"], api_name=False)
        self.on(clicked.then, self.view(), handlers.pixel_view, VIEW_INPUTS + ["point"], drawn_by("pixel_view"),
                api_name=False)

    def explanations_and_export(self) -> None:
        named, handlers, limits = self.named, self.handlers, self.explorer.limits
        named["method"].change(method_controls, named["method"],
                               self.components(["target_class", "stage_choice", "importance_plot"]), api_name=False)
        explorer = self.explorer
        self.on(named["explain_button"].click,
                lambda key, method, target_class, stage_choice, scale, colormap, opacity: explorer.explain_request(
                    key, method, target_class, stage_choice, scale, colormap, opacity), handlers.explain,
                ["key", "method", "target_class", "stage_choice", "scale", "colormap", "opacity"],
                drawn_by("explain"), ["progress"], api_name="explain", concurrency_limit=limits.concurrent_explanations)
        self.on(named["export_button"].click, self.view(), handlers.export, VIEW_INPUTS + ["token", "point"],
                ["export_file"], api_name="export")


def drawn_by(endpoint: str, *extra: str) -> list[str]:
    return [view.name for view in catalogue.views_of(endpoint)] + list(extra)


def select_point(event: gr.SelectData) -> tuple[float, float]:
    x, y = event.index
    return float(x), float(y)


def build_demo(explorer: Explorer) -> gr.Blocks:
    """The page, with its queue set to the explorer's limits."""
    bundle = explorer.bundle
    with gr.Blocks(title="Dual-ViT Explorer") as demo:
        named = Header.render(bundle) | ImagePanel.render(bundle) | Controls.render()
        tabs, links = render_tabs(bundle)
        named |= tabs
        wiring = Wiring(explorer, named)
        wiring.analysis()
        wiring.controls()
        wiring.selection()
        wiring.explanations_and_export()
        for link, tab in links:
            link.click(lambda tab=tab: gr.Tabs(selected=tab), None, named["tabs"], api_name=False)
    # Views are drawn from the cache in milliseconds; only analyses and explanations run the model.
    demo.queue(default_concurrency_limit=explorer.limits.concurrent_analyses, max_size=explorer.limits.queue_size)
    return demo
