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
# Seams between ownership regions: dark enough to part two regions of near hues.
SEAM_BRIGHTNESS = 0.35
GOLDEN_ANGLE_DEGREES = 137.50776405003785
# Ownership brightness never drops below this, so even a contested pixel keeps its token's hue.
MIN_OWNERSHIP_VALUE = 0.25
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


def pixel_index_affine(geometry: Geometry) -> np.ndarray:
    """The model-to-original 2x3 matrix in OpenCV's convention, where pixel i's centre is at i.

    ``Geometry`` uses continuous coordinates (pixel i spans [i, i + 1), centre i + 0.5); without
    this shift the warped map would sit up to half an original pixel off.
    """
    matrix = geometry.model_to_original_affine().copy()
    matrix[:, 2] += 0.5 * np.diag(matrix[:, :2]) - 0.5
    return matrix


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


@lru_cache(maxsize=256)
def cell_index(grid: tuple[int, int], geometry: Geometry) -> np.ndarray:
    """(H0, W0) int32: the row-major grid cell each original pixel shows; -1 where the model saw nothing.

    Computed once per grid and geometry (``INTER_NEAREST_EXACT`` to the model input, then an
    ``INTER_NEAREST`` warp), so redrawing a map from the cache is a single gather.
    """
    cells = np.arange(grid[0] * grid[1], dtype=np.float32).reshape(grid)  # exact below 2**24 cells
    on_input = cv2.resize(cells, geometry.input_size, interpolation=cv2.INTER_NEAREST_EXACT)
    warped = cv2.warpAffine(on_input, pixel_index_affine(geometry), geometry.original_size,
                            flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    index = warped.astype(np.int32)
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


def blend_inside(image: np.ndarray, colours: np.ndarray, inside: np.ndarray, alpha: np.ndarray | float) -> np.ndarray:
    """Colours blended over the image with weight ``alpha`` (per pixel or one number) where ``inside``;
    the image dimmed where the model saw nothing."""
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.ndim == 2:
        alpha = alpha[..., None]
    blended = image.astype(np.float32) * (1.0 - alpha) + colours.astype(np.float32) * alpha
    blended = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return np.where(inside[..., None], blended, dimmed(image))


def value_range(values: np.ndarray) -> tuple[float, float]:
    """(0, max) of the finite values: attention and mass start at zero, so the colour scale does too."""
    finite = np.asarray(values, dtype=np.float32)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return 0.0, 1.0
    return min(0.0, float(finite.min())), float(finite.max())


def overlay(image: np.ndarray, values: np.ndarray, geometry: Geometry, colormap: str = "inferno",
            opacity: float = 0.6, vrange: tuple[float, float] | None = None) -> np.ndarray:
    """The (h, w) map coloured over the original image (H0, W0, 3).

    A pixel's colour comes from the colour map and its weight rises with the value, from 0 at the
    bottom of ``vrange`` to ``opacity`` at its top, as the square root of the value's place in the
    range: low attention leaves the photo as it is instead of washing it dark, and middling values,
    whose colours are the map's darker ones, still show over a dark photo. Pixels the model did not
    see are dimmed. ``vrange`` (min, max) fixes the scale (e.g.
    :func:`analysis.trace_maths.shared_range`); by default it runs from 0 to this map's peak.
    """
    return overlays(image, [values], geometry, colormap, opacity, [vrange or value_range(values)])[0]


@lru_cache(maxsize=16)
def colormap_table(colormap: str) -> np.ndarray:
    """(256, 3) uint8 RGB: the colour of each level of the colour map."""
    levels = np.arange(256, dtype=np.uint8)[:, None]
    return cv2.cvtColor(cv2.applyColorMap(levels, colormap_code(colormap)), cv2.COLOR_BGR2RGB)[:, 0]


def overlays(image: np.ndarray, maps: Sequence[np.ndarray], geometry: Geometry, colormap: str,
             opacity: float, vranges: Sequence[tuple[float, float]]) -> list[np.ndarray]:
    """:func:`overlay` for many maps, each on its own (min, max): one pass per grid for a whole gallery."""
    image = check_image(image, geometry)
    check_opacity(opacity)
    shapes = [np.shape(values) for values in maps]
    if any(len(shape) != 2 for shape in shapes):
        raise ValueError(f"expected (h, w) maps, got shapes {sorted(set(shapes))}")
    if len(set(shapes)) > 1:  # maps of several stages: each grid in its own pass, the order kept
        drawn: list[np.ndarray] = [np.empty(0)] * len(maps)
        for shape in set(shapes):
            members = [index for index, other in enumerate(shapes) if other == shape]
            for index, image_drawn in zip(members, overlays(image, [maps[i] for i in members], geometry, colormap,
                                                            opacity, [vranges[i] for i in members])):
                drawn[index] = image_drawn
        return drawn
    table = colormap_table(colormap)
    stacked = np.stack([np.asarray(values, dtype=np.float32).ravel() for values in maps])  # (K, cells)
    lows = np.array([low for low, _ in vranges], np.float32)[:, None]
    spans = np.array([high - low for low, high in vranges], np.float32)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = np.where(spans > 0, (stacked - lows) / spans, 0.0)
    levels = np.clip(np.nan_to_num(levels, nan=0.0), 0.0, 1.0).astype(np.float32)
    # Colour and weight are per cell: work on the cells, then carry both to the pixels in one gather.
    # The square root: with the weight in proportion, a quarter of the peak (dark purple at a fifth of
    # the opacity) vanished over a dark photo, and half-mass outlines seemed to enclose nothing.
    alpha = opacity * np.sqrt(levels)  # (K, cells)
    tint = table[np.round(levels * 255).astype(np.uint8)].astype(np.float32) * alpha[..., None]  # (K, cells, 3)
    index = cell_index(np.asarray(maps[0]).shape, geometry)
    safe = np.maximum(index, 0)
    keep = (1.0 - alpha)[:, safe][..., None]  # (K, H0, W0, 1)
    blended = image.astype(np.float32)[None] * keep + tint[:, safe]
    drawn = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    outside = index < 0
    if outside.any():
        drawn[:, outside] = dimmed(image)[outside]
    return list(drawn)


def band_colours(colormap: str, count: int) -> list[tuple[int, int, int]]:
    """``count`` colours from the colour map's upper part, lightest band last: one per mass band."""
    levels = np.linspace(1.0, 0.45, count, dtype=np.float32)[None, :]
    return [tuple(int(c) for c in rgb) for rgb in colorize(levels, 0.0, 1.0, colormap)[0]]


def mass_overlay(image: np.ndarray, levels: np.ndarray, geometry: Geometry, colormap: str = "inferno",
                 opacity: float = 0.6, bands: int = 3, outlined: bool = True) -> np.ndarray:
    """Nested mass regions filled over the photo and, when ``outlined``, the innermost outlined.

    ``levels`` (h, w) int from :func:`analysis.trace_maths.mass_levels`: ``bands`` for the smallest
    region (e.g. 50% of the mass), down to 1 for the largest and 0 outside, which is left as the photo.
    """
    image = check_image(image, geometry)
    check_opacity(opacity)
    warped = to_original(np.asarray(levels, dtype=np.float32), geometry)
    inside = np.isfinite(warped)
    level = np.nan_to_num(warped, nan=0.0).astype(np.int64)
    palette = np.array([(0, 0, 0)] + band_colours(colormap, bands)[::-1], np.uint8)
    colours = palette[np.clip(level, 0, bands)]
    weights = np.concatenate([[0.0], np.linspace(0.45, 1.0, bands)]) * opacity
    drawn = blend_inside(image, colours, inside, weights[np.clip(level, 0, bands)])
    return outline(drawn, np.asarray(levels) >= bands, geometry) if outlined else drawn


def outline(image: np.ndarray, region: np.ndarray, geometry: Geometry,
            colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy with the border of ``region`` (a bool mask on a stage grid) drawn light on dark,
    at least two pixels wide so a region of one cell still shows at thumbnail size. The border of
    every hole is drawn too: a spread map's half-mass region often encloses cells it leaves out."""
    image = check_image(image, geometry)
    mask = np.nan_to_num(to_original(np.asarray(region, dtype=np.float32), geometry), nan=0.0) > 0.5
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    drawn = image.copy()
    width = max(1, line_width(drawn))
    cv2.drawContours(drawn, contours, -1, (0, 0, 0), width + 2, cv2.LINE_8)
    cv2.drawContours(drawn, contours, -1, tuple(int(c) for c in colour), width, cv2.LINE_8)
    return drawn


def token_hues(count: int) -> np.ndarray:
    """(count,) OpenCV hues (0..179): consecutive tokens a golden angle apart, so neighbours differ."""
    return np.round((np.arange(count) * GOLDEN_ANGLE_DEGREES % 360.0) / 2.0).astype(np.uint8) % 180


def ownership_brightness(confidence: np.ndarray | float) -> np.ndarray:
    """The brightness (0..1) an ownership overlay gives a pixel whose choice of token is this clear."""
    return MIN_OWNERSHIP_VALUE + (1.0 - MIN_OWNERSHIP_VALUE) * np.clip(np.nan_to_num(confidence), 0.0, 1.0)


def hue_colour(hue: int, brightness: float = 1.0) -> tuple[int, int, int]:
    """The RGB colour an ownership overlay gives a token of this hue at this brightness (0..1)."""
    hsv = np.array([[[hue, 255, round(255 * brightness)]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def ownership_overlay(image: np.ndarray, owner: np.ndarray, confidence: np.ndarray, geometry: Geometry,
                      opacity: float = 0.6) -> np.ndarray:
    """Each pixel tinted with its owning token's hue, brighter where the pixel's choice is clearer, with a
    dark seam between neighbouring owners.

    ``owner`` (h, w) int and ``confidence`` (h, w) in [0, 1] as from :func:`analysis.trace_maths.ownership`.
    """
    image = check_image(image, geometry)
    check_opacity(opacity)
    owners = to_original(np.asarray(owner, dtype=np.float32), geometry)
    shares = to_original(np.asarray(confidence, dtype=np.float32), geometry)
    inside = np.isfinite(owners)
    owner_index = np.nan_to_num(owners, nan=0.0).astype(np.int64)
    hue = token_hues(int(owner_index.max()) + 1)[owner_index]
    brightness = ownership_brightness(shares)
    hsv = np.stack([hue, np.full_like(hue, 255), np.round(brightness * 255).astype(np.uint8)], axis=-1)
    colours = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    drawn = blend_inside(image, colours, inside, opacity)
    # Hues a golden angle apart still come close among 64 tokens (those of 42 and 8 are 5 degrees apart), so
    # a dark seam between neighbouring owners tells two regions apart whatever their hues.
    size = 2 * max(1, line_width(drawn) // 2) + 1
    kernel = np.ones((size, size), np.uint8)
    labels = np.where(inside, owner_index, -1).astype(np.float32)
    within_view = cv2.erode(inside.astype(np.uint8), kernel).astype(bool)  # no seam along the dimmed margin
    seam = (cv2.dilate(labels, kernel) != cv2.erode(labels, kernel)) & within_view
    return np.where(seam[..., None], cv2.convertScaleAbs(drawn, alpha=SEAM_BRIGHTNESS), drawn)


def number_regions(image: np.ndarray, owner: np.ndarray, tokens: Sequence[int], geometry: Geometry) -> np.ndarray:
    """A copy with each of ``tokens``' numbers written, white on a dark edge, at the point deepest inside
    its largest region of ``owner`` (a stage grid), where that region is wide enough to hold the number.

    The type scales with the picture (a 224-pixel scene gets digits about 9 pixels high), so it reads
    alike once the page fits the picture to its column.
    """
    drawn = check_image(image, geometry).copy()
    owners = to_original(np.asarray(owner, dtype=np.float32), geometry)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, min(drawn.shape[:2]) / 560)
    thickness = max(1, round(2 * scale))
    for token in tokens:
        text = str(int(token))
        (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
        x, y, depth = deepest_point(owners == token)
        if depth < max(width, height) / 2 + thickness + 1:
            continue  # no region, or the number would cover the region's edge
        origin = (int(round(x - width / 2)), int(round(y + height / 2)))
        cv2.putText(drawn, text, origin, font, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
        cv2.putText(drawn, text, origin, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return drawn


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


def home_box(image: np.ndarray, trace: Trace, token: int, geometry: Geometry,
             colour: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """A copy with token ``token``'s home cell (the pooled stage-1 window it started from) outlined."""
    boxed = check_image(image, geometry).copy()
    left, top, right, bottom = home_box_on_input(trace, token, geometry.input_size)
    corners = geometry.model_to_original(np.array([[left, top], [right, bottom]]))
    # Continuous corner coordinates -> the first and last pixel the box covers.
    first = tuple(int(v) for v in np.floor(corners[0]))
    last = tuple(int(v) for v in np.ceil(corners[1]) - 1)
    width = line_width(boxed)
    cv2.rectangle(boxed, first, last, (0, 0, 0), width + 2)
    cv2.rectangle(boxed, first, last, tuple(int(c) for c in colour), width)
    return boxed


GRID_LINE = (200, 200, 200)


def grid_lines(image: np.ndarray, trace: Trace, geometry: Geometry) -> np.ndarray:
    """A copy with the stage-1 pixel-token grid drawn faintly and every token's home cell boldly, the
    parts the model did not see dimmed as in the other pictures."""
    drawn = check_image(image, geometry).copy()
    input_width, input_height = geometry.input_size
    stage1 = trace.grid(1)
    outside = cell_index(tuple(stage1), geometry) < 0
    drawn[outside] = dimmed(drawn)[outside]

    def line(start: tuple[float, float], end: tuple[float, float], colour, width: int) -> None:
        a, b = geometry.model_to_original(np.array([start, end], dtype=float))
        cv2.line(drawn, tuple(int(round(v)) for v in a), tuple(int(round(v)) for v in b), colour, width, cv2.LINE_AA)

    for col in range(stage1.width + 1):
        x = col * input_width / stage1.width
        line((x, 0), (x, input_height), GRID_LINE, 1)
    for row in range(stage1.height + 1):
        y = row * input_height / stage1.height
        line((0, y), (input_width, y), GRID_LINE, 1)
    for token in range(trace.num_semantic):
        left, top, right, bottom = home_box_on_input(trace, token, geometry.input_size)
        for start, end in (((left, top), (right, top)), ((left, top), (left, bottom)),
                           ((right, top), (right, bottom)), ((left, bottom), (right, bottom))):
            line(start, end, (255, 255, 255), line_width(drawn))
    return drawn


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

