"""Deterministic synthetic scenes for training and probing Dual-ViT.

Every scene is a pure function of an integer seed: a cluttered, low-contrast
procedural background with 1-4 textured objects drawn on top, plus the
visible (post-occlusion) mask of every object. The masks are the ground truth
that attention maps are later compared against, so they must describe exactly
the pixels where an object can be seen.

Seed ranges (disjoint, so evaluation never sees a training scene):

* ``TRAIN_SEEDS   = range(0, 1_000_000_000)``
* ``HELDOUT_SEEDS = range(1_000_000_000, 1_100_000_000)``; ``heldout_seed(i)``
  gives the i-th one.

Sizes below are stated for the reference resolution of 224 px and scale
linearly (lengths) or quadratically (pixel counts) with ``size``.

A quarter of the scenes hold none of the classes (background alone, or with
distractors), and most scenes carry distractors: whole shapes that are not
among the classes (ellipses, bars, pentagons, hexagons, blobs, other letters,
and ring-like shapes that are not rings: bullseyes, frames, oval rings), painted
like the objects, some larger than any object. Backgrounds are of three
kinds: smooth noise with clutter, "dead leaves" (many overlapping shapes, whose
statistics resemble natural photographs) and coloured 1/f noise. Distractors and
leaves are what teach the model that a blob or a texture is not yet a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from model.registry import SCENE_CLASSES

CLASSES = SCENE_CLASSES

TRAIN_SEEDS = range(0, 1_000_000_000)
HELDOUT_SEEDS = range(1_000_000_000, 1_100_000_000)

# ImageNet statistics, so pretrained-style normalisation conventions apply.
MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

REFERENCE_SIZE = 224
MIN_OBJECTS, MAX_OBJECTS = 1, 4
RADIUS_RANGE = (32.0, 64.0)  # circumscribed radius at REFERENCE_SIZE
# Fewer objects are likelier: a small model on two CPU cores learned nothing about classes
# within 13 k scenes when counts were uniform, occlusion heavier and objects smaller.
OBJECT_COUNT_WEIGHTS = (0.4, 0.3, 0.2, 0.1)  # for 1, 2, 3, 4 objects
# Scenes with none of the classes, so that "nothing I know" is an answer the model has seen.
EMPTY_SCENE_SHARE = 0.25
DISTRACTOR_COUNT_WEIGHTS = (0.35, 0.35, 0.2, 0.1)  # for 0, 1, 2, 3 distractors
DISTRACTOR_RADIUS_RANGE = (24.0, 110.0)  # up to well past the largest object
BACKGROUND_KINDS = ("clutter", "leaves", "spectral")
BACKGROUND_WEIGHTS = (0.4, 0.35, 0.25)
MIN_VISIBLE_FRACTION = 0.6
MIN_VISIBLE_PIXELS = 300  # at REFERENCE_SIZE
PLACEMENT_TRIES = 30

# Templates are rendered once at this resolution and warped into each scene,
# so every class goes through the same rotate/scale/translate code path.
TEMPLATE_SIZE = 192
TEMPLATE_RADIUS = 88.0

TEXTURES = ("solid", "stripes", "dots")


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays is ambiguous
class Scene:
    image: np.ndarray  # uint8, H x W x 3, RGB
    labels: np.ndarray  # float32, len(CLASSES), multi-hot
    masks: np.ndarray  # bool, K x H x W, visible pixels of each object
    classes: tuple[int, ...]  # class index of each mask, same order
    seed: int
    distractors: int = 0  # shapes that are none of the classes, painted under the objects


def heldout_seed(i: int) -> int:
    """The i-th held-out seed; raises IndexError past the end of the range."""
    return HELDOUT_SEEDS[i]


# ---------------------------------------------------------------------------
# Class templates: binary uint8 masks centred in a TEMPLATE_SIZE square, with
# the shape inscribed in a circle of TEMPLATE_RADIUS (the object's "radius").
# ---------------------------------------------------------------------------


def _to_template_pixels(points: np.ndarray) -> np.ndarray:
    """Map unit-circle coordinates (y up) to template pixel coordinates."""
    centre = TEMPLATE_SIZE / 2.0
    pixels = np.empty_like(points, dtype=np.float64)
    pixels[:, 0] = centre + points[:, 0] * TEMPLATE_RADIUS
    pixels[:, 1] = centre - points[:, 1] * TEMPLATE_RADIUS
    return np.round(pixels).astype(np.int32)


def _polygon_template(points: np.ndarray) -> np.ndarray:
    canvas = np.zeros((TEMPLATE_SIZE, TEMPLATE_SIZE), np.uint8)
    cv2.fillPoly(canvas, [_to_template_pixels(points)], 255, cv2.LINE_AA)
    return canvas


def _regular_polygon(n_vertices: int, phase: float = np.pi / 2) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(n_vertices) / n_vertices
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def _star_points(n_tips: int = 5, inner_ratio: float = 0.45) -> np.ndarray:
    angles = np.pi / 2 + np.pi * np.arange(2 * n_tips) / n_tips
    radii = np.where(np.arange(2 * n_tips) % 2 == 0, 1.0, inner_ratio)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _heart_points() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    points = np.stack([x, y + 2.5], axis=1)  # +2.5 roughly centres the lobes/tip
    return points / np.linalg.norm(points, axis=1).max()


def _cross_points(half_width: float = 0.3, arm: float = 0.95) -> np.ndarray:
    w, a = half_width, arm
    return np.array(
        [(w, a), (w, w), (a, w), (a, -w), (w, -w), (w, -a),
         (-w, -a), (-w, -w), (-a, -w), (-a, w), (-w, w), (-w, a)]
    )


def _arrow_points() -> np.ndarray:
    return np.array(
        [(-0.95, 0.17), (0.15, 0.17), (0.15, 0.6), (0.95, 0.0),
         (0.15, -0.6), (0.15, -0.17), (-0.95, -0.17)]
    )


def _disc_template(offset_x: float, radius: float) -> np.ndarray:
    canvas = np.zeros((TEMPLATE_SIZE, TEMPLATE_SIZE), np.uint8)
    centre = tuple(_to_template_pixels(np.array([[offset_x, 0.0]]))[0])
    cv2.circle(canvas, centre, int(round(radius * TEMPLATE_RADIUS)), 255, -1, cv2.LINE_AA)
    return canvas


def _glyph_template(text: str) -> np.ndarray:
    """Render a thick glyph and scale its bounding box into the unit circle."""
    big = np.zeros((400, 400), np.uint8)
    cv2.putText(big, text, (60, 330), cv2.FONT_HERSHEY_SIMPLEX, 9, 255, 34, cv2.LINE_AA)
    x, y, w, h = cv2.boundingRect(big)
    scale = 2 * TEMPLATE_RADIUS / np.hypot(w, h)
    glyph = cv2.resize(big[y:y + h, x:x + w], None, fx=scale, fy=scale,
                       interpolation=cv2.INTER_AREA)
    canvas = np.zeros((TEMPLATE_SIZE, TEMPLATE_SIZE), np.uint8)
    top = (TEMPLATE_SIZE - glyph.shape[0]) // 2
    left = (TEMPLATE_SIZE - glyph.shape[1]) // 2
    canvas[top:top + glyph.shape[0], left:left + glyph.shape[1]] = glyph
    return canvas


def _build_template(name: str) -> np.ndarray:
    if name == "circle":
        return _disc_template(0.0, 1.0)
    if name == "square":
        return _polygon_template(_regular_polygon(4, np.pi / 4))
    if name == "triangle":
        return _polygon_template(_regular_polygon(3))
    if name == "star":
        return _polygon_template(_star_points())
    if name == "ring":
        # Inner radius 0.6 keeps the band thick enough to survive downscaling.
        return cv2.subtract(_disc_template(0.0, 1.0), _disc_template(0.0, 0.6))
    if name == "cross":
        return _polygon_template(_cross_points())
    if name == "heart":
        return _polygon_template(_heart_points())
    if name == "crescent":
        return cv2.subtract(_disc_template(0.0, 1.0), _disc_template(0.45, 0.82))
    if name == "arrow":
        return _polygon_template(_arrow_points())
    if name == "letter_A":
        return _glyph_template("A")
    raise ValueError(f"no template for class {name!r}")


@lru_cache(maxsize=None)
def class_template(class_index: int) -> np.ndarray:
    template = _build_template(CLASSES[class_index])
    template.setflags(write=False)  # shared through the cache
    return template


# Distractors: whole shapes that are none of the classes. Ellipses and bars are clearly
# elongated (never a circle or a square); the letters share no outline with "A". The last three
# are ring-like without being rings: a bullseye is a ring whose hole holds a disc of its own paint
# (a ring shows the background through its hole; a cup of coffee seen from above, an eye), a frame
# is square, an oval ring clearly elongated. The shipped model's second edition, trained without
# them, called the coffee photograph a ring with 0.999.
DISTRACTORS: tuple[str, ...] = ("ellipse", "bar", "pentagon", "hexagon", "blob",
                                "letter_B", "letter_E", "letter_K", "letter_S", "letter_Z",
                                "bullseye", "frame", "oval_ring")


def _ellipse_template(aspect: float, scale: float = 1.0) -> np.ndarray:
    canvas = np.zeros((TEMPLATE_SIZE, TEMPLATE_SIZE), np.uint8)
    centre = (TEMPLATE_SIZE // 2, TEMPLATE_SIZE // 2)
    axes = (int(TEMPLATE_RADIUS * scale), int(TEMPLATE_RADIUS * scale / aspect))
    cv2.ellipse(canvas, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    return canvas


def _blob_points(rng: np.random.Generator) -> np.ndarray:
    """A smooth irregular outline: a radius that wanders with a few low harmonics."""
    angles = np.linspace(0, 2 * np.pi, 90, endpoint=False)
    radius = np.ones_like(angles)
    for harmonic in (2, 3, 4):
        radius += rng.uniform(0.08, 0.22) * np.cos(harmonic * angles + rng.uniform(0, 2 * np.pi))
    radius /= radius.max()
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _bullseye_layers(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A disc, then one or two concentric discs inside it, each painted afresh over the last."""
    inner = float(rng.uniform(0.45, 0.75))
    radii = [1.0, inner] + ([inner * float(rng.uniform(0.35, 0.65))] if rng.uniform() < 0.5 else [])
    return tuple(_disc_template(0.0, radius) for radius in radii)


