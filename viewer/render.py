"""Each view of the explorer drawn from an analysis: images, captions and figures, no Gradio.

The page (viewer.ui) and the headless export (viewer.export) both draw through these functions,
so a figure in teaching material is exactly what the page shows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import cv2
import numpy as np
import plotly.graph_objects as go

from analysis import attribution, trace_maths
from analysis.explanations import ExplanationMethod
from model.preprocess import Geometry
from viewer import figures, help_texts, levels, overlay
from viewer.analysed import Analysis
from viewer.keys import ColourKey
from viewer.levels import StoredMap

TOP_TOKENS = 4
TOP_IMPORTANT_TOKENS = 8
OWNERSHIP_SWATCHES = 12
ATTENTION = "attention weight"

# How a map's values become colours. Tiles compared for *where* they look each get their own
# range; a shared range compares *how much*; the mass view shows where a peaked map's mass lies.
# Attention is read against uniform attention (viewer.levels): a map no more peaked than uniform is
# drawn faint on every scale.
SCALES: dict[str, str] = {
    "per map": "each map from uniform attention to its own peak (at least 4× uniform), its half-mass region "
               "outlined",
    "shared": "one range for the maps shown together, from uniform attention to their common peak",
    "mass": "the smallest regions holding 50%, 80% and 95% of each map's mass, as strong as the map stands out",
}
DEFAULT_SCALE = "per map"
HOME_COLOUR = (0, 220, 255)
HALF_MASS_NOTE = "outline: the fewest cells holding half of the map's mass"
SIGNED_HALF_MASS_NOTE = "outline: the fewest cells holding half of the map's positive mass"
UNIFORM_NOTE = "no colour at uniform attention (every key weighted alike)"
# Tiles carry no outline: at tile size its halo covered a region of a cell or two, the heat inside it
# with it; the heat alone shows where each map looks.
TILE_NOTE = "tiles: the heat alone; a large picture outlines the fewest cells holding half of a map's mass"
CROPPED_NOTE = "dimmed bands at the edges: cropped away, not seen by the model"
SPREAD_NOTE = "half on N%: the share of the picture holding half of the map's mass"
HOME_NOTE = "cyan box: the token's home cell"
MASS_BANDS_NOTE = "bands as strong as the map stands above uniform attention"
OWNERSHIP_NOTE = ("numbers: the tokens listed here, where their region has room; neighbouring regions never share a "
                  "colour, and dark seams part them")


def noting_the_crop(note: str, geometry: Geometry) -> str:
    """A key's note, and what the dimmed bands are where the model saw only part of the image."""
    return "; ".join(part for part in (note, CROPPED_NOTE if geometry.crops else "") if part)


# At the peak a colour is blended this strongly over the photo: high enough that the peak's colour
# is the key's, not a mix with whatever the photo has there.
DEFAULT_OPACITY = 0.8


@dataclass(frozen=True)
class Style:
    colormap: str = "inferno"
    opacity: float = DEFAULT_OPACITY
    scale: str = DEFAULT_SCALE


@dataclass(frozen=True)
class Tile:
    image: np.ndarray
    caption: str
    token: int | None = None  # the semantic token a tile shows, when picking it means something


@dataclass(frozen=True)
class Readout:
    """What lies under the pointer on a map picture: its stored map and the cell under each row and column of
    the picture (-1 outside what the model saw), so the page reads a value without asking the server."""

    stored: StoredMap
    rows: np.ndarray
    columns: np.ndarray


@dataclass(frozen=True)
class Marks:
    """What a picture draws over its map, kept apart so that a vector figure draws it as lines and text: the
    picture without them (``plain``), the regions outlined (bool masks on a stage grid), the home cells
    framed (tokens), the numbers written ((text, x, y) centres in the picture's pixels) and the home grid."""

    plain: np.ndarray
    regions: tuple[np.ndarray, ...] = ()
    # A map's own layers: the photo as the picture shows it under the map, and the map's cells (h, w, 4) RGBA in
    # [0, 1] on the trace's grid, which a vector figure embeds at that resolution over the photo.
    photo: np.ndarray | None = None
    cells: np.ndarray | None = None
    home_cells: tuple[int, ...] = ()
    numbers: tuple[tuple[str, float, float], ...] = ()
    home_grid: bool = False


