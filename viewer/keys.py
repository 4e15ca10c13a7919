"""Colour keys: what a colour on a picture means, drawn as HTML for the page (and, by
:mod:`viewer.figure_files`, as vectors for every exported figure, so a figure pasted into a lecture keeps
its key).
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from viewer import overlay

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