def distractor_layers(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A fresh distractor, inscribed in the template circle like a class template.

    Its shapes in painting order, each painted with colours of its own: one shape for most kinds;
    the first is always the whole outline.
    """
    kind = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
    if kind == "ellipse":
        return (_ellipse_template(float(rng.uniform(1.6, 3.0))),)
    if kind == "bar":
        aspect = float(rng.uniform(2.0, 5.0))
        half_height = 1.0 / np.hypot(aspect, 1.0)
        half_width = aspect * half_height
        return (_polygon_template(np.array([(half_width, half_height), (-half_width, half_height),
                                            (-half_width, -half_height), (half_width, -half_height)])),)
    if kind == "pentagon":
        return (_polygon_template(_regular_polygon(5)),)
    if kind == "hexagon":
        return (_polygon_template(_regular_polygon(6)),)
    if kind == "blob":
        return (_polygon_template(_blob_points(rng)),)
    if kind == "bullseye":
        return _bullseye_layers(rng)
    if kind == "frame":
        square, hole = _regular_polygon(4, np.pi / 4), float(rng.uniform(0.5, 0.75))
        return (cv2.subtract(_polygon_template(square), _polygon_template(hole * square)),)
    if kind == "oval_ring":
        aspect = float(rng.uniform(1.6, 3.0))
        return (cv2.subtract(_ellipse_template(aspect), _ellipse_template(aspect, float(rng.uniform(0.55, 0.75)))),)
    return (_glyph_template(kind.removeprefix("letter_")),)


# ---------------------------------------------------------------------------
# Background
# ---------------------------------------------------------------------------


# Smooth background fields are composed at this coarse side and upsampled once:
# they carry no detail finer than a few pixels, and full-resolution arithmetic
# would dominate the generation time.
FIELD_SIZE = 56


def _smooth_noise(rng: np.random.Generator, cells: int, amplitude: float) -> np.ndarray:
    """Colour noise at FIELD_SIZE: a tiny random grid upsampled bicubically."""
    coarse = rng.uniform(-amplitude, amplitude, (cells, cells, 3)).astype(np.float32)
    return cv2.resize(coarse, (FIELD_SIZE, FIELD_SIZE), interpolation=cv2.INTER_CUBIC)


def _linear_gradient(rng: np.random.Generator, amplitude: float) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-1.0, 1.0, FIELD_SIZE, dtype=np.float32)
    field = np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None]
    tint = rng.uniform(-amplitude, amplitude, 3).astype(np.float32)
    return field[:, :, None] * tint


def _draw_clutter(rng: np.random.Generator, canvas: np.ndarray, base: np.ndarray,
                  contrast: float) -> None:
    """Thin lines and small elongated blobs, dim enough to stay secondary.

    Blobs are always clearly elongated and far smaller than any object, so the
    clutter never contains a full class shape (e.g. a tiny circle).
    """
    size = canvas.shape[0]
    scale = size / REFERENCE_SIZE
    n_lines = int(rng.integers(3, 9))
    n_blobs = int(rng.integers(4, 14))
    colours = np.clip(base + rng.uniform(-contrast, contrast, (n_lines + n_blobs, 3)), 0, 255)
    colours = [tuple(float(v) for v in colour) for colour in colours]

    for colour in colours[:n_lines]:
        start = tuple(int(v) for v in rng.integers(0, size, 2))
        end = tuple(int(v) for v in rng.integers(0, size, 2))
        thickness = int(rng.integers(1, 3))
        cv2.line(canvas, start, end, colour, thickness, cv2.LINE_AA)

    for colour in colours[n_lines:]:
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        long_axis = rng.uniform(4, 10) * scale
        short_axis = long_axis / rng.uniform(2.0, 4.0)
        axes = (max(1, int(long_axis)), max(1, int(short_axis)))
        angle = float(rng.uniform(0, 180))
        cv2.ellipse(canvas, centre, axes, angle, 0, 360, colour, -1, cv2.LINE_AA)


def _leaves_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dead leaves: overlapping random ellipses and polygons of many sizes, then a slight blur.

    Sizes follow a power law (many small, few large), as in the classic model of natural-image
    statistics. Ellipses are never round, so no leaf is a whole circle.
    """
    scale = size / REFERENCE_SIZE
    palette = rng.uniform(20, 235, (int(rng.integers(3, 7)), 3))
    canvas = np.empty((size, size, 3), np.float32)
    canvas[:] = palette[0]
    for _ in range(int(rng.integers(80, 220))):
        colour = np.clip(palette[int(rng.integers(len(palette)))] + rng.normal(0, 18, 3), 0, 255)
        colour = tuple(float(v) for v in colour)
        radius = scale * 4.0 * (1 - rng.uniform()) ** -0.8  # Pareto-like, from 4 px up
        radius = min(radius, size * 0.6)
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        if rng.uniform() < 0.5:
            aspect = rng.uniform(1.5, 4.0)
            axes = (max(1, int(radius)), max(1, int(radius / aspect)))
            cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        else:
            points = _blob_points(rng) * radius + np.array(centre)
            cv2.fillPoly(canvas, [np.round(points).astype(np.int32)], colour, cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 1.5) * scale)


