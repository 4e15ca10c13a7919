"""Colour keys: what a colour on a picture means, drawn as HTML for the page and as a strip for PNGs.

One :class:`ColourKey` per picture; the page shows :func:`key_html` under it and every exported
image carries :func:`with_key`, so a figure pasted into a lecture keeps its key.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import cv2
import numpy as np

from viewer import overlay

STRIP_HEIGHT = 44
RAMP_STEPS = 11


@dataclass(frozen=True)
class ColourKey:
    """A continuous colour bar (``low`` to ``high`` in ``unit``) or named swatches (``swatches``).

    ``low``/``high`` None: each map is scaled to its own range (the text says so instead of numbers).
    """

    unit: str
    colormap: str = "inferno"
    low: float | None = None
    high: float | None = None
    high_label: str = ""
    low_label: str = ""
    swatches: tuple[tuple[str, tuple[int, int, int]], ...] = field(default=())
    note: str = ""

    @property
    def is_continuous(self) -> bool:
        return not self.swatches

    def ends(self) -> tuple[str, str]:
        """The texts at the two ends of the bar."""
        low = self.low_label or ("0" if self.low is None else number(self.low))
        high = self.high_label or ("its own peak" if self.high is None else number(self.high))
        return low, high


def number(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"


def ramp(colormap: str, steps: int = RAMP_STEPS) -> list[tuple[int, int, int]]:
    values = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :]
    return [tuple(int(c) for c in rgb) for rgb in overlay.colorize(values, 0.0, 1.0, colormap)[0]]


def css_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def key_html(key: ColourKey) -> str:
    """A small self-contained HTML key (class ``colour-key``)."""
    unit = html.escape(key.unit)
    note = f'<span class="key-note">{html.escape(key.note)}</span>' if key.note else ""
    if key.is_continuous:
        # Low values are drawn transparent over the photo, which the pictures show in grey: the bar
        # fades in from that grey (the bar's own background), not from the page.
        stops = ", ".join(f"{css_colour(rgb)}{'00' if i == 0 else ''}" for i, rgb in enumerate(ramp(key.colormap)))
        low, high = (html.escape(text) for text in key.ends())
        return (f'<div class="colour-key" role="img" aria-label="colour key: {unit} from {low} to {high}">'
                f'<span class="key-end">{low}</span>'
                f'<span class="key-bar" style="background-image: linear-gradient(to right, {stops})"></span>'
                f'<span class="key-end">{high}</span><span class="key-unit">{unit}</span>{note}</div>')
    items = "".join(f'<span class="key-swatch"><i style="background:{css_colour(rgb)}"></i>{html.escape(label)}</span>'
                    for label, rgb in key.swatches)
    return (f'<div class="colour-key" role="img" aria-label="colour key: {unit}">'
            f'<span class="key-unit">{unit}</span>{items}{note}</div>')


# A mid-grey photo as the pictures show it under a map: the colour bar's zero end.
BACKDROP_GREY_RGB = (round(128 * overlay.BACKDROP_BRIGHTNESS),) * 3
BACKDROP_GREY = css_colour(BACKDROP_GREY_RGB)


def bar_colours(colormap: str, width: int) -> np.ndarray:
    """(width, 3) uint8: the key's bar for a PNG, drawn as the page draws it: the colour map over
    that grey, fading in over the first of its ``RAMP_STEPS - 1`` steps (the page's first stop is
    transparent), as a map's low values fade into the photo."""
    positions = np.linspace(0.0, 1.0, width, dtype=np.float32)
    colours = overlay.colorize(positions[None, :], 0.0, 1.0, colormap)[0].astype(np.float32)
    opacity = np.clip(positions * (RAMP_STEPS - 1), 0.0, 1.0)[:, None]
    return np.round(colours * opacity + np.float32(BACKDROP_GREY_RGB) * (1 - opacity)).astype(np.uint8)

KEY_CSS = """
.colour-key {display: flex; flex-wrap: wrap; align-items: center; gap: 4px 8px; font-size: 0.85rem;
  margin: 4px 0 8px; color: var(--body-text-color);}
.colour-key .key-bar {display: inline-block; flex: 1 1 120px; max-width: 260px; height: 12px;
  border: 1px solid var(--border-color-primary); border-radius: 2px;}
.colour-key .key-swatch {display: inline-flex; align-items: center; gap: 4px; white-space: nowrap;}
.colour-key .key-swatch i {display: inline-block; width: 14px; height: 14px; border-radius: 2px;
  border: 1px solid var(--border-color-primary);}
.colour-key .key-unit {font-weight: 600;}
.colour-key .key-note {flex-basis: 100%; color: var(--body-text-color);}
""" + f".colour-key .key-bar {{background-color: {BACKDROP_GREY};}}\n"