@dataclass(frozen=True)
class Picture:
    """One image and its key; ``message`` says in words what the image cannot (e.g. a blank map)."""

    image: np.ndarray | None
    key: ColourKey | None
    message: str = ""
    readout: Readout | None = None
    marks: Marks | None = None


@dataclass(frozen=True)
class Tiles:
    """Tiles drawn on one scale, with their one key."""

    tiles: list[Tile]
    key: ColourKey


@dataclass(frozen=True)
class TokenDetail:
    picture: Picture
    statistics: trace_maths.TokenStatistics
    filmstrip: Tiles


@dataclass(frozen=True)
class PixelView:
    marked: np.ndarray
    owner_map: Picture  # the map of the token the pixel reads most, with its home cell
    reads: np.ndarray
    reads_figure: go.Figure
    top_tokens: Tiles
    ownership: Picture
    owners: np.ndarray  # (rows, columns) int: the owning token over the displayed photo, coarse; -1 outside


@dataclass(frozen=True)
class StagesView:
    stages: Tiles
    class_attention: Picture
    semantic_self_figure: go.Figure
    merge_quadrants_figure: go.Figure


def block_maps(trace, ref: trace_maths.BlockRef, fusion: str = "mean") -> list[StoredMap]:
    """Every token's map in block ``ref``, stored for drawing (the browser receives the same bytes)."""
    return StoredMap.stack_of_attention(trace_maths.token_maps(trace, ref.stage, ref.block, fusion),
                                        trace_maths.uniform_weight(trace, ref))


def series_maps(trace, series: Sequence[tuple[trace_maths.BlockRef, np.ndarray]]) -> list[StoredMap]:
    return [StoredMap.of_attention(values, trace_maths.uniform_weight(trace, ref)) for ref, values in series]


def class_map(trace, fusion: str = "mean") -> StoredMap:
    return StoredMap.of_attention(trace_maths.class_attention_map(trace, fusion), trace_maths.class_uniform_weight(trace))


def painted_maps(maps: Sequence[StoredMap], style: Style, geometry: Geometry,
                 small: bool = False) -> tuple[list[overlay.Painted], ColourKey]:
    """Each map's cells as ``style.scale`` colours them (colours and blend weights), and their key."""
    if style.scale == "mass":
        painted = overlay.mass_paint([stored.mass for stored in maps], style.colormap, style.opacity,
                                     [stored.standing() for stored in maps])
        return painted, mass_key(style, TILE_NOTE if small else "outline: the 50% region", geometry)
    shared = levels.shared_top([stored.top for stored in maps]) \
        if style.scale == "shared" and all(stored.uniform is not None for stored in maps) else None
    painted = overlay.level_paint([stored.indices(shared) for stored in maps], style.colormap, style.opacity)
    return painted, continuous_key(maps, style, shared, small, geometry)


def draw_maps(analysis: Analysis, maps: Sequence[StoredMap], style: Style,
              small: bool = False) -> tuple[list[np.ndarray], ColourKey]:
    """The maps drawn over the photo in grey (or its thumbnail, ``small``: tiles) on ``style.scale``, and their
    key; no outline (:func:`draw_one` adds it)."""
    image, geometry = (analysis.thumbnail, analysis.thumbnail_geometry) if small else \
        (analysis.display, analysis.geometry)
    return draw_maps_on(image, geometry, maps, style, small)


def draw_maps_on(image: np.ndarray, geometry: Geometry, maps: Sequence[StoredMap], style: Style,
                 small: bool = False) -> tuple[list[np.ndarray], ColourKey]:
    """:func:`draw_maps` over any image cut by ``geometry`` (an atlas's thumbnails)."""
    painted, key = painted_maps(maps, style, geometry, small)
    return overlay.cell_overlays(overlay.backdrop(image), painted, [stored.shape for stored in maps], geometry), key


def mass_key(style: Style, note: str, geometry: Geometry) -> ColourKey:
    colours = overlay.band_colours(style.colormap, len(trace_maths.MASS_SHARES))
    swatches = tuple((f"{share:.0%}", colour) for share, colour in zip(trace_maths.MASS_SHARES, colours))
    note = f"{note}; {MASS_BANDS_NOTE}"
    return ColourKey("smallest region holding this share of the map's mass", style.colormap, swatches=swatches,
                     note=noting_the_crop(note, geometry))


