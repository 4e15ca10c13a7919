"""Drawing attention on the original image with OpenCV.

Maps live on a stage grid of the model input; :class:`~model.preprocess.Geometry` carries them
back to the original photo. Images here are uint8 RGB (H, W, 3); OpenCV's colour maps return BGR,
converted on the way out.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

from analysis.trace_maths import home_cell
from model.dualvit import POOL_SIZE
from model.preprocess import Geometry
from model.trace import Trace
from viewer.levels import weights

COLORMAPS: dict[str, int] = {
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "magma": cv2.COLORMAP_MAGMA,
    "turbo": cv2.COLORMAP_TURBO,
    "jet": cv2.COLORMAP_JET,
    "hot": cv2.COLORMAP_HOT,
}
# Outside the region the model saw, the photo is kept but darkened to this fraction.
OUTSIDE_BRIGHTNESS = 0.35
# Attention is drawn over the photo in grey at this brightness, so that every colour in the picture is
# the map's: over a saturated photo (the generated scenes above all) the colour map's middle was lost
# among the photo's own colours, and a map of a few cells read as no map at all.
BACKDROP_BRIGHTNESS = 0.6
LABEL_HEIGHT = 18
TILE_GAP = 2
BACKGROUND = (24, 24, 24)


def colorize(values: np.ndarray, vmin: float, vmax: float, colormap: str = "inferno") -> np.ndarray:
    """(h, w) values -> (h, w, 3) uint8 RGB; vmin and below take the colour map's first colour, vmax and above its last.

    NaN takes the first colour too (callers mask it themselves).
    """
    code = colormap_code(colormap)
    values = np.asarray(values, dtype=np.float32)
    span = float(vmax) - float(vmin)
    scaled = (values - vmin) / span if span > 0 else np.zeros_like(values)
    levels = np.nan_to_num(np.clip(scaled, 0.0, 1.0) * 255.0, nan=0.0)
    bgr = cv2.applyColorMap(np.round(levels).astype(np.uint8), code)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def colormap_code(colormap: str) -> int:
    if colormap not in COLORMAPS:
        raise ValueError(f"unknown colormap {colormap!r}: choose one of {', '.join(COLORMAPS)}")
    return COLORMAPS[colormap]


def to_original(values: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(h, w) values on a stage grid -> (H0, W0) float32 on the original image, NaN where the model saw nothing.

    Nearest-neighbour throughout (see :func:`cell_index`): one grid cell is one token, so every
    drawn pixel shows a value the model produced, cell borders stay where the tokens' borders
    are, and integer maps (token owners) survive the trip unchanged. Smoothing would suggest a
    resolution the map does not have.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"expected an (h, w) map, got shape {values.shape}")
    index = cell_index(values.shape, geometry)
    drawn = values.ravel()[np.maximum(index, 0)]
    drawn[index < 0] = np.nan
    return drawn


def cells_along(pixels: int, original: int, resized: int, crop_start: int, crop_length: int, cells: int) -> np.ndarray:
    """(pixels,) int16: the grid cell (of ``cells`` across the model input) each pixel of one side of the
    original shows, -1 where the model saw nothing: the pixel's centre carried to the model input (the resize
    and the crop), floored to the cell it falls in."""
    centres = (np.arange(pixels, dtype=np.float64) + 0.5) * resized / original - crop_start
    inside = (centres >= 0) & (centres < crop_length)
    return np.where(inside, np.floor(centres * cells / crop_length), -1).astype(np.int16)


@lru_cache(maxsize=256)
def cell_lookup(grid: tuple[int, int], geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """The grid row under each row of the original and the grid column under each column (-1: outside what
    the model saw). Resize and crop act on each axis alone, so a pixel's cell is (its row's, its column's):
    the browser receives these two arrays and gathers exactly as :func:`cell_index` does."""
    left, top, right, bottom = geometry.crop_box
    (original_width, original_height), (resized_width, resized_height) = geometry.original_size, geometry.resized_size
    rows = cells_along(original_height, original_height, resized_height, top, bottom - top, grid[0])
    columns = cells_along(original_width, original_width, resized_width, left, right - left, grid[1])
    rows.setflags(write=False)
    columns.setflags(write=False)
    return rows, columns


@lru_cache(maxsize=256)
def cell_index(grid: tuple[int, int], geometry: Geometry) -> np.ndarray:
    """(H0, W0) int32: the row-major grid cell each original pixel shows; -1 where the model saw nothing.

    Nearest throughout: a pixel shows the cell its centre falls in. Computed once per grid and geometry,
    so redrawing a map from the cache is a single gather.
    """
    rows, columns = cell_lookup(tuple(grid), geometry)
    index = np.where((rows[:, None] >= 0) & (columns[None, :] >= 0),
                     rows[:, None].astype(np.int32) * grid[1] + columns[None, :], -1).astype(np.int32)
    index.setflags(write=False)
    return index


def check_image(image: np.ndarray, geometry: Geometry | None = None) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image (H, W, 3), got {image.dtype} {image.shape}")
    if geometry is not None and image.shape[1::-1] != tuple(geometry.original_size):
        raise ValueError(f"image is {image.shape[1]}x{image.shape[0]} but the geometry's original is "
                         f"{geometry.original_size[0]}x{geometry.original_size[1]}")
    return image


def check_opacity(opacity: float) -> None:
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity}")


def dimmed(image: np.ndarray) -> np.ndarray:
    """The image as every picture shows the parts the model did not see."""
    return cv2.convertScaleAbs(image, alpha=OUTSIDE_BRIGHTNESS)


def backdrop(image: np.ndarray) -> np.ndarray:
    """The photo as attention is drawn over it: its luminance alone, at ``BACKDROP_BRIGHTNESS``."""
    grey = cv2.cvtColor(check_image(image), cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(cv2.convertScaleAbs(grey, alpha=BACKDROP_BRIGHTNESS), cv2.COLOR_GRAY2RGB)


@lru_cache(maxsize=16)
def colormap_table(colormap: str) -> np.ndarray:
    """(256, 3) uint8 RGB: the colour of each level of the colour map."""
    levels = np.arange(256, dtype=np.uint8)[:, None]
    return cv2.cvtColor(cv2.applyColorMap(levels, colormap_code(colormap)), cv2.COLOR_BGR2RGB)[:, 0]


def dimming_table() -> np.ndarray:
    """(256,) uint8: each grey level as every picture shows the parts the model did not see (and seams)."""
    return dimmed(np.arange(256, dtype=np.uint8)[None, :, None].repeat(3, axis=2))[0, :, 0]


def paint(base: np.ndarray, colours: np.ndarray, alphas: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(K, H0, W0, 3) uint8: per-cell colours (K, cells, 3) blended over ``base`` with weights (K, cells),
    carried to the pixels by ``index`` (:func:`cell_index`); pixels the model did not see are dimmed.

    Each pixel is ``floor(base * (1 - alpha) + colour * alpha + 0.5)`` in float64, the blend weight and the
    tint formed per cell first: ``viewer/static/draw.js`` computes the same numbers in the same order, so
    the browser's pictures equal these.
    """
    keep = 1.0 - alphas  # (K, cells)
    tint = colours * alphas[..., None]  # (K, cells, 3)
    safe = np.maximum(index, 0)
    drawn = np.floor(base.astype(np.float64)[None] * keep[:, safe][..., None] + tint[:, safe] + 0.5)
    drawn = drawn.astype(np.uint8)
    outside = index < 0
    if outside.any():
        drawn[:, outside] = dimming_table()[base[outside]]
    return drawn


