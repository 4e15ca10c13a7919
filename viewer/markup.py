"""HTML for the page's pictures: each image inline with its colour key, tiles in a grid that reflows.

Pure strings, no Gradio. One payload per view: a gallery of 64 tiles arrives as one HTML value
instead of 64 image requests, and CSS lays the tiles out to the width of the screen.
"""
from __future__ import annotations

import base64
import html
import json
from typing import Sequence

import cv2
import numpy as np

from viewer.keys import KEY_CSS, key_html
from viewer.render import Picture, Readout, Tiles

JPEG_QUALITY = 90


def image_uri(image: np.ndarray) -> str:
    """An RGB uint8 image as a JPEG data URI."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("could not encode the picture")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def message_html(text: str) -> str:
    return f'<p class="view-message">{html.escape(text)}</p>' if text else ""


# What an ownership map's readout says until the pointer names a spot.
OWNER_PROMPT = "hover or tap a region to name its token"


def picture_html(picture: Picture, alt: str, owners: np.ndarray | None = None) -> str:
    """The picture with its key under it; a picture without an image shows its message instead.

    A map picture carries its stored map, so that the page reads the value under the pointer (its readout);
    ``owners`` (rows, columns) int, aligned with the image: hovering or tapping names the token owning the spot.
    """
    if picture.image is None:
        return f'<figure class="view-picture">{message_html(picture.message or "Nothing to draw.")}</figure>'
    data = readout_attributes(picture.readout) if picture.readout is not None else ""
    if owners is not None:
        rows, columns = owners.shape
        data += (f' data-owner-rows="{rows}" data-owner-columns="{columns}"'
                 f' data-owners="{",".join(str(int(v)) for v in owners.ravel())}"')
    key = key_html(picture.key) if picture.key is not None else ""
    prompt = OWNER_PROMPT if owners is not None else ""
    return (f'<figure class="view-picture"{data}><img src="{image_uri(picture.image)}" alt="{html.escape(alt)}">'
            f'<span class="owner-readout dvx-readout">{prompt}</span>{key}{message_html(picture.message)}</figure>')


def download_links(url: str, formats: Sequence[str], said: str) -> str:
    """Links that download a picture as a figure: ``url`` with ``{format}`` where each format goes."""
    links = "".join(f'<a href="{html.escape(url.format(format=name))}" download>{name.upper()}</a>' for name in formats)
    return f'<div class="picture-download"><span>{html.escape(said)}</span>{links}</div>'


def readout_attributes(readout: Readout) -> str:
    """The stored map (base64 bytes, its grid, top, uniform weight and total) and the picture's cell lookup."""
    stored = readout.stored

    def packed(array: np.ndarray) -> str:
        return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")

    uniform = "" if stored.uniform is None else repr(stored.uniform)
    return (f' data-cells="{packed(stored.cells)}" data-grid="{stored.shape[0]},{stored.shape[1]}"'
            f' data-top="{stored.top!r}" data-uniform="{uniform}" data-total="{stored.total!r}"'
            f' data-rows="{packed(readout.rows.astype(np.int16))}" data-columns="{packed(readout.columns.astype(np.int16))}"')


def tiles_html(tiles: Tiles, selectable: bool = False, wide: bool = False, label: str = "") -> str:
    """Their key, then the tiles in a grid that fits the screen's width, keeping each image's aspect.

    The key comes first: under 64 tiles it sat a screen or more below the first ones on a phone.

    ``wide``: fewer, larger tiles (a handful of maps with longer captions); ``label`` names what
    the grid shows (e.g. its block), for readers and for scripts that wait for it."""
    cells = []
    for tile in tiles.tiles:
        token = f' data-token="{tile.token}"' if tile.token is not None else ""
        tag = "button" if selectable and tile.token is not None else "div"
        kind = ' type="button"' if tag == "button" else ""
        cells.append(f'<{tag}{kind} class="tile"{token} title="{html.escape(tile.caption)}">'
                     f'<img src="{image_uri(tile.image)}" alt="{html.escape(tile.caption)}">'
                     f'<span class="tile-caption">{html.escape(tile.caption)}</span></{tag}>')
    grid_class = "tile-grid wide" if wide else "tile-grid"
    named = f' aria-label="{html.escape(label)}"' if label else ""
    return f'{key_html(tiles.key)}<div class="{grid_class}"{named}>{"".join(cells)}</div>'


# Clicking a tile of a server-drawn view picks its token in the live explorer and opens the token's tab.
PICK_TILE_JS = """
element.addEventListener('click', (event) => {
  const tile = event.target.closest('.tile[data-token]');
  const explorer = window.dualvitExplorer;
  if (!tile || !explorer) return;
  explorer.store.set({token: Number(tile.dataset.token), hoverToken: null});
  explorer.ctx.openTab('tokens');
});
"""
# A server-drawn map reads out the value under the pointer, and an ownership map names the owner of the spot.
PICTURE_JS = ("import(new URL('explorer-static/readout.js', document.baseURI).href)"
              ".then((module) => module.attach(element, " + json.dumps(OWNER_PROMPT) + "));")

PAGE_CSS = KEY_CSS + """
.tile-grid {display: grid; grid-template-columns: repeat(auto-fill, minmax(96px, 1fr)); gap: 4px; width: 100%;}
.tile-grid.wide {grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));}
/* A phone has room for two of the larger tiles a row, each near its picture's own size. */
@media (max-width: 480px) {.tile-grid.wide {grid-template-columns: repeat(2, minmax(0, 1fr));}}
.tile {display: flex; flex-direction: column; padding: 0; margin: 0; border: 0; background: none;
  color: var(--body-text-color); cursor: default; min-width: 0;}
button.tile {cursor: pointer;}
.tile img {width: 100%; height: auto; display: block;}
.tile-caption {font-size: 0.75rem; text-align: center; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis;}
.tile-grid.wide .tile-caption {white-space: normal;}  /* the larger tiles' longer captions wrap, not cut */
.view-picture {margin: 0;}
.view-picture img {width: 100%; max-width: 640px; height: auto; display: block;}
.view-message {padding: 8px 12px; border-left: 4px solid var(--color-accent); background: var(--block-background-fill);
  color: var(--body-text-color);}
.owner-readout {display: block; font-size: 0.85rem; min-height: 1.3em; color: var(--body-text-color);}
"""