def continuous_key(maps: Sequence[StoredMap], style: Style, shared: float | None, small: bool,
                   geometry: Geometry) -> ColourKey:
    """Attention from uniform to a top in multiples of uniform; an attribution from 0 to its peak."""
    if all(stored.uniform is not None for stored in maps):
        top = shared if shared is not None else maps[0].top if len(maps) == 1 else None
        high = f"{top:.3g}× uniform" if top is not None else \
            f"each map's own peak (at least {levels.TOP_AT_LEAST:g}× uniform)"
        note = "; ".join([TILE_NOTE if small else HALF_MASS_NOTE, UNIFORM_NOTE])
        return ColourKey(ATTENTION, style.colormap, low_label=uniform_label({stored.uniform for stored in maps}),
                         high_label=high, note=noting_the_crop(note, geometry))
    peak = maps[0].top if len(maps) == 1 else None
    return ColourKey("attribution", style.colormap, 0.0, peak,
                     note=noting_the_crop(TILE_NOTE if small else SIGNED_HALF_MASS_NOTE, geometry))


def uniform_label(uniforms: set[float]) -> str:
    """The low end of an attention key: uniform attention, with its weight where the maps share one (1/N over
    N keys; a Merge block's token maps count its pixels and tokens, so their peak may pass N times uniform of
    the pixels alone)."""
    return f"uniform (1/{round(1 / next(iter(uniforms)))})" if len(uniforms) == 1 else "uniform"


def draw_one(analysis: Analysis, stored: StoredMap, style: Style) -> Picture:
    """One map, large, its half-mass region outlined."""
    (painted,), key = painted_maps([stored], style, analysis.geometry)
    backdrop = overlay.backdrop(analysis.display)
    plain, photo = overlay.cell_overlays(backdrop, [painted, (painted[0], np.zeros_like(painted[1]))],
                                         [stored.shape] * 2, analysis.geometry)
    rows, columns = overlay.cell_lookup(stored.shape, analysis.geometry)
    region = stored.mass >= len(trace_maths.MASS_SHARES)
    cells = np.concatenate([painted[0] / 255.0, painted[1][:, None]], axis=1).reshape(*stored.shape, 4)
    return Picture(overlay.outline(plain, region, analysis.geometry), key, readout=Readout(stored, rows, columns),
                   marks=Marks(plain, regions=(region,), photo=photo, cells=cells))


def with_home_cell(picture: Picture, analysis: Analysis, token: int, note: str = HOME_NOTE) -> Picture:
    """The picture with ``token``'s home cell boxed in cyan, said in its key (``note``)."""
    image = overlay.home_box(picture.image, analysis.trace, token, analysis.geometry, HOME_COLOUR)
    key = replace(picture.key, note="; ".join(part for part in (picture.key.note, note) if part))
    marks = picture.marks or Marks(picture.image)
    return replace(picture, image=image, key=key, marks=replace(marks, home_cells=(*marks.home_cells, token)))


def token_tiles(analysis: Analysis, maps: Sequence[StoredMap], style: Style, captions: Sequence[str],
                tokens: Sequence[int | None]) -> Tiles:
    images, key = draw_maps(analysis, maps, style, small=True)
    return Tiles([Tile(image, caption, token) for image, caption, token in zip(images, captions, tokens)], key)


def spread_label(values: np.ndarray) -> str:
    """How spread a map is, in a caption: the share of the picture holding half of its mass."""
    area = trace_maths.area_holding(values, 0.5)
    return f"half on {share(area)}" if np.isfinite(area) else "no mass"


def series_tiles(analysis: Analysis, series: list[tuple[trace_maths.BlockRef, np.ndarray]], style: Style) -> Tiles:
    """One map per block, captioned with the block and how spread its map is: "per map" shares nothing
    across blocks, so a map spread over the whole picture fills the colour range as a peaked one does,
    and only the caption tells them apart."""
    tiles = token_tiles(analysis, series_maps(analysis.trace, series), style,
                        [f"{ref.label} · {spread_label(values)}" for ref, values in series], [None] * len(series))
    return replace(tiles, key=replace(tiles.key, note=f"{tiles.key.note}; {SPREAD_NOTE}"))


def token_gallery(analysis: Analysis, block: trace_maths.BlockRef, fusion: str, style: Style) -> Tiles:
    maps = block_maps(analysis.trace, block, fusion)
    return token_tiles(analysis, maps, style, [f"token {index}" for index in range(len(maps))],
                       list(range(len(maps))))