def _spectral_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Coloured noise with a 1/f^a amplitude spectrum (a in 1..2), the falloff of photographs."""
    frequencies = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.rfftfreq(size), indexing="ij"))
    frequencies[0, 0] = 1.0
    falloff = frequencies ** -rng.uniform(1.0, 2.0)
    falloff[0, 0] = 0.0
    channels = []
    for _ in range(3):
        spectrum = falloff * np.exp(2j * np.pi * rng.uniform(size=falloff.shape))
        field = np.fft.irfft2(spectrum, s=(size, size))
        channels.append(field / (field.std() + 1e-9))
    mixing = rng.normal(0, 1, (3, 3)) * 0.4 + np.eye(3)  # correlated channels, like real colour
    field = np.stack(channels, axis=-1) @ mixing.T
    base = rng.uniform(60, 195, 3)
    return np.clip(base + field * rng.uniform(20, 45), 0, 255).astype(np.float32)


def make_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Float32 RGB background of a random kind (see the module docstring), values in [0, 255]."""
    kind = BACKGROUND_KINDS[int(rng.choice(len(BACKGROUND_KINDS), p=BACKGROUND_WEIGHTS))]
    if kind == "leaves":
        return _leaves_background(rng, size)
    if kind == "spectral":
        return _spectral_background(rng, size)
    return _clutter_background(rng, size)