def level_overlays(image: np.ndarray, indices: Sequence[np.ndarray], geometry: Geometry, colormap: str,
                   opacity: float) -> list[np.ndarray]:
    """Maps given as colour indices (h, w) uint8 (``viewer.levels``) coloured over the grey photo ``image``.

    A cell's colour is the colour map's entry at its index and its weight rises with the index, from 0 to
    ``opacity`` at 255, as the square root of its level (:func:`viewer.levels.weights`): low attention
    leaves the photo as it is, and middling values, the colour map's darker ones, still show over a dark
    photo. Maps of several grids are drawn each with its own grid, in order.
    """
    image = check_image(image, geometry)
    return cell_overlays(image, level_paint(indices, colormap, opacity), [cells.shape for cells in indices], geometry)


Painted = tuple[np.ndarray, np.ndarray]  # one map's colours (cells, 3) float64 and blend weights (cells,)


def level_paint(indices: Sequence[np.ndarray], colormap: str, opacity: float) -> list[Painted]:
    """Each map's cells as :func:`level_overlays` paints them: the colour map's entry and its weight."""
    check_opacity(opacity)
    table = colormap_table(colormap).astype(np.float64)
    return [(table[cells.ravel()], weights(cells.ravel(), opacity)) for cells in indices]


def cell_overlays(image: np.ndarray, painted: Sequence[tuple[np.ndarray, np.ndarray]],
                  shapes: Sequence[tuple[int, int]], geometry: Geometry) -> list[np.ndarray]:
    """:func:`paint` for maps given as (colours (cells, 3), weights (cells,)) on grids of ``shapes``: one pass
    per grid for a whole gallery."""
    drawn: list[np.ndarray] = [np.empty(0)] * len(painted)
    for shape in dict.fromkeys(shapes):
        members = [index for index, other in enumerate(shapes) if other == shape]
        colours = np.stack([painted[i][0] for i in members])
        alphas = np.stack([painted[i][1] for i in members])
        for index, picture in zip(members, paint(image, colours, alphas, cell_index(tuple(shape), geometry))):
            drawn[index] = picture
    return drawn