def put_text(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.45,
             colour: tuple[int, int, int] = (20, 20, 20)) -> int:
    """Text drawn at ``origin`` (left, baseline); returns the x just after it."""
    font, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1
    cv2.putText(image, text, origin, font, scale, colour, thickness, cv2.LINE_AA)
    return origin[0] + cv2.getTextSize(text, font, scale, thickness)[0][0]


def key_strip(key: ColourKey, width: int) -> np.ndarray:
    """(STRIP_HEIGHT, width, 3) uint8 RGB: the key drawn for a PNG, on white."""
    strip = np.full((STRIP_HEIGHT, width, 3), 255, np.uint8)
    margin, baseline = 6, 18
    if key.is_continuous:
        low, high = key.ends()
        x = put_text(strip, low, (margin, baseline)) + 6
        bar_width = max(40, min(260, width - x - 140))
        colours = bar_colours(key.colormap, bar_width)[None].repeat(12, axis=0)
        strip[baseline - 11:baseline + 1, x:x + bar_width] = colours[:, :max(0, min(bar_width, width - x))]
        x = put_text(strip, high, (x + bar_width + 6, baseline)) + 8
        put_text(strip, key.unit, (x, baseline), colour=(60, 60, 60))
    else:
        x = put_text(strip, key.unit + ":", (margin, baseline)) + 8
        for label, rgb in key.swatches:
            needed = 18 + cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] + 10
            if x + needed > width:
                break  # the page lists them all; a narrow PNG shows the largest first
            cv2.rectangle(strip, (x, baseline - 11), (x + 12, baseline + 1), tuple(int(c) for c in rgb), -1)
            x = put_text(strip, label, (x + 16, baseline)) + 10
    if key.note:
        put_text(strip, key.note, (margin, baseline + 20), scale=0.4, colour=(60, 60, 60))
    return strip


CAPTION_HEIGHT = 30


def caption_strip(text: str, width: int) -> np.ndarray:
    """(CAPTION_HEIGHT, width, 3): a title in dark type on white, cut to fit."""
    strip = np.full((CAPTION_HEIGHT, width, 3), 255, np.uint8)
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1
    while text and cv2.getTextSize(text, font, scale, thickness)[0][0] > width - 8:
        text = text[:-1]
    cv2.putText(strip, text, (4, CAPTION_HEIGHT - 9), font, scale, (20, 20, 20), thickness, cv2.LINE_AA)
    return strip


def panel(title: str, image: np.ndarray, key: ColourKey | None, width: int) -> np.ndarray:
    """A figure for a PNG: its title above, the image scaled to ``width``, its key below."""
    image = np.asarray(image)
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    interpolation = cv2.INTER_AREA if width < image.shape[1] else cv2.INTER_NEAREST
    parts = [caption_strip(title, width), cv2.resize(image, (width, height), interpolation=interpolation)]
    if key is not None:
        parts.append(key_strip(key, width))
    return np.concatenate(parts, axis=0)


def side_by_side(images: list[np.ndarray], gap: int = 12) -> np.ndarray:
    """Images in a row on white, top-aligned, ``gap`` pixels apart."""
    height = max(image.shape[0] for image in images)
    parts = []
    for index, image in enumerate(images):
        column = np.full((height, image.shape[1], 3), 255, np.uint8)
        column[:image.shape[0]] = image
        parts.append(column)
        if index < len(images) - 1:
            parts.append(np.full((height, gap, 3), 255, np.uint8))
    return np.concatenate(parts, axis=1)


def one_above_another(images: list[np.ndarray], gap: int = 16) -> np.ndarray:
    """Images in a column on white, left-aligned, ``gap`` pixels apart."""
    width = max(image.shape[1] for image in images)
    parts = []
    for index, image in enumerate(images):
        row = np.full((image.shape[0], width, 3), 255, np.uint8)
        row[:, :image.shape[1]] = image
        parts.append(row)
        if index < len(images) - 1:
            parts.append(np.full((gap, width, 3), 255, np.uint8))
    return np.concatenate(parts, axis=0)


def with_key(image: np.ndarray, key: ColourKey) -> np.ndarray:
    """The image with its key strip below it (for PNG exports)."""
    image = np.asarray(image)
    return np.concatenate([image, key_strip(key, image.shape[1])], axis=0)
