"""The Gradio page: layout and event wiring only, built from the catalogue of views and the explanation methods.

Each part of the page is a small class whose ``render`` lays its components out (returning them by name);
:class:`Wiring` connects them to the handlers of :mod:`viewer.handlers`, each event parsing the values it
sends into one checked request (:mod:`viewer.requests`). The live tabs (Semantic tokens, Pixels, Stages,
Compare) are drawn in the browser by ``viewer/static/`` from the analysis's maps, fetched once
(:mod:`viewer.live`); the Tour and the Explanations are drawn on the server. Maths lives in
:mod:`analysis`, drawing in :mod:`viewer.render`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import gradio as gr

from analysis.explanations import METHODS, default_method
from model.bundle import ASSETS, ModelBundle
from viewer import api, catalogue, help_texts, live, markup, render
from viewer.components import PredictionLabel, UploadedImage
from viewer.handlers import TOUR_NAMES, Handlers, answering, tour_picture, tour_text
from viewer.help_texts import EXPLANATIONS
from viewer.requests import RESOLUTIONS, analyse_request, selection_of
from viewer.service import Explorer

EXAMPLES = ASSETS / "examples"
TAB_TITLES = catalogue.TABS
# The help text above each tab's views.
TAB_HELP = {"pixels": "pixel_reads", "explanations": "explanations", "atlas": "atlas"}
Named = dict[str, Any]

CSS = markup.PAGE_CSS + live.LIVE_CSS + """
.explanation p {color: var(--body-text-color); font-size: 0.95em;}
[id^="tour-picture"] .view-picture img {max-width: 440px;}
/* The Tour presents one step at a time (viewer/static/deck.js); in full screen the step fills the screen. */
.tour-step[hidden] {display: none !important;}
.dvx-presenter .deck-bar {display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: center; margin: 4px 0 8px;}
.dvx-presenter .deck-counter {font-variant-numeric: tabular-nums; min-width: 4em; text-align: center;}
.dvx-presenter .deck-button {padding: 4px 14px; border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--button-secondary-background-fill); color: var(--body-text-color); cursor: pointer;
  white-space: nowrap;}
.dvx-presenter .deck-button:disabled {opacity: 0.45; cursor: default;}
.dvx-presenter:fullscreen {background: var(--background-fill-primary); padding: 24px 40px; overflow: auto;
  font-size: 1.35rem;}
.dvx-presenter:fullscreen [id^="tour-picture"] .view-picture img {max-width: min(60vw, 110vh);}
#definition {border-left: 4px solid var(--color-accent); padding-left: 12px;}
#model-banner {background: #fff4e5; color: #4a2b00; border: 1px solid #f0b35a; border-radius: 6px; padding: 4px 12px;}
#model-banner p, #model-banner strong, #model-banner code {color: #4a2b00;}
"""


def launch_options(explorer: Explorer) -> dict[str, Any]:
    """How every server of the page is launched (app, tests, benches), as
    ``demo.launch(**launch_options(explorer))``: the page's styles, the routes of the live explorer (its
    scripts and each analysis's maps) and the upload guard.

    No run history: the browser would otherwise store every view's values in its local storage after
    every event. A fresh dict each time, because Gradio adds its own entries to ``app_kwargs``.
    """
    return {"css": CSS, "run_history": False, "app_kwargs": live.app_kwargs(explorer)}


def explanation(view: str) -> gr.Markdown:
    return gr.Markdown(EXPLANATIONS[view], elem_classes=["explanation"])


def view_html(elem_id: str, js_on_load: str | None = None, **kwargs) -> gr.HTML:
    """A picture of the page drawn on the server: an HTML value holding its image(s) and colour key."""
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
        return {"key": gr.State(None)}


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
    """What every map view shares, drawn in the browser: the block, how heads are fused, how values become
    colours. Its value is the live views' selection, which the server's own events read."""

    @staticmethod
    def render() -> Named:
        named = {"controls": live.part("controls", elem_id="controls", scales=list(render.SCALES),
                                       colormaps=list(live.COLORMAPS))}
        with gr.Accordion("What the controls do", open=False, elem_id="controls-help"):
            explanation("overlay_controls")
        return named


class TourTab:
    """The Dual-ViT story in seven steps, each with a link to its full view."""

    @staticmethod
    def render() -> tuple[Named, list[tuple[gr.Button, str]]]:
        named: Named = {}
        links = []
        gr.Markdown("The Dual-ViT story on this image in seven steps, one at a time: Next and Previous (or the arrow "
                    "keys) step through them, Full screen presents them. Each step names the full view it summarises; "
                    "the Export tab's download holds the tour as a slide deck.", elem_classes=["explanation"])
        named["tour_presenter"] = live.part("presenter", elem_id="tour-presenter")
        for step in range(render.TOUR_STEPS):
            # The text first: on a phone each heading tops its picture.
            with gr.Row(equal_height=False, elem_id=f"tour-step-{step}", elem_classes=["tour-step"]):
                with gr.Column(scale=1, min_width=280):
                    named[tour_text(step)] = gr.Markdown(elem_id=tour_text(step).replace("_", "-"))
                    view = render.TOUR_VIEWS[step]
                    links.append((gr.Button(f"Open the full view: {TAB_TITLES[view]}", size="sm",
                                            variant="secondary"), view))
                with gr.Column(scale=1, min_width=280):
                    named[tour_picture(step)] = view_html(tour_picture(step).replace("_", "-"), markup.PICTURE_JS)
        return named, links


class LiveTab:
    """A tab the browser draws from the analysis's maps: its views, as the catalogue declares them."""

    def __init__(self, tab: str):
        self.tab = tab

    def render(self) -> Named:
        if self.tab in TAB_HELP:
            explanation(TAB_HELP[self.tab])
        return {f"live_{self.tab}": live.part(self.tab, elem_id=f"live-{self.tab}")}