def band_colours(colormap: str, count: int) -> list[tuple[int, int, int]]:
    """``count`` colours from the colour map's upper part, lightest band last: one per mass band."""
    levels = np.linspace(1.0, 0.45, count, dtype=np.float32)[None, :]
    return [tuple(int(c) for c in rgb) for rgb in colorize(levels, 0.0, 1.0, colormap)[0]]


BAND_WEIGHTS = (0.45, 0.725, 1.0)  # the largest region (95% of the mass) lightest, the 50% region at full opacity


def mass_overlays(image: np.ndarray, levels: Sequence[np.ndarray], geometry: Geometry, colormap: str,
                  opacity: float, strengths: Sequence[float]) -> list[np.ndarray]:
    """Nested mass regions filled over the grey photo: ``levels`` (h, w) uint8 from
    :func:`analysis.trace_maths.mass_levels` (3 for the smallest region, holding 50% of the mass, down to 1
    for the largest, 95%; 0 outside, left as the photo), each map's bands weighted by its strength (how far
    it stands above uniform attention: a flat map's regions stay faint)."""
    image = check_image(image, geometry)
    return cell_overlays(image, mass_paint(levels, colormap, opacity, strengths), [cells.shape for cells in levels],
                         geometry)


def mass_paint(levels: Sequence[np.ndarray], colormap: str, opacity: float, strengths: Sequence[float]) -> list[Painted]:
    """Each map's cells as :func:`mass_overlays` paints them: its band's colour and weight."""
    check_opacity(opacity)
    palette = np.array([(0, 0, 0)] + band_colours(colormap, len(BAND_WEIGHTS))[::-1], np.float64)
    band = np.array((0.0,) + BAND_WEIGHTS)
    return [(palette[cells.ravel()], band[cells.ravel()] * opacity * strength)
            for cells, strength in zip(levels, strengths)]


def outline(image: np.ndarray, region: np.ndarray, geometry: Geometry, width: int | None = None) -> np.ndarray:
    """A copy with the border of ``region`` (a bool mask on a stage grid) drawn white, ``width`` pixels inside
    the region, with a one-pixel dark edge on both sides, so a region of one cell still shows. The border of
    every hole is drawn too: a spread map's half-mass region often encloses cells it leaves out.

    Morphology on the pixels (an erosion, then a dilation, windows clipped at the picture's edge), which
    ``viewer/static/draw.js`` repeats pixel for pixel; the picture's edge draws no border."""
    image = check_image(image, geometry)
    index = cell_index(np.shape(region), geometry)
    mask = (np.asarray(region, bool).ravel()[np.maximum(index, 0)] & (index >= 0)).astype(np.uint8)
    width = width or line_width(image)
    inner = mask.astype(bool) & ~cv2.erode(mask, np.ones((2 * width + 1, 2 * width + 1), np.uint8)).astype(bool)
    edge = cv2.dilate(inner.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~inner
    drawn = image.copy()
    drawn[edge] = 0
    drawn[inner] = 255
    return drawn


# Owners are told apart by these colours (Trubetskoy's "20 simple, distinct colours", the light and dark ones
# left out): bright over a grey photo, so that a region projected on a wall still reads as its colour.
OWNER_PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255))


