"""The Atlas tab's views, drawn from an atlas folder (:mod:`atlas.files`): a token's dataset examples with its map
over each and its crop boxed, where its mass lies against its home cell and against objects, the classes it
serves, and each block's reading of semantic or positional tokens. No Gradio here."""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import plotly.graph_objects as go
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from atlas.files import LIFT, ROLES
from model.preprocess import Geometry
from viewer import figures, overlay, render
from viewer.keys import ColourKey
from viewer.levels import StoredMap

BOX_COLOUR = (0, 220, 255)
ROLE_COLOURS = dict(zip(ROLES, ("#e4572e", "#4c78a8", "#9aa5b1")))


class Atlas:
    """An atlas folder, read once: its tables and what it was built from."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.meta = json.loads((folder / "meta.json").read_text())
        self.tokens = pq.read_table(folder / "tokens.parquet")
        self.examples = pq.read_table(folder / "examples.parquet")
        self.class_maps = pq.read_table(folder / "class_maps.parquet")
        images = pq.read_table(folder / "images.parquet").to_pylist()
        self.image_classes = {image["image"]: image.get("classes") or [] for image in images}

    @cached_property
    def blocks(self) -> list[str]:
        return [block["block"] for block in self.meta["blocks"]]

    def rows(self, table, block: str, token: int) -> list[dict]:
        return table.filter(pc.and_(pc.equal(table["block"], block), pc.equal(table["token"], token))).to_pylist()

    def thumbnail(self, image: int) -> np.ndarray:
        return np.asarray(Image.open(self.folder / "thumbs" / f"{image}.jpg").convert("RGB"))

    def token_count(self, block: str) -> int:
        return next(summary["tokens"] for summary in self.meta["blocks"] if summary["block"] == block)

    def describes(self, weights_sha256: str) -> bool:
        return self.meta["weights_sha256"] == weights_sha256


SHIPPED_ATLAS = Path(__file__).parents[1] / "assets" / "atlas"


def open_atlas(folder: str | Path | None) -> Atlas | None:
    """The atlas in ``folder``; None given, the one shipped in assets/atlas (None where there is none)."""
    if folder is None:
        return Atlas(SHIPPED_ATLAS) if (SHIPPED_ATLAS / "meta.json").exists() else None
    return Atlas(Path(folder))


@dataclass(frozen=True)
class AtlasEntry:
    said: str  # Markdown: the token's figures in words
    examples: render.Tiles
    lifts: go.Figure
    classes: go.Figure | None


def citation(atlas: Atlas) -> Callable[[str, int], str]:
    """What the atlas says a token does across its dataset, in a sentence for the tour ("" where it holds nothing)."""
    def said(block: str, token: int) -> str:
        rows = atlas.rows(atlas.tokens, block, token) if block in atlas.blocks else []
        if not rows:
            return ""
        row = rows[0]
        role = row["role"] if row["role"] != "neither" else "neither follows objects nor stays near home"
        # Said of the atlas's own images (its source), so that on another image it is not read as a claim about it.
        images = "held-out generated scenes" if atlas.meta["source"].startswith("scenes:") else "images"
        sentence = (f"Across the atlas's {row['images']:,} {images}, token {token} at {block} {role}: "
                    f"{render.share(row['home_share'])} of its mass falls in its home cell")
        if row["object_share"] is not None and np.isfinite(row["object_share"]):
            sentence += (f", {render.share(row['object_share'])} on objects ({row['object_lift']:.1f}× their share "
                         "of the image)")
        return sentence + "."
    return said


def example_tiles(atlas: Atlas, block: str, token: int, kind: str, style: render.Style) -> render.Tiles:
    """The token's top images, its map drawn over each as the page draws maps (against uniform attention, each to
    its own peak) and the crop holding the most of its mass boxed in cyan."""
    rows = sorted(atlas.rows(atlas.examples, block, token), key=lambda row: row["rank"])
    tiles, maps = [], []
    per_map = render.Style(style.colormap, style.opacity, "per map")
    for row in rows:
        thumbnail = atlas.thumbnail(row["image"])
        height, width = thumbnail.shape[:2]
        side = atlas.meta["resolution"]
        geometry = Geometry((width, height), (side, side), (0, 0, side, side))
        grid = tuple(row["grid"])
        cells = np.frombuffer(row["cells"], np.uint8).reshape(grid).astype(np.float64)
        values = cells / 255 * row["peak"]
        # Uniform attention: over the stage's pixels, and in a Merge block over the tokens too.
        uniform = 1 / (grid[0] * grid[1] + (atlas.token_count(block) if kind == "merge" else 0))
        stored = StoredMap.of_attention(values, uniform)
        maps.append(stored)
        drawn, _ = render.draw_maps_on(thumbnail, geometry, [stored], per_map, small=True)
        left, top, right, bottom = (round(v * width / side) for v in row["box"])
        image = drawn[0].copy()
        overlay.frame(image, (left, top, right - 1, bottom - 1), 2, BOX_COLOUR)
        holds = ", ".join(name.replace("_", " ") for name in atlas.image_classes.get(row["image"], []))
        tiles.append(render.Tile(image, f"{row['name']}{f' ({holds})' if holds else ''}: "
                                        f"{render.share(row['score'])} of its mass in the box"))
    # Each map to its own peak: one key for them all says so.
    key = render.continuous_key(maps, per_map, None, True, geometry) if maps else ColourKey(render.ATTENTION,
                                                                                          style.colormap)
    note = f"{key.note}; cyan box: the crop a quarter of the image a side holding the most of the token's mass"
    return render.Tiles(tiles, replace(key, note=note))


def entry(atlas: Atlas, block: str, token: int, style: render.Style) -> AtlasEntry:
    (row,) = atlas.rows(atlas.tokens, block, token)
    images = row["images"]
    said = (f"**Token {token} at {block}, across {images:,} images** ({atlas.meta['source']}): its role there: "
            f"**{row['role']}**. Half of its mass lies on {render.share(row['spread'])} of an image on average; "
            f"{render.share(row['home_share'])} of it falls in its home cell ({row['home_lift']:.1f}× what uniform "
            f"attention would put there), its mass lies {row['home_distance']:.1f} home cells from home on average")
    if row["object_share"] is not None and np.isfinite(row["object_share"]):
        said += (f", and {render.share(row['object_share'])} of it falls on objects ({row['object_lift']:.1f}× their "
                 "share of the image)")
    said += "."
    summary = next(block_summary for block_summary in atlas.meta["blocks"] if block_summary["block"] == block)
    lifts = lift_figure(row, summary)
    classes = None
    shares = row["class_share"]
    if shares is not None and any(share is not None and np.isfinite(share) for share in shares):
        classes = class_figure(atlas.meta["classes"], shares, token)
    return AtlasEntry(said, example_tiles(atlas, block, token, row["kind"], style), lifts, classes)


def lift_figure(row: dict, summary: dict) -> go.Figure:
    """The token's home lift and object lift, beside the block's medians, against uniform attention (1)."""
    names = ["near home", "on objects"]
    token_values = [row["home_lift"], row["object_lift"]]
    medians = [summary["median_home_lift"], summary["median_object_lift"]]
    figure = go.Figure([go.Bar(name=f"token {row['token']}", x=names, y=token_values, marker_color=figures.HIGHLIGHT),
                        go.Bar(name="the block's median", x=names, y=medians, marker_color=figures.MUTED)])
    figure.add_hline(y=1.0, line_dash="dot", annotation_text="uniform attention", annotation_position="top left")
    figure.update_layout(title="Home or objects: mass against uniform attention", barmode="group",
                         yaxis_title="× what uniform attention puts there", **figures.LAYOUT)
    return figure


def class_figure(class_names: list[str], shares: list[float | None], token: int) -> go.Figure:
    """The share of the token's mass on objects of each class, over the images holding one."""
    values = [share if share is not None and np.isfinite(share) else 0.0 for share in shares]
    return figures.named_bars([name.replace("_", " ") for name in class_names], values,
                              f"Token {token}: its mass on each class's objects",
                              "share of its mass (images holding the class)")