class CompareTab(LiveTab):
    """A second image (or the same at another resolution) beside the first."""

    def __init__(self):
        super().__init__("compare")

    def render(self) -> Named:
        named: Named = {}
        with gr.Row():
            named["second_upload"] = UploadedImage(label="Second image (leave empty for the first image again)",
                                                   type="filepath", elem_id="second-upload", sources=["upload", "clipboard"])
            with gr.Column():
                named["second_resolution"] = gr.Radio(list(RESOLUTIONS), value="224", label="Its input resolution")
                named["second_analyse"] = gr.Button("Analyse the second image", variant="primary",
                                                    elem_id="second-analyse")
                named["second_status"] = gr.Markdown(elem_id="second-status")
                named["second_key"] = gr.State(None)
        return named | super().render()


class ExplanationsTab:
    """The methods run on the server, laid out from the catalogue."""

    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle

    def render(self) -> Named:
        explanation(TAB_HELP["explanations"])
        named = explanation_controls(self.bundle)
        for row in catalogue.rows(catalogue.views_on("explanations")):
            with gr.Row(equal_height=False) if len(row) > 1 else gr.Column():
                for view in row:
                    with gr.Column(scale=3 if view is row[0] and len(row) > 1 else 2):
                        named[view.name] = view_component(view)
        with gr.Accordion("Evidence: how well each method finds the objects", open=False):
            gr.Markdown(help_texts.evidence_markdown())
        return named


def view_component(view: catalogue.View) -> gr.components.Component:
    """The component that shows a server-drawn view, by its form."""
    if view.form == "tiles":
        return view_html(view.elem_id, markup.PICK_TILE_JS if view.picks_token else None)
    if view.form == "picture":
        return view_html(view.elem_id, markup.PICTURE_JS)
    if view.form == "plot":
        return gr.Plot(label=view.title, elem_id=view.elem_id, visible=view.name != "importance_plot")
    return gr.Markdown(elem_id=view.elem_id)


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