def _clutter_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Smooth colour noise around a random base colour, with thin lines and small blobs."""
    base = rng.uniform(50, 205, 3).astype(np.float32)
    field = (
        base
        + _smooth_noise(rng, cells=int(rng.integers(3, 6)), amplitude=32)
        + _smooth_noise(rng, cells=int(rng.integers(10, 18)), amplitude=14)
        + _linear_gradient(rng, amplitude=28)
    )
    # Clipping before a linear upsample is equivalent to clipping after it.
    np.clip(field, 0, 255, out=field)
    canvas = cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)
    _draw_clutter(rng, canvas, base, contrast=22)
    return canvas


# ---------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _ObjectSpec:
    class_index: int
    radius: float
    angle_degrees: float


def _sample_spec(rng: np.random.Generator, size: int) -> _ObjectSpec:
    scale = size / REFERENCE_SIZE
    return _ObjectSpec(
        class_index=int(rng.integers(len(CLASSES))),
        radius=float(rng.uniform(*RADIUS_RANGE)) * scale,
        angle_degrees=float(rng.uniform(0, 360)),
    )


def _warp_template(template: np.ndarray, radius: float, angle_degrees: float,
                   centre: tuple[float, float], size: int) -> np.ndarray:
    half = TEMPLATE_SIZE / 2.0
    warp = cv2.getRotationMatrix2D((half, half), angle_degrees, radius / TEMPLATE_RADIUS)
    warp[:, 2] += (centre[0] - half, centre[1] - half)
    warped = cv2.warpAffine(template, warp, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    return warped > 127


def _render_object_mask(spec: _ObjectSpec, centre: tuple[float, float], size: int) -> np.ndarray:
    return _warp_template(class_template(spec.class_index), spec.radius, spec.angle_degrees, centre, size)


def _paint_distractors(rng: np.random.Generator, canvas: np.ndarray, count: int) -> None:
    """Draw ``count`` distractors onto the background, before any object (so objects stay whole).

    Centres may lie anywhere in the frame: large distractors are often cut by its edge.
    """
    size = canvas.shape[0]
    scale = size / REFERENCE_SIZE
    for _ in range(count):
        radius = float(rng.uniform(*DISTRACTOR_RADIUS_RANGE)) * scale
        centre = (float(rng.uniform(0, size)), float(rng.uniform(0, size)))
        angle = float(rng.uniform(0, 360))
        for layer in distractor_layers(rng):
            mask = _warp_template(layer, radius, angle, centre, size)
            if mask.any():
                _paint_object(rng, canvas, mask)


def _min_visible_pixels(size: int) -> float:
    return MIN_VISIBLE_PIXELS * (size / REFERENCE_SIZE) ** 2


def _occlusion_allowed(candidate: np.ndarray, visible: list[np.ndarray],
                       full_areas: list[int], size: int) -> bool:
    """Would every earlier object keep enough of itself visible under candidate?"""
    floor = _min_visible_pixels(size)
    for earlier_visible, full_area in zip(visible, full_areas):
        remaining = np.count_nonzero(earlier_visible & ~candidate)
        if remaining < max(floor, MIN_VISIBLE_FRACTION * full_area):
            return False
    return True


def _place_object(rng: np.random.Generator, spec: _ObjectSpec, visible: list[np.ndarray],
                  full_areas: list[int], size: int) -> np.ndarray | None:
    """Full mask at an acceptable position, or None after PLACEMENT_TRIES misses."""
    # Centres keep the whole shape inside the frame, so its full area is visible
    # when placed and the visibility fraction is relative to the true shape.
    low, high = spec.radius, size - spec.radius
    for _ in range(PLACEMENT_TRIES):
        centre = (float(rng.uniform(low, high)), float(rng.uniform(low, high)))
        mask = _render_object_mask(spec, centre, size)
        if np.count_nonzero(mask) < _min_visible_pixels(size):
            continue
        if _occlusion_allowed(mask, visible, full_areas, size):
            return mask
    return None


# ---------------------------------------------------------------------------
# Colour and texture
# ---------------------------------------------------------------------------

_DILATION_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))


def _surrounding_colours(canvas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Colours in a thin band just outside the mask: what the outline must beat."""
    band = cv2.dilate(mask.view(np.uint8), _DILATION_KERNEL).view(bool) & ~mask
    return canvas[band]


