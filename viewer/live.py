"""The live explorer's place in the server: the routes that serve its scripts (``viewer/static/``) and each
analysis's maps (:mod:`viewer.payload`), and the page parts that mount it.

An analysis's maps are built once, in the background as soon as it is made, and kept beside it in the
cache; the browser fetches them by the analysis's key (an unguessable uuid) and draws every live view from
them. Another fusion of one block's heads is built when asked for.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import gradio as gr
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from viewer import catalogue, export, overlay
from viewer.errors import UserError
from viewer.help_texts import EXPLANATIONS
from viewer.http_guard import UploadGuard
from viewer.service import Explorer

STATIC = Path(__file__).parent / "static"
SCRIPTS = "explorer-static"
DATA = "explorer-data"
FIGURES = "explorer-figure"  # one picture of the page as a file: /explorer-figure/{key}/{view name}.{png|svg|pdf}
FIGURE_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
COLORMAPS = tuple(overlay.COLORMAPS)
# Each live part imports the explorer module (relative to the page, so that a Space served under a path of
# its own finds it); the module is loaded once and shared.
MOUNT_JS = (f"import(new URL('{SCRIPTS}/explorer.js', document.baseURI).href)"
            ".then((module) => module.mount(element, props, watch, trigger));")


def data_url(key: str) -> str:
    """Where the browser fetches an analysis's maps (relative to the page)."""
    return f"{DATA}/{key}"


def part(role: str, elem_id: str, **props: Any) -> gr.HTML:
    """A part of the page the browser draws: ``role`` names it (``controls``, or a live tab); a tab's views
    come from the catalogue."""
    views = [{"name": view.name, "title": view.title, "help": help_text(view), "elemId": view.elem_id,
              "beside": view.beside, "form": view.form, "downloadable": view.downloadable} for view in catalogue.views_on(role)]
    return gr.HTML(value=None, html_template='<div class="dvx-root"></div>', js_on_load=MOUNT_JS, elem_id=elem_id,
                   elem_classes=["dvx-part"], role=role, views=views, apply_default_css=False, **props)


def help_text(view: catalogue.View) -> str:
    return EXPLANATIONS.get(view.help, "") if view.help else ""


def app_kwargs(explorer: Explorer) -> dict[str, Any]:
    """The FastAPI settings of every server of the page: its upload guard and the live explorer's routes."""
    def served(build: Callable[[], bytes]) -> Response:
        try:
            data = build()
        except UserError as error:
            return JSONResponse({"detail": str(error)}, status_code=404)
        return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "private, max-age=3600"})

    def analysis_maps(request: Request) -> Response:
        return served(lambda: explorer.payload(request.path_params["key"]))

    def block_maps(request: Request) -> Response:
        asked = request.path_params
        return served(lambda: explorer.block_payload(asked["key"], asked["stage"], asked["block"], asked["fusion"]))

    def figure(request: Request) -> Response:
        asked = request.path_params
        response = served(lambda: export.figure_file(explorer, asked["key"], asked["name"], asked["format"],
                                                     dict(request.query_params)))
        if response.status_code == 200:
            file_name = f"{asked['name']}.{asked['format']}"
            response.headers["Content-Type"] = FIGURE_TYPES[asked["format"]]
            response.headers["Content-Disposition"] = f'attachment; filename="{file_name}"'
        return response

    routes = [Mount(f"/{SCRIPTS}", StaticFiles(directory=STATIC), name="explorer-scripts"),
              Route(f"/{FIGURES}/{{key}}/{{name}}.{{format}}", figure),
              Route(f"/{DATA}/{{key}}", analysis_maps),
              Route(f"/{DATA}/{{key}}/{{stage:int}}/{{block:int}}/{{fusion}}", block_maps)]
    return {"middleware": [Middleware(UploadGuard)], "routes": routes}


LIVE_CSS = """
.dvx-part {padding: 0;}
.dvx-controls {display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end; margin: 4px 0;}
.dvx-controls label, .dvx-select, .dvx-token-box {display: flex; flex-direction: column; font-size: 0.85rem; gap: 2px;
  color: var(--body-text-color);}
.dvx-controls select, .dvx-select select, .dvx-select input, .dvx-token-box input {min-width: 9em; padding: 4px 6px;
  border: 1px solid var(--border-color-primary); border-radius: 4px; background: var(--input-background-fill);
  color: var(--body-text-color); font-size: 0.95rem;}
.dvx-controls select[data-control="block"] {min-width: 13em;}
.dvx-controls select, .dvx-select select {appearance: auto; -webkit-appearance: menulist; cursor: pointer;}
/* On a wide screen the controls stay in sight while the views below them scroll. */
@media (min-width: 821px) {#controls {position: sticky; top: 0; z-index: 30; background: var(--background-fill-primary);
  box-shadow: 0 1px 0 var(--border-color-primary);}}
.dvx-opacity {min-width: 10em;}
.dvx-opacity output {font-variant-numeric: tabular-nums;}
.dvx-row {display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; margin-bottom: 8px;}
.dvx-row > .dvx-view {flex: 1 1 320px; min-width: 0;}
.dvx-title {margin: 8px 0 4px; font-size: 1rem;}
.dvx-help {font-size: 0.9rem;}
.dvx-frame {position: relative; container-type: inline-size; max-width: 640px; line-height: 0;}
.dvx-frame canvas, .dvx-frame img {width: 100%; height: auto; display: block;}
.dvx-frame .dvx-marker {position: absolute; inset: 0; touch-action: none;}
.dvx-picture .dvx-frame canvas {touch-action: none;}
.dvx-labels {position: absolute; inset: 0; pointer-events: none;}
.dvx-labels span {position: absolute; transform: translate(-50%, -50%); color: #fff; font-weight: 700; line-height: 1;
  text-shadow: 0 0 3px #000, 0 0 2px #000, 0 0 1px #000;}
.dvx-readout {min-height: 1.4em; margin: 4px 0; font-size: 0.9rem; color: var(--body-text-color);}
.dvx-tiles .tile canvas {width: 100%; height: auto; display: block; image-rendering: auto;}
.dvx-tiles.on-home-grid {gap: 2px;}
.dvx-tiles.on-home-grid .tile-caption {font-size: 0.65rem;}
.dvx-tiles.on-home-grid .caption-word {display: none;}
.dvx-tile.selected {outline: 3px solid var(--color-accent); outline-offset: 1px;}
.dvx-tile.hovered {outline: 2px dashed var(--color-accent); outline-offset: 1px;}
.dvx-tiles:focus-visible {outline: 3px solid var(--color-accent); outline-offset: 4px;}
.dvx-tile:focus-visible {outline: 3px solid #1d4ed8; outline-offset: 2px;}
.dvx-chart {width: 100%; display: block;}
.dvx-heatmap {display: block; max-width: 100%;}
.dvx-error {color: #b91c1c;}
.dvx-compare-controls {display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: end;}
.dvx-compare-said {font-size: 0.9rem;}
.dvx-title-line {margin: 2px 0; font-size: 0.9rem; font-weight: 600;}
.dvx-download, .picture-download {display: flex; flex-wrap: wrap; gap: 4px 10px; align-items: center; font-size: 0.8rem;
  margin: 2px 0 6px; color: var(--body-text-color);}
.dvx-download a, .picture-download a, .dvx-atlas-link a {color: var(--link-text-color, #1d4ed8);
  text-decoration: underline;}
"""