class AtlasTab:
    """What each token does across a dataset, from the atlas the app was started with."""

    def __init__(self, explorer: Explorer):
        self.atlas = explorer.atlas

    def render(self) -> Named:
        explanation(TAB_HELP["atlas"])
        if self.atlas is None:
            gr.Markdown("No atlas is loaded. Build one with `python -m atlas build scenes:2000 --out DIR` (or a "
                        "folder of images) and start the app with `--atlas DIR`.", elem_id="atlas-missing")
            return {}
        gr.Markdown(f"Built from {self.atlas.meta['source']} with {self.atlas.meta['architecture']} "
                    f"({self.atlas.meta['weights']}) at {self.atlas.meta['resolution']} pixels.")
        named: Named = {}
        with gr.Row():
            named["atlas_block"] = gr.Dropdown(self.atlas.blocks, value=self.atlas.blocks[-1], label="Block",
                                               elem_id="atlas-block")
            named["atlas_token"] = gr.Number(value=0, precision=0, minimum=0, label="Token", elem_id="atlas-token")
            named["atlas_show"] = gr.Button("Show this token", variant="primary", elem_id="atlas-show")
            named["atlas_picked"] = gr.Button("Show the token picked in the explorer", elem_id="atlas-picked")
        for row in catalogue.rows(catalogue.views_on("atlas")):
            with gr.Row(equal_height=False) if len(row) > 1 else gr.Column():
                for view in row:
                    with gr.Column():
                        if view.title and view.form != "plot":
                            gr.Markdown(f"#### {view.title}")
                        named[view.name] = view_component(view)
        return named


class ExportTab:
    @staticmethod
    def render() -> Named:
        gr.Markdown("One download for a lecture or a paper: every view as it is selected now, headed with the image, "
                    "the model, the block and the token, as PNG, SVG and PDF (the latest explanation too); the tour as "
                    "a slide deck that works offline (HTML) and as 16:9 slides (PDF), with the compared image's "
                    "tour where Compare holds one; a token through every block and the stages as GIF and MP4; the "
                    "plots as HTML; the trace (`.safetensors`) and the settings. Each picture of the page also "
                    "downloads alone, from the links under it. `python -m viewer.export IMAGE --out DIR --svg --deck "
                    "--animations` makes the same files without the page.")
        return {"export_button": gr.Button("Prepare download"),
                "export_file": gr.File(label="Download", elem_id="export-file")}


def render_tabs(explorer: Explorer) -> tuple[Named, list[tuple[gr.Button, str]]]:
    """Every tab in sight, on as many rows as it takes: on a phone the default menu folded four of the six
    into a "⋯" that a first-time visitor does not open."""
    sections = {"tokens": LiveTab("tokens"), "pixels": LiveTab("pixels"), "stages": LiveTab("stages"),
                "compare": CompareTab(), "explanations": ExplanationsTab(explorer.bundle), "atlas": AtlasTab(explorer),
                "export": ExportTab()}
    with gr.Tabs(overflow_behavior="wrap") as tab_bar:
        with gr.Tab(TAB_TITLES["tour"], id="tour"):
            named, links = TourTab.render()
        for tab, section in sections.items():
            with gr.Tab(TAB_TITLES[tab], id=tab):
                named.update(section.render())
    return named | {"tabs": tab_bar}, links


# ----------------------------------------------------------------------------- wiring