def ownership_overlay(image: np.ndarray, owner: np.ndarray, colour_of: np.ndarray, geometry: Geometry,
                      opacity: float = 0.6) -> np.ndarray:
    """Each pixel tinted with its owning token's colour (``colour_of[token]``: an index into
    :data:`OWNER_PALETTE`, neighbours apart, :func:`analysis.trace_maths.owner_colours`), with a dark seam
    between neighbouring owners. ``owner`` (h, w) int as from :func:`analysis.trace_maths.ownership`."""
    image = check_image(image, geometry)
    check_opacity(opacity)
    palette = np.array(OWNER_PALETTE, np.float64)
    cells = np.asarray(owner).ravel()
    drawn = cell_overlays(image, [(palette[np.asarray(colour_of)[cells]], np.full(cells.size, float(opacity)))],
                          [np.shape(owner)], geometry)[0]
    return with_seams(drawn, owner, geometry)


def with_seams(drawn: np.ndarray, owner: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Dark seams where neighbouring pixels have other owners (a max and a min filter over the owners, no seam
    along the dimmed margin): two regions read as two even where their colours come close."""
    index = cell_index(np.shape(owner), geometry)
    inside = index >= 0
    size = 2 * max(1, line_width(drawn) // 2) + 1
    kernel = np.ones((size, size), np.uint8)
    labels = np.where(inside, np.asarray(owner).ravel()[np.maximum(index, 0)], -1).astype(np.float32)
    within_view = cv2.erode(inside.astype(np.uint8), kernel).astype(bool)
    seam = (cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)) & within_view
    seamed = drawn.copy()
    seamed[seam] = dimming_table()[drawn[seam]]
    return seamed


def number_style(shape: tuple[int, ...]) -> tuple[int, float, int]:
    """(font, scale, thickness) of the numbers on an ownership map of this shape: the type scales with the
    picture (a 224-pixel scene gets digits about 9 pixels high), so it reads alike once the page fits the
    picture to its column."""
    scale = max(0.35, min(shape[:2]) / 560)
    return cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, round(2 * scale))


def number_fits(text: str, depth: float, shape: tuple[int, ...]) -> bool:
    """Whether a region whose deepest point lies ``depth`` pixels inside it holds ``text`` without covering
    its edge."""
    font, scale, thickness = number_style(shape)
    (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
    return depth >= max(width, height) / 2 + thickness + 1


def number_places(shape: tuple[int, ...], owner: np.ndarray, tokens: Sequence[int],
                  geometry: Geometry) -> list[tuple[str, float, float]]:
    """(number, x, y) for each of ``tokens`` whose largest region of ``owner`` (a stage grid) is wide enough to
    hold its number, at the point deepest inside that region, on a picture of ``shape``."""
    owners = to_original(np.asarray(owner, dtype=np.float32), geometry)
    places = []
    for token in tokens:
        text = str(int(token))
        x, y, depth = deepest_point(owners == token)
        if number_fits(text, depth, shape):  # else no region, or the number would cover the region's edge
            places.append((text, float(x), float(y)))
    return places


def write_numbers(image: np.ndarray, places: Sequence[tuple[str, float, float]]) -> np.ndarray:
    """A copy with each number written, white on a dark edge, centred on its place (:func:`number_places`)."""
    drawn = check_image(image).copy()
    font, scale, thickness = number_style(drawn.shape)
    for text, x, y in places:
        (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
        write_on_edge(drawn, text, (int(round(x - width / 2)), int(round(y + height / 2))))
    return drawn


def number_regions(image: np.ndarray, owner: np.ndarray, tokens: Sequence[int], geometry: Geometry) -> np.ndarray:
    """A copy with each of ``tokens``' numbers written at its place (:func:`number_places`)."""
    image = check_image(image, geometry)
    return write_numbers(image, number_places(image.shape, owner, tokens, geometry))


# The dark edge around a number, in pixels. It is drawn by widening the type's own mask, not by writing the
# text again more thickly: OpenCV 5 draws every thickness above 2 as 2, so a thicker copy hides under the type.
NUMBER_EDGE = 2


def write_on_edge(drawn: np.ndarray, text: str, origin: tuple[int, int]) -> None:
    """Write ``text`` (baseline starting at ``origin``) in place, white on a dark edge, in the numbers' style."""
    font, scale, thickness = number_style(drawn.shape)
    (width, height), baseline = cv2.getTextSize(text, font, scale, thickness)
    margin = NUMBER_EDGE + thickness + 2
    left, top = max(0, origin[0] - margin), max(0, origin[1] - height - margin)
    right, bottom = min(drawn.shape[1], origin[0] + width + margin), min(drawn.shape[0], origin[1] + baseline + margin)
    if right <= left or bottom <= top:
        return
    type_mask = np.zeros((bottom - top, right - left), np.uint8)
    cv2.putText(type_mask, text, (origin[0] - left, origin[1] - top), font, scale, 255, thickness, cv2.LINE_AA)
    edge_mask = cv2.dilate(type_mask, np.ones((2 * NUMBER_EDGE + 1,) * 2, np.uint8))
    patch = drawn[top:bottom, left:right].astype(np.float64)
    for mask, colour in ((edge_mask, 0.0), (type_mask, 255.0)):
        alpha = mask[..., None] / 255.0
        patch = patch * (1.0 - alpha) + colour * alpha
    drawn[top:bottom, left:right] = np.floor(patch + 0.5).astype(np.uint8)


def deepest_point(mask: np.ndarray) -> tuple[int, int, float]:
    """(x, y, distance to the nearest pixel outside) of the point deepest inside the largest 4-connected
    region of ``mask`` (a bool image), the picture's edge counting as outside; (0, 0, 0) for an empty mask."""
    count, parts, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if count < 2:
        return 0, 0, 0.0
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    left, top, width, height = (int(v) for v in stats[largest, :4])
    # The region within its bounding box, framed by a pixel of background for the picture's edge.
    region = np.pad((parts[top:top + height, left:left + width] == largest).astype(np.uint8), 1)
    depth = cv2.distanceTransform(region, cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return left + int(x), top + int(y), float(depth[y, x])


def line_width(image: np.ndarray) -> int:
    return max(1, round(min(image.shape[:2]) / 200))


def mark_point(image: np.ndarray, point: tuple[float, float],
               colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy with a ringed crosshair at ``point`` (x, y original pixels), dark-edged to show on light images."""
    marked = check_image(image).copy()
    centre = (int(round(point[0])), int(round(point[1])))
    width = line_width(marked)
    radius = max(5, round(min(marked.shape[:2]) / 40))
    for stroke, thickness in (((0, 0, 0), width + 2), (tuple(int(c) for c in colour), width)):
        cv2.circle(marked, centre, radius, stroke, thickness, cv2.LINE_AA)
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            start = (centre[0] + dx * radius // 2, centre[1] + dy * radius // 2)
            end = (centre[0] + dx * radius * 2, centre[1] + dy * radius * 2)
            cv2.line(marked, start, end, stroke, thickness, cv2.LINE_AA)
    return marked


def home_box_on_input(trace: Trace, token: int, input_size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Token ``token``'s pooled window as (left, top, right, bottom) pixels of a model input ``input_size`` (w, h).

    The semantic grid is the stage-1 grid pooled by 7 with the remainder dropped, so a cell spans
    exactly 7 stage-1 cells; scaling the semantic grid to the whole input would misplace the
    boxes whenever the stage-1 side is not a multiple of 7.
    """
    row, col = home_cell(trace, token)
    input_width, input_height = input_size
    stage1 = trace.grid(1)
    cell_width = POOL_SIZE * input_width / stage1.width
    cell_height = POOL_SIZE * input_height / stage1.height
    return col * cell_width, row * cell_height, (col + 1) * cell_width, (row + 1) * cell_height


def home_box_pixels(trace: Trace, token: int, geometry: Geometry) -> tuple[int, int, int, int]:
    """The first and last pixel (x0, y0, x1, y1) of token ``token``'s home cell on the image of ``geometry``."""
    left, top, right, bottom = home_box_on_input(trace, token, geometry.input_size)
    corners = geometry.model_to_original(np.array([[left, top], [right, bottom]]))
    # Continuous corner coordinates -> the first and last pixel the box covers.
    x0, y0 = (int(v) for v in np.floor(corners[0]))
    x1, y1 = (int(v) for v in np.ceil(corners[1]) - 1)
    return x0, y0, x1, y1


def frame(image: np.ndarray, box: tuple[int, int, int, int], thickness: int, colour: tuple[int, int, int]) -> None:
    """Paint, in place, a rectangle's frame ``thickness`` pixels wide, centred on the lines through the box's
    first and last pixels (x0, y0, x1, y1); ``viewer/static/draw.js`` paints the same pixels."""
    x0, y0, x1, y1 = box
    half = thickness // 2
    left, top, right, bottom = x0 - half, y0 - half, x1 + half, y1 + half  # the outer edge, inclusive
    height, width = image.shape[:2]
    rows = np.arange(height)[:, None]
    columns = np.arange(width)[None, :]
    outer = (rows >= top) & (rows <= bottom) & (columns >= left) & (columns <= right)
    inner = (rows >= top + thickness) & (rows <= bottom - thickness) & (columns >= left + thickness) & \
        (columns <= right - thickness)
    image[outer & ~inner] = colour


def home_box(image: np.ndarray, trace: Trace, token: int, geometry: Geometry,
             colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy with token ``token``'s home cell (the pooled stage-1 window it started from) framed, dark-edged."""
    boxed = check_image(image, geometry).copy()
    box = home_box_pixels(trace, token, geometry)
    width = line_width(boxed)
    frame(boxed, box, width + 2, (0, 0, 0))
    frame(boxed, box, width, colour)
    return boxed


GRID_LINE = (200, 200, 200)


def seen_only(image: np.ndarray, trace: Trace, geometry: Geometry) -> np.ndarray:
    """A copy with the parts the model did not see dimmed, as in the other pictures."""
    drawn = check_image(image, geometry).copy()
    outside = cell_index(tuple(trace.grid(1)), geometry) < 0
    drawn[outside] = dimmed(drawn)[outside]
    return drawn


def grid_segments(trace: Trace, geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """((n, 2, 2), (m, 2, 2)) line segments (x, y on the original): the stage-1 pixel-token grid and the
    edges of every token's home cell."""
    input_width, input_height = geometry.input_size
    stage1 = trace.grid(1)
    cells = [((x, 0), (x, input_height)) for x in np.arange(stage1.width + 1) * input_width / stage1.width]
    cells += [((0, y), (input_width, y)) for y in np.arange(stage1.height + 1) * input_height / stage1.height]
    homes = []
    for token in range(trace.num_semantic):
        left, top, right, bottom = home_box_on_input(trace, token, geometry.input_size)
        homes += [((left, top), (right, top)), ((left, top), (left, bottom)), ((right, top), (right, bottom)),
                  ((left, bottom), (right, bottom))]
    return (geometry.model_to_original(np.array(cells, dtype=float)),
            geometry.model_to_original(np.array(homes, dtype=float)))


def grid_lines(image: np.ndarray, trace: Trace, geometry: Geometry) -> np.ndarray:
    """A copy with the stage-1 pixel-token grid drawn faintly and every token's home cell boldly, the
    parts the model did not see dimmed as in the other pictures."""
    drawn = seen_only(image, trace, geometry)
    cells, homes = grid_segments(trace, geometry)
    for segments, colour, width in ((cells, GRID_LINE, 1), (homes, (255, 255, 255), line_width(drawn))):
        for a, b in segments:
            cv2.line(drawn, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), colour, width,
                     cv2.LINE_AA)
    return drawn


def region_segments(region: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(n, 2, 2) the border of ``region`` (a bool mask on a stage grid) as segments on the original, cell
    edge by cell edge, holes included; none along the picture's edge (as :func:`outline` draws none there)."""
    mask = np.pad(np.asarray(region, bool), 1)
    height, width = np.shape(region)
    input_width, input_height = geometry.input_size
    xs, ys = np.arange(width + 1) * input_width / width, np.arange(height + 1) * input_height / height
    rows, columns = np.nonzero(mask[1:, 1:-1] != mask[:-1, 1:-1])  # a horizontal edge above row ``rows``
    segments = [((xs[c], ys[r]), (xs[c + 1], ys[r])) for r, c in zip(rows, columns)]
    rows, columns = np.nonzero(mask[1:-1, 1:] != mask[1:-1, :-1])  # a vertical edge left of column ``columns``
    segments += [((xs[c], ys[r]), (xs[c], ys[r + 1])) for r, c in zip(rows, columns)]
    if not segments:
        return np.zeros((0, 2, 2))
    drawn = geometry.model_to_original(np.array(segments, dtype=float))
    original_width, original_height = geometry.original_size
    along_x = np.all(np.isclose(drawn[:, :, 0], 0) | np.isclose(drawn[:, :, 0], original_width), axis=1) & \
        np.isclose(drawn[:, 0, 0], drawn[:, 1, 0])
    along_y = np.all(np.isclose(drawn[:, :, 1], 0) | np.isclose(drawn[:, :, 1], original_height), axis=1) & \
        np.isclose(drawn[:, 0, 1], drawn[:, 1, 1])
    return drawn[~(along_x | along_y)]


def fit_tile(image: np.ndarray, size: int) -> np.ndarray:
    """The image scaled to fit a size x size square, keeping its aspect, centred on the background."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    check_image(image)
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    resized = cv2.resize(image, new_size, interpolation=interpolation)
    tile_image = np.full((size, size, 3), BACKGROUND, np.uint8)
    top, left = (size - new_size[1]) // 2, (size - new_size[0]) // 2
    tile_image[top:top + new_size[1], left:left + new_size[0]] = resized
    return tile_image


def label_tile(tile_image: np.ndarray, label: str) -> np.ndarray:
    """The label in small white type on a dark strip along the tile's bottom."""
    labelled = tile_image.copy()
    size = labelled.shape[1]
    cv2.rectangle(labelled, (0, size - LABEL_HEIGHT), (size, size), BACKGROUND, -1)
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1
    text = label
    while text and cv2.getTextSize(text, font, scale, thickness)[0][0] > size - 4:
        text = text[:-1]  # too long for the tile: cut it rather than let it run off
    cv2.putText(labelled, text, (2, size - 5), font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return labelled


def tile(images: Sequence[np.ndarray], columns: int, labels: Sequence[str] | None = None,
         size: int = 112) -> np.ndarray:
    """A contact sheet: each image fitted into a size x size tile, ``columns`` per row, labels along the bottoms.

    Returns uint8 RGB, rows * size + (rows - 1) * 2 pixels high and columns * size + (columns - 1) * 2
    wide; a sheet with fewer images than ``columns`` is only as wide as its images.
    """
    if not images:
        raise ValueError("tile needs at least one image")
    if columns < 1 or size < 8:
        raise ValueError(f"tile needs columns >= 1 and size >= 8, got columns={columns}, size={size}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    columns = min(columns, len(images))
    rows = -(-len(images) // columns)
    step = size + TILE_GAP
    sheet = np.full((rows * step - TILE_GAP, columns * step - TILE_GAP, 3), 0, np.uint8)
    for index, image in enumerate(images):
        tile_image = fit_tile(image, size)
        if labels is not None:
            tile_image = label_tile(tile_image, labels[index])
        row, col = divmod(index, columns)
        sheet[row * step:row * step + size, col * step:col * step + size] = tile_image
    return sheet

