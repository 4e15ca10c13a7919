"""The API for headless use: every view drawn on the server, as the export draws it, from the session's
latest analysis (``/analyse`` first; then ``/token_gallery``, ``/token_detail``, ``/pixel_view``,
``/stages_view``, ``/tour``, ``/explain``, ``/export``).

The page itself draws these views in the browser (``viewer/static/``); the same renderer serves the API,
the export and scripts, so a figure made here is the one the page shows. Each endpoint's values are
checked by :mod:`viewer.requests`, as the page's are.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

import gradio as gr
import plotly.graph_objects as go
from gradio.data_classes import FileData

from viewer import catalogue, render
from viewer.handlers import TOUR_NAMES, Handlers, answering
from viewer.live import COLORMAPS
from viewer.requests import MEAN_OF_TOKENS, ExportRequest
from viewer.service import Explorer

Scale = Literal[tuple(render.SCALES)]
Colormap = Literal[COLORMAPS]


def plot_value(figure: go.Figure | None) -> dict | None:
    """A figure as gr.Plot sends it."""
    return None if figure is None else {"type": "plotly", "plot": figure.to_json()}


def ordered(values: dict[str, Any], names: list[str]) -> tuple:
    return tuple(plot_value(values[name]) if isinstance(values[name], go.Figure) else values[name] for name in names)


# The Atlas tab's values, in the order its event (and this API) returns them.
ATLAS_OUTPUTS = ["atlas_block", "atlas_token", *catalogue.names_of("atlas")]


def register(explorer: Explorer, handlers: Handlers) -> None:
    """The API's endpoints, inside the page's Blocks."""

    def key_of(request: gr.Request) -> str | None:
        return explorer.cache.latest_of(request.session_hash)

    def views(block_label: str, fusion: str, scale: Scale, colormap: Colormap, opacity: float, request: gr.Request,
              endpoint: str, **selection: Any) -> tuple:
        with answering():
            asked = explorer.view_request(key_of(request), block_label, fusion, scale, colormap, opacity, **selection)
            return ordered(getattr(handlers, endpoint)(asked), catalogue.names_of(endpoint))

    def token_gallery(block_label: str, fusion: str, scale: Scale, colormap: Colormap, opacity: float,
                      request: gr.Request) -> str:
        """Every token's map at a block, as tiles (HTML)."""
        return views(block_label, fusion, scale, colormap, opacity, request, "token_gallery")[0]

    def token_detail(block_label: str, fusion: str, scale: Scale, colormap: Colormap, opacity: float, token: float,
                     request: gr.Request) -> tuple[str, str, str]:
        """One token large, its statistics, and the token through every block."""
        return views(block_label, fusion, scale, colormap, opacity, request, "token_detail", token=token)

    def pixel_view(block_label: str, fusion: str, scale: Scale, colormap: Colormap, opacity: float,
                   point: Optional[list[float]], request: gr.Request) -> tuple[str, str, dict, str, str]:
        """What the pixel at ``point`` (display pixels; None: the centre) reads, its top tokens, the ownership."""
        return views(block_label, fusion, scale, colormap, opacity, request, "pixel_view", point=point)

    def stages_view(block_label: str, fusion: str, scale: Scale, colormap: Colormap, opacity: float,
                    token_choice: str, request: gr.Request) -> tuple[str, str, dict, dict]:
        """The stages (one token, or "mean over tokens"), the class attention, the tokens' own attention."""
        return views(block_label, fusion, scale, colormap, opacity, request, "stages_view", stage_token=token_choice)

    def tour(scale: Scale, colormap: Colormap, opacity: float, request: gr.Request) -> tuple:
        """The tour's seven pictures, then its seven texts."""
        with answering():
            return ordered(handlers.tour(explorer.tour_request(key_of(request), scale, colormap, opacity)), TOUR_NAMES)

    def explain(method: str, class_name: Optional[str], stage: float, scale: Scale, colormap: Colormap,
                opacity: float, request: gr.Request) -> tuple[str, str, str, Optional[dict]]:
        """An explanation method (``dual_rollout`` asks for no class) for the class named."""
        with answering():
            explained = explorer.explain_request(key_of(request), method, class_name, stage, scale, colormap, opacity)
            return ordered(handlers.explain(explained, lambda *_arguments, **_options: None),
                           catalogue.names_of("explain"))

    def export(block_label: str, fusion: str, scale: Scale, colormap: Colormap, opacity: float, token: float,
               point: Optional[list[float]], request: gr.Request, token_choice: str = MEAN_OF_TOKENS) -> FileData:
        """Every exported view (PNG, SVG, PDF; the Stages figure for ``token_choice``), the plots as offline HTML,
        the tour as a deck, the animations, the trace and the settings, in one zip."""
        with answering():
            view = explorer.view_request(key_of(request), block_label, fusion, scale, colormap, opacity, token=token,
                                         point=point, stage_token=token_choice)
            return FileData(path=handlers.export(ExportRequest(view))["export_file"],
                            orig_name="dualvit_explorer_export.zip")

    def atlas(block_label: str, token: float, request: gr.Request) -> tuple:
        """A token of the atlas the app was started with: its block and number back, what it does across the
        dataset in words, its examples (HTML), its lifts and classes (plots), each block's reading."""
        with answering():
            return ordered(handlers.atlas(explorer.atlas_request(block_label, token, {})), ATLAS_OUTPUTS)

    for endpoint in (token_gallery, token_detail, pixel_view, stages_view, tour, explain, export, atlas):
        concurrency = explorer.limits.concurrent_explanations if endpoint is explain else "default"
        gr.api(endpoint, api_name=endpoint.__name__, concurrency_limit=concurrency)