# The parameter names a component's value has in the API, where they differ from its name on the page.
API_PARAMETERS = {"target_class": "class_name", "stage_choice": "stage", "atlas_block": "block", "atlas_token": "token"}
ANALYSIS_OUTPUTS = ["key", "prediction", "verdict", "status", "target_class", "controls"]


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
    special_types = {"session": gr.Request}
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
    """The page's events: each one parses what it sends into a request and draws what its handler returns.
    Only the analyses, the tour and the explanations reach the server; the live views never do."""

    def __init__(self, explorer: Explorer, named: Named):
        self.explorer, self.named, self.handlers = explorer, named, Handlers(explorer)

    def components(self, names: Sequence[str]) -> list[Any]:
        return [self.named[name] for name in names]

    def on(self, trigger, parse, handler, inputs: Sequence[str], outputs: Sequence[str],
           specials: Sequence[str] = (), **options):
        """``trigger`` (an event listener) runs ``handler`` on the request ``parse`` makes of ``inputs``."""
        return trigger(event_function(parse, handler, inputs, outputs, specials), self.components(inputs),
                       self.components(outputs), **options)

    def tour_request(self, key, controls):
        selection = selection_of(controls)
        return self.explorer.tour_request(key, selection.get("scale"), selection.get("colormap"),
                                          selection.get("opacity"))

    def analyses(self) -> None:
        """Analyse runs the model; the browser then fetches its maps, and the server draws the tour."""
        limits, handlers = self.explorer.limits, self.handlers

        def analysing(upload_name: str, resolution_name: str):
            return lambda session, **values: analyse_request(values[upload_name], values[resolution_name],
                                                             limits.max_pixels, session.session_hash)

        self.on(self.named["analyse"].click, analysing("upload", "resolution"), handlers.analyse,
                           ["upload", "resolution"], ANALYSIS_OUTPUTS, ["session", "progress"], api_name="analyse",
                           concurrency_limit=limits.concurrent_analyses, show_progress_on=[self.named["status"]])
        # The tour is drawn once the browser has drawn the live views (it asks, by submitting the controls), so
        # that its pictures do not hold up the first gallery; and again on a new drawing style.
        self.on(self.named["controls"].submit, self.tour_request, handlers.tour, ["key", "controls"], TOUR_NAMES,
                api_name=False)

        def second(session, second_upload, upload, second_resolution):
            return analyse_request(second_upload if second_upload is not None else upload, second_resolution,
                                   limits.max_pixels, session.session_hash)

        self.on(self.named["second_analyse"].click, second, handlers.analyse_second,
                ["second_upload", "upload", "second_resolution"], ["live_compare", "second_status", "second_key"],
                ["session", "progress"], api_name=False, concurrency_limit=limits.concurrent_analyses,
                show_progress_on=[self.named["second_status"]])

    def explanations_and_export(self) -> None:
        named, handlers, limits, explorer = self.named, self.handlers, self.explorer.limits, self.explorer
        named["method"].change(method_controls, named["method"],
                               self.components(["target_class", "stage_choice", "importance_plot"]), api_name=False)

        def explaining(key, method, target_class, stage_choice, controls):
            selection = selection_of(controls)
            return explorer.explain_request(key, method, target_class, stage_choice, selection.get("scale"),
                                            selection.get("colormap"), selection.get("opacity"))

        self.on(named["explain_button"].click, explaining, handlers.explain,
                ["key", "method", "target_class", "stage_choice", "controls"], catalogue.names_of("explain"), ["progress"],
                api_name=False, concurrency_limit=limits.concurrent_explanations)
        self.on(named["export_button"].click, explorer.export_request, handlers.export,
                ["key", "controls", "second_key"], ["export_file"], api_name=False)

    def atlas(self) -> None:
        """The Atlas tab: a token chosen there, or the one picked in the explorer (its block and token)."""
        named, explorer = self.named, self.explorer
        if "atlas_show" not in named:
            return
        outputs = api.ATLAS_OUTPUTS
        def chosen(atlas_block, atlas_token, controls):
            return explorer.atlas_request(atlas_block, atlas_token, controls)

        self.on(named["atlas_show"].click, chosen, self.handlers.atlas,
                ["atlas_block", "atlas_token", "controls"], outputs, api_name=False)  # the API's is in viewer/api.py
        self.on(named["atlas_picked"].click, lambda controls: explorer.atlas_request(None, None, controls),
                self.handlers.atlas, ["controls"], outputs, api_name=False)


def build_demo(explorer: Explorer) -> gr.Blocks:
    """The page, with its queue set to the explorer's limits, and the API's endpoints for headless use."""
    bundle = explorer.bundle
    with gr.Blocks(title="Dual-ViT Explorer") as demo:
        named = Header.render(bundle) | ImagePanel.render(bundle) | Controls.render()
        tabs, links = render_tabs(explorer)
        named |= tabs
        wiring = Wiring(explorer, named)
        wiring.analyses()
        wiring.explanations_and_export()
        wiring.atlas()
        for link, tab in links:
            link.click(lambda tab=tab: gr.Tabs(selected=tab), None, named["tabs"], api_name=False)
        api.register(explorer, wiring.handlers)
    # Views are drawn in the browser; only analyses and explanations run the model.
    demo.queue(default_concurrency_limit=explorer.limits.concurrent_analyses, max_size=explorer.limits.queue_size)
    return demo