_MAX_SURROUNDING_SAMPLES = 256


def _contrast_score(colours: np.ndarray, surroundings: np.ndarray) -> np.ndarray:
    """10th-percentile squared RGB distance per colour to the surroundings.

    A low percentile (not the mean) penalises colours that match even part of
    the boundary. Evenly thinning the surroundings keeps this cheap.
    """
    step = max(1, len(surroundings) // _MAX_SURROUNDING_SAMPLES)
    sample = surroundings[::step]
    squared = ((sample[:, None, :] - colours[None, :, :]) ** 2).sum(axis=2)
    k = len(sample) // 10
    return np.partition(squared, k, axis=0)[k]


def _pick_colours(rng: np.random.Generator, surroundings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Primary colour far from the surroundings, plus a same-hue texture shade."""
    candidates = rng.integers(0, 256, (24, 3)).astype(np.float32)
    primary = candidates[np.argmax(_contrast_score(candidates, surroundings))]
    # A darker or lighter shade of the primary keeps textured objects coherent;
    # take whichever shade also stands out more from the surroundings.
    shades = np.stack([primary * 0.5, primary + (255 - primary) * 0.55])
    secondary = shades[np.argmax(_contrast_score(shades, surroundings))]
    return primary, secondary


def _texture_pattern(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray,
                     size: int) -> np.ndarray:
    """Boolean per masked pixel: True where the secondary colour shows."""
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    if texture == "solid":
        return np.zeros(ys.shape, bool)
    scale = size / REFERENCE_SIZE
    angle = rng.uniform(0, np.pi)
    u = xs * np.cos(angle) + ys * np.sin(angle)
    v = -xs * np.sin(angle) + ys * np.cos(angle)
    if texture == "stripes":
        period = rng.uniform(6, 14) * scale
        return (u % period) < period / 2
    period = rng.uniform(8, 14) * scale
    dot_radius = rng.uniform(0.22, 0.32) * period
    du = (u % period) - period / 2
    dv = (v % period) - period / 2
    return du * du + dv * dv < dot_radius * dot_radius


def _paint_object(rng: np.random.Generator, canvas: np.ndarray, mask: np.ndarray) -> None:
    primary, secondary = _pick_colours(rng, _surrounding_colours(canvas, mask))
    ys, xs = np.nonzero(mask)
    use_secondary = _texture_pattern(rng, ys.astype(np.float32), xs.astype(np.float32),
                                     canvas.shape[0])
    canvas[ys, xs] = np.where(use_secondary[:, None], secondary, primary)


# ---------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------


def _to_uint8(canvas: np.ndarray) -> np.ndarray:
    # convertScaleAbs rounds and saturates in one fast pass; the canvas is
    # already non-negative, so its absolute value is a no-op.
    return cv2.convertScaleAbs(canvas)


def _labels_from_classes(classes: tuple[int, ...]) -> np.ndarray:
    labels = np.zeros(len(CLASSES), np.float32)
    labels[list(classes)] = 1.0
    return labels


def make_scene(seed: int, size: int = REFERENCE_SIZE) -> Scene:
    """The scene for ``seed``; identical output for identical (seed, size)."""
    rng = np.random.default_rng(seed)
    canvas = make_background(rng, size)
    distractors = int(rng.choice(len(DISTRACTOR_COUNT_WEIGHTS), p=DISTRACTOR_COUNT_WEIGHTS))
    _paint_distractors(rng, canvas, distractors)
    visible: list[np.ndarray] = []
    full_areas: list[int] = []
    classes: list[int] = []
    empty = rng.uniform() < EMPTY_SCENE_SHARE
    count = 0 if empty else int(rng.choice(np.arange(MIN_OBJECTS, MAX_OBJECTS + 1), p=OBJECT_COUNT_WEIGHTS))
    for _ in range(count):
        spec = _sample_spec(rng, size)
        mask = _place_object(rng, spec, visible, full_areas, size)
        if mask is None:
            continue  # the first object never collides, so >= 1 always remains
        visible = [earlier & ~mask for earlier in visible]
        visible.append(mask)
        full_areas.append(int(np.count_nonzero(mask)))
        classes.append(spec.class_index)
        _paint_object(rng, canvas, mask)
    return Scene(
        image=_to_uint8(canvas),
        labels=_labels_from_classes(tuple(classes)),
        masks=np.stack(visible) if visible else np.zeros((0, size, size), bool),
        classes=tuple(classes),
        seed=seed,
        distractors=distractors,
    )


# ---------------------------------------------------------------------------
# Token-labelling targets
# ---------------------------------------------------------------------------


def patch_coverage(scene: Scene, grid: int = 7) -> np.ndarray:
    """Fraction of each patch (row-major, grid x grid) covered by each class.

    INTER_AREA averages exactly over each patch's footprint, including the
    fractional pixels at patch borders when the side is not divisible by grid.
    """
    coverage = np.zeros((grid * grid, len(CLASSES)), np.float32)
    for class_index in set(scene.classes):
        of_class = [m for m, c in zip(scene.masks, scene.classes) if c == class_index]
        union = np.logical_or.reduce(of_class).astype(np.float32)
        coverage[:, class_index] = cv2.resize(
            union, (grid, grid), interpolation=cv2.INTER_AREA).reshape(-1)
    return coverage


def patch_targets(scene: Scene, grid: int = 7, threshold: float = 0.3) -> np.ndarray:
    """1 where a class covers more than ``threshold`` of a patch, else 0."""
    return (patch_coverage(scene, grid) > threshold).astype(np.float32)


def object_coverage(scene: Scene, grid: int) -> np.ndarray:
    """(MAX_OBJECTS, grid, grid): the fraction of each cell covered by each object's visible mask.

    Rows past the scene's object count are zero, so scenes batch together.
    """
    coverage = np.zeros((MAX_OBJECTS, grid, grid), np.float32)
    for index, mask in enumerate(scene.masks):
        coverage[index] = cv2.resize(mask.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    return coverage


# ---------------------------------------------------------------------------
# Torch dataset
# ---------------------------------------------------------------------------


def normalise_image(image: np.ndarray) -> torch.Tensor:
    """uint8 H x W x 3 RGB -> float32 3 x H x W, ImageNet-normalised."""
    scaled = torch.from_numpy(image).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return scaled.sub_(mean).div_(std)


class SceneDataset(Dataset):
    """Scenes generated on the fly from a seed range; nothing is stored.

    ``transform`` is applied to the normalised image tensor only, so it must
    not move pixels (no flips/crops) or the patch targets stop lining up.
    """

    def __init__(self, seeds: range, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 grid: int = 7, size: int = REFERENCE_SIZE, object_grid: int = 56) -> None:
        self.seeds = seeds
        self.transform = transform
        self.grid = grid
        self.size = size
        self.object_grid = object_grid

    def __len__(self) -> int:
        return len(self.seeds)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Image, multi-hot labels, per-patch targets (grid^2, classes), object coverage (4, g, g)."""
        scene = make_scene(self.seeds[i], self.size)
        image = normalise_image(scene.image)
        if self.transform is not None:
            image = self.transform(image)
        labels = torch.from_numpy(scene.labels)
        targets = torch.from_numpy(patch_targets(scene, self.grid))
        objects = torch.from_numpy(object_coverage(scene, self.object_grid))
        return image, labels, targets, objects