def token_picture(analysis: Analysis, block: trace_maths.BlockRef, fusion: str, style: Style, token: int) -> Picture:
    """One token's map at ``block``, large, outlined, its home cell boxed."""
    trace = analysis.trace
    token_map = trace_maths.token_maps(trace, block.stage, block.block, fusion)[token]
    picture = draw_one(analysis, StoredMap.of_attention(token_map, trace_maths.uniform_weight(trace, block)), style)
    return with_home_cell(picture, analysis, token)


def token_detail(analysis: Analysis, block: trace_maths.BlockRef, fusion: str, style: Style, token: int) -> TokenDetail:
    trace = analysis.trace
    token_map = trace_maths.token_maps(trace, block.stage, block.block, fusion)[token]
    filmstrip = series_tiles(analysis, trace_maths.token_filmstrip(trace, token, fusion), style)
    return TokenDetail(token_picture(analysis, block, fusion, style, token),
                       trace_maths.token_statistics(trace, token_map, token), filmstrip)


def centre_of(analysis: Analysis) -> tuple[float, float]:
    height, width = analysis.display.shape[:2]
    return width / 2, height / 2


def largest_owners(owner: np.ndarray) -> list[tuple[int, int]]:
    """(token, cells) of the tokens owning the most cells, at most ``OWNERSHIP_SWATCHES``, largest first
    (the lower token first on a tie): the ones the key lists and the map numbers."""
    tokens, counts = np.unique(owner, return_counts=True)
    order = np.argsort(-counts, kind="stable")[:OWNERSHIP_SWATCHES]
    return [(int(tokens[i]), int(counts[i])) for i in order]


def owner_colours(trace, owner: np.ndarray) -> np.ndarray:
    """Each token's colour (an index into overlay.OWNER_PALETTE), regions that touch apart."""
    return trace_maths.owner_colours(owner, trace.num_semantic, len(overlay.OWNER_PALETTE))


def ownership_key(owner: np.ndarray, colour_of: np.ndarray, style: Style) -> ColourKey:
    """Swatches of the tokens that own the most cells, in their colours, with their share of the image."""
    largest = largest_owners(owner)
    swatches = tuple((f"token {token} ({share(cells / owner.size)})", overlay.OWNER_PALETTE[colour_of[token]])
                     for token, cells in largest)
    rest = len(np.unique(owner)) - len(largest)
    note = OWNERSHIP_NOTE + (f"; {rest} more tokens own smaller regions" if rest > 0 else "")
    return ColourKey("owner (share of the image)", style.colormap, swatches=swatches, note=note)


def ownership_picture(analysis: Analysis, owner: np.ndarray, style: Style, numbered: bool = True) -> Picture:
    """The ownership map over the display image in grey (the photo's own colours would be read as owners'),
    the largest owners numbered (``numbered``), with its key."""
    colour_of = owner_colours(analysis.trace, owner)
    plain = overlay.ownership_overlay(overlay.backdrop(analysis.display), owner, colour_of, analysis.geometry,
                                      opacity=style.opacity)
    numbers = overlay.number_places(plain.shape, owner, [token for token, _ in largest_owners(owner)],
                                    analysis.geometry) if numbered else []
    key = ownership_key(owner, colour_of, style)
    return Picture(overlay.write_numbers(plain, numbers), replace(key, note=noting_the_crop(key.note, analysis.geometry)),
                   marks=Marks(plain, numbers=tuple(numbers)))


# Owners sent for hovering over an ownership map: at most this many cells a side.
OWNER_LOOKUP_SIDE = 96