def summary_figure(atlas: Atlas) -> go.Figure:
    """For each block, how many tokens follow objects, stay near home, or neither."""
    summaries = atlas.meta["blocks"]
    labels = [summary["block"].replace(" · ", "<br>") for summary in summaries]
    figure = go.Figure([go.Bar(name=role, x=labels, y=[summary[role] for summary in summaries],
                               marker_color=ROLE_COLOURS[role]) for role in ROLES])
    figure.update_layout(title="Semantic or positional? Tokens of each block", barmode="stack",
                         yaxis_title="tokens", legend=dict(orientation="h", y=-0.25), **figures.LAYOUT)
    return figure


def summary_said(atlas: Atlas) -> str:
    """The blocks' reading in plain words."""
    lines = [f"Across {atlas.meta['built_images']:,} images ({atlas.meta['source']}), a token **follows objects** "
             f"where its share of mass on objects is at least {LIFT:g} times their share of the image and stands out "
             f"more than its home cell; it **stays near home** where its home cell holds at least {LIFT:g} times "
             "the mass uniform attention would put there."]
    for summary in atlas.meta["blocks"]:
        lines.append(f"- {summary['block']}: {summary[ROLES[0]]} of {summary['tokens']} tokens follow objects, "
                     f"{summary[ROLES[1]]} stay near home, {summary[ROLES[2]]} neither.")
    return "\n".join(lines)