def owner_lookup(owner: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A coarse copy of an owner map (a stage grid) on the display image, -1 outside what the model saw,
    small enough to send with the page so that hovering or tapping names the owner."""
    owner_on_display = overlay.to_original(owner.astype(np.float32), geometry)
    height, width = owner_on_display.shape
    scale = min(1.0, OWNER_LOOKUP_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    owners = np.nan_to_num(np.asarray(owner_on_display, np.float32), nan=-1.0)  # -1: outside what the model saw
    return cv2.resize(owners, size, interpolation=cv2.INTER_NEAREST).astype(np.int64)


def top_tokens(reads: np.ndarray) -> list[int]:
    """The tokens a pixel reads most, most first (the lower token first on a tie)."""
    return [int(index) for index in np.argsort(-reads, kind="stable")[:TOP_TOKENS]]


def reads_at(analysis: Analysis, block: trace_maths.BlockRef, fusion: str, point: tuple[float, float]) -> np.ndarray:
    """What the pixel under ``point`` (display pixels) reads from each token: the cell drawn under that pixel of
    the display copy, as the browser finds it; off what the model saw, the nearest cell (the clamped point)."""
    height, width = analysis.display.shape[:2]
    x, y = int(np.floor(point[0])), int(np.floor(point[1]))
    cell = overlay.cell_index(tuple(analysis.trace.grid(block.stage)), analysis.geometry)[y, x] \
        if 0 <= x < width and 0 <= y < height else -1
    if cell >= 0:
        return trace_maths.pixel_to_token_rows(analysis.trace, block, fusion, 0, rows=slice(cell, cell + 1))[0]
    model_point = analysis.geometry.original_to_model(np.array(point, dtype=float))
    return trace_maths.pixel_reads(analysis.trace, block.stage, block.block, tuple(model_point), fusion)


def pixel_view(analysis: Analysis, block: trace_maths.BlockRef, fusion: str, style: Style,
               point: tuple[float, float] | None) -> PixelView:
    """``point`` in display-image pixels (None: the centre)."""
    trace = analysis.trace
    point = tuple(point) if point else centre_of(analysis)
    reads = reads_at(analysis, block, fusion, point)
    maps = block_maps(trace, block, fusion)
    top = top_tokens(reads)
    tiles = token_tiles(analysis, [maps[index] for index in top], style,
                        [f"token {index}: reads {reads[index]:.2f}" for index in top], top)
    owner, _ = trace_maths.ownership(trace, block.stage, block.block, fusion)
    return PixelView(
        marked=overlay.mark_point(analysis.display, point),
        owner_map=token_picture(analysis, block, fusion, style, top[0]),
        reads=reads,
        reads_figure=figures.pixel_reads_figure(reads, top_k=TOP_TOKENS),
        top_tokens=tiles,
        ownership=ownership_picture(analysis, owner, style),
        owners=owner_lookup(owner, analysis.geometry),
    )


def stages_view(analysis: Analysis, block: trace_maths.BlockRef, fusion: str, style: Style,
                token: int | None) -> StagesView:
    trace = analysis.trace
    stages = series_tiles(analysis, trace_maths.stage_overview(trace, token, fusion), style)
    class_fusion = fusion if fusion in trace_maths.FUSIONS else "mean"
    class_attention = draw_one(analysis, class_map(trace, class_fusion), style)
    if class_fusion != fusion:  # a head number names a head of the chosen block, not of the class block
        note = (f"mean of the class block's heads ({fusion} is a head of {block.label}, not of the class block)"
                + (f"; {class_attention.key.note}" if class_attention.key.note else ""))
        class_attention = replace(class_attention, key=replace(class_attention.key, note=note))
    # A Merge block has no separate token self-attention: its token-to-token quadrant stands in.
    matrix = trace_maths.semantic_self_matrix(trace, block.stage, block.block,
                                              trace_maths.fusion_in(trace, block, fusion))
    title = (f"semantic self-attention, {block.label}" if block.kind == "dual" else
             f"token-to-token part of the joint attention, {block.label}")
    return StagesView(
        stages=stages,
        class_attention=class_attention,
        semantic_self_figure=figures.semantic_self_figure(matrix, title),
        merge_quadrants_figure=figures.merge_quadrants_figure(trace_maths.merge_quadrants(trace)),
    )


@dataclass(frozen=True)
class ExplanationView:
    picture: Picture
    tokens: Tiles | None
    figure: go.Figure | None
    message: str = ""


# Spread of the ablation drops, robust to the few tokens that matter: a token stands out when its
# drop lies this many scaled median absolute deviations from the median drop.
SIGNIFICANT_DEVIATIONS = 3.0
MAD_TO_SIGMA = 1.4826


def standing_out(importance: np.ndarray) -> np.ndarray:
    """(M,) how many robust standard deviations each token's drop lies above the median drop."""
    values = np.asarray(importance, dtype=np.float64)
    centre = np.median(values)
    spread = MAD_TO_SIGMA * np.median(np.abs(values - centre))
    if spread <= 0:
        spread = float(np.abs(values - centre).max()) or 1.0
    return ((values - centre) / spread).astype(np.float32)


def blank_reason(result: np.ndarray) -> str:
    """Why a map is not worth drawing ("" when it is): all zero, constant, or not finite."""
    values = np.asarray(result, dtype=np.float64)
    if not np.isfinite(values).all():
        return "The map holds values that are not finite, so it cannot be drawn."
    if np.all(values == 0):
        return "The map is zero everywhere: this method finds no evidence for the class in this image."
    if np.ptp(values) <= 1e-12 * max(1.0, float(np.abs(values).max())):
        return f"The map is constant ({values.flat[0]:.3g} everywhere): it says nothing about where."
    return ""


def explanation_view(analysis: Analysis, method: ExplanationMethod, result: np.ndarray, style: Style,
                     stage: int | None, target: int | None = None) -> ExplanationView:
    """A method's map drawn on the image, or, for token scores, the tokens that stand out (with their maps at
    the last block of ``stage``). The key names the class explained (``target``) and its probability, and
    the message says so in words where the model gives the class under one half."""
    subject, caution = help_texts.explained_class(analysis.trace, target)
    view = explanation_drawn(analysis, method, result, style, stage)
    if view.picture.key is not None and subject:
        view = replace(view, picture=replace(view.picture, key=replace(view.picture.key,
                                                                       unit=f"{view.picture.key.unit} for {subject}")))
    if caution:
        message = f"{caution} {view.message}".strip()
        view = replace(view, message=message, picture=replace(view.picture, message=message))
    return view


def explanation_drawn(analysis: Analysis, method: ExplanationMethod, result: np.ndarray, style: Style,
                      stage: int | None) -> ExplanationView:
    reason = blank_reason(result)
    if reason:
        return ExplanationView(Picture(None, None, reason), None, None, reason)
    if method.result == "map":
        # Evidence for the class is drawn; evidence against it (below 0) is said, not hidden in a blend.
        low, high = float(np.min(result)), float(np.max(result))
        if high <= 0:
            message = f"No part of the image speaks for the class: every value is at most 0 (lowest {low:.3g})."
            return ExplanationView(Picture(None, None, message), None, None, message)
        map_style = Style(style.colormap, style.opacity, "per map" if style.scale == "mass" else style.scale)
        picture = draw_one(analysis, StoredMap.of_attribution(np.clip(result, 0.0, None)), map_style)
        if low < 0:
            note = f"{picture.key.note}; values below 0 (down to {low:.3g}, against the class) are left as the photo"
            picture = replace(picture, key=replace(picture.key, note=note))
        return ExplanationView(picture, None, None)
    trace = analysis.trace
    shown = [ref for ref in trace_maths.blocks(trace) if trace_maths.has_token_maps(trace, ref)
             and (ref.stage == stage if stage is not None else ref.kind == "dual")][-1]
    maps = block_maps(trace, shown)
    deviations = standing_out(result)
    ranked = [int(index) for index in attribution.rank_tokens(deviations, TOP_IMPORTANT_TOKENS)
              if deviations[index] >= SIGNIFICANT_DEVIATIONS]
    figure = figures.token_importance_figure(result, top_k=len(ranked))
    if not ranked:
        message = (f"No token stands out: every token's logit drop lies within {SIGNIFICANT_DEVIATIONS:g} "
                   "robust standard deviations of the median drop, so no ranking is shown.")
        return ExplanationView(Picture(None, None, message), None, figure, message)
    tokens = token_tiles(analysis, [maps[index] for index in ranked], style,
                         [f"token {index}: {result[index]:+.3f} ({deviations[index]:.0f}σ)" for index in ranked],
                         ranked)
    message = (f"{len(ranked)} token(s) stand out: their logit drop lies at least {SIGNIFICANT_DEVIATIONS:g} "
               "robust standard deviations (σ, from the median absolute deviation over all tokens) above "
               "the median drop.")
    return ExplanationView(Picture(None, None, message), tokens, figure, message)


# The tab holding the full view of each tour step, in order.
TOUR_VIEWS = ("tokens", "tokens", "tokens", "stages", "pixels", "stages", "stages")
TOUR_STEPS = len(TOUR_VIEWS)


@dataclass(frozen=True)
class TourStep:
    title: str
    picture: Picture
    text: str
    owners: np.ndarray | None = None  # an ownership picture's owner_lookup, to name a region under the pointer


def share(value: float) -> str:
    """A share as a percentage, with the digits a small one needs so that it never reads 0%."""
    return f"{value:.0%}" if value >= 0.01 else f"{value:.1%}" if value >= 0.001 else f"{value:.2%}"


def cells(area: float, total: int) -> str:
    """An area (share of a grid's cells) as a count of cells, e.g. "3 of 3,136 pixel tokens (0.10%)"."""
    count = round(area * total)
    return f"{count:,} of {total:,} pixel tokens ({share(area)})"


def tour(analysis: Analysis, style: Style, cite: Callable[[str, int], str] | None = None) -> list[TourStep]:
    """The Dual-ViT story on this image in :data:`TOUR_STEPS` pictures, each from the trace; ``cite(block, token)``
    adds what an atlas of the same weights says the followed token does across a dataset ("" for nothing)."""
    trace = analysis.trace
    refs = [ref for ref in trace_maths.blocks(trace) if trace_maths.has_token_maps(trace, ref)]
    duals = [ref for ref in refs if ref.kind == "dual"]
    merges = [ref for ref in refs if ref.kind == "merge"]
    if not duals or not merges or trace_maths.SEMANTIC_INIT not in trace.maps or trace_maths.CLASS_ATTENTION not in trace.maps:
        raise KeyError("the tour needs a full trace: semantic_init, Dual and Merge blocks and the class attention")
    last_dual, last_merge = duals[-1], merges[-1]
    lead = trace_maths.lead_token(trace, last_dual)
    home_row, home_col = trace_maths.home_cell(trace, lead)
    stage1, semantic = trace.grid(1), trace.semantic_grid
    tokens = trace.num_semantic

    def home(picture: Picture) -> Picture:
        """The picture with the followed token's home cell boxed in cyan, said in its key."""
        return with_home_cell(picture, analysis, lead, f"cyan box: token {lead}'s home cell")

    grid_picture = home(Picture(overlay.grid_lines(analysis.display, trace, analysis.geometry), ColourKey(
        "grid", swatches=(("one pixel token (stage 1)", overlay.GRID_LINE), ("home cell of one semantic token",
                                                                             (255, 255, 255))),
        note=noting_the_crop("", analysis.geometry)), marks=Marks(overlay.seen_only(analysis.display, trace,
                                                                                   analysis.geometry), home_grid=True)))
    init = trace_maths.semantic_init_row(trace, lead)
    per_token = 1.0 / tokens  # the init and the token self-attention weigh the M tokens' cells
    init_picture = home(draw_one(analysis, StoredMap.of_attention(trace_maths.on_stage1(trace, init), per_token), style))
    reach = trace_maths.token_maps(trace, last_dual.stage, last_dual.block)[lead]
    reach_picture = home(draw_one(analysis, StoredMap.of_attention(reach, trace_maths.uniform_weight(trace, last_dual)),
                                  style))
    talk = trace_maths.semantic_self_row(trace, last_dual, lead)
    talk_picture = home(draw_one(analysis, StoredMap.of_attention(trace_maths.on_stage1(trace, talk), per_token), style))
    owner, _ = trace_maths.ownership(trace, last_dual.stage, last_dual.block)
    owners = np.bincount(owner.ravel(), minlength=tokens)
    largest = ", ".join(f"token {token} ({share(count / owner.size)})" for token, count in largest_owners(owner)[:3])
    ownership = ownership_picture(analysis, owner, style)
    merged = trace_maths.token_maps(trace, last_merge.stage, last_merge.block)[lead]
    merged_picture = home(draw_one(analysis, StoredMap.of_attention(merged, trace_maths.uniform_weight(trace, last_merge)),
                                   style))
    quadrants = dict(trace_maths.merge_quadrants(trace))[last_merge]
    class_picture = draw_one(analysis, class_map(trace), style)
    (top_name, top_probability), = trace.top_classes(1)
    top = f"{help_texts.display_name(top_name)} ({share(top_probability)})"
    present = help_texts.classes_present(trace)
    decision = (f"Highest class score: {top}" if not trace.multi_label
                else f"Classes above {share(help_texts.PRESENT)}: {', '.join(present)}" if present
                else f"No class passes {share(help_texts.PRESENT)} (highest: {top})")
    cited = cite(last_dual.label, lead) if cite else ""  # what an atlas says of the token, asked once
    dual_sizes = ", ".join(f"{trace.grid(stage).size:,} in stage {stage}" for stage in sorted({ref.stage for ref in duals}))

    return [
        TourStep("Pixels and the home grid", grid_picture,
                 f"The image is cut into a {stage1.height}×{stage1.width} grid of **pixel tokens** (faint lines). "
                 f"Beside them Dual-ViT keeps **{tokens} semantic tokens**, one per cell of a "
                 f"{semantic.height}×{semantic.width} *home grid* (bold boxes, {trace_maths.POOL_SIZE}×{trace_maths.POOL_SIZE} "
                 f"pixel tokens each; tokens are numbered from 0, row by row). The tour follows **token {lead}** "
                 f"(home: row {home_row}, column {home_col}, counted from 0 at the top left like the token numbers, "
                 f"boxed in cyan), "
                 f"chosen for where it looks, not where it lives: of all tokens, its attention at {last_dual.label} "
                 f"lies most on the pixels the class token attends to (step 7)."),
        TourStep("Tokens start from pooled patches (semantic_init)", init_picture,
                 f"Before stage 1, {tokens} learned queries attend over the pooled home cells, and each result is "
                 f"mixed with its own home cell. Token {lead}'s query puts {share(float(init[home_row, home_col]))} "
                 f"of its weight on its own home cell; the picture shows where the rest goes."),
        TourStep("Tokens gather from every pixel (semantic_to_pixel)", reach_picture,
                 f"In each Dual block (stages 1–2) every token attends over **all** pixel tokens of its stage "
                 f"({dual_sizes}): global from the first block on, and not tied to its home cell. At "
                 f"{last_dual.label}, where the tour's token was chosen, token {lead} puts half of its attention on "
                 f"{cells(trace_maths.area_holding(reach, 0.5), reach.size)} (outlined)."
                 + (f" {cited}" if cited else "")),
        TourStep("Tokens talk to each other (semantic_self)", talk_picture,
                 f"The tokens also attend to each other. Each home cell here is coloured by how much token {lead} "
                 f"reads from the token living there, in the same block ({last_dual.label}); it reads "
                 f"{share(float(talk[home_row, home_col]))} from itself."),
        TourStep("Pixels read the tokens back (pixel_to_semantic)", ownership,
                 f"Each pixel then attends over the {tokens} tokens only, instead of all other pixels: N×M "
                 f"(pixels × tokens) instead of N×N. Colouring each pixel by the token it reads most splits the "
                 f"image into regions: at {last_dual.label}, {int((owners > 0).sum())} tokens own pixels, the "
                 f"largest being {largest}; numbers on the map name the larger regions' tokens. The tour's token "
                 f"{lead} owns {share(float(owners[lead] / owner.size)) if owners[lead] else 'no pixel'}.",
                 owner_lookup(owner, analysis.geometry)),
        TourStep("Merge blocks join both (stages 3–4)", merged_picture,
                 f"In stages 3–4 pixels and tokens are concatenated and share one self-attention. At "
                 f"{last_merge.label}, pixels give {share(quadrants['pixel→semantic'])} of their attention to tokens, "
                 f"tokens give {share(quadrants['semantic→pixel'])} of theirs to pixels. The picture: token {lead} "
                 f"on the coarse {trace.grid(last_merge.stage).height}×{trace.grid(last_merge.stage).width} grid, "
                 f"half of its attention to the pixels on {cells(trace_maths.area_holding(merged, 0.5), merged.size)} "
                 f"(outlined).",
                 ),
        TourStep("The class token decides", class_picture,
                 f"A class token attends over the final pixel and semantic tokens and feeds the classifier; this is "
                 f"its attention over the stage-4 pixels. {decision}; see the Prediction panel for how far to "
                 f"trust it."),
    ]


def statistics_markdown(token: int, block: trace_maths.BlockRef, stats: trace_maths.TokenStatistics) -> str:
    return (f"**Token {token}**, {block.label}  \n"
            f"home cell (row, column) on the home grid: {stats.home} · peak {stats.peak:.3f} at pixel cell "
            f"{stats.peak_cell} of the stage's grid  \n"
            f"entropy {stats.entropy:.2f} nats ({stats.normalised_entropy:.0%} of uniform) · "
            f"half of its mass lies on {stats.area_50:.0%} of the pixels · total mass on pixels {stats.mass:.2f}")
