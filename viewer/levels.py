"""How a map's values become colour levels: one definition for the server's pictures and the browser's.

An attention weight is read against uniform attention (each key weighted 1/N): a map's colour runs from
uniform (no colour) up to its scale's top, which is at least :data:`TOP_AT_LEAST` times uniform, so a map
no more peaked than uniform is drawn faint, however its values are stretched. A map is stored once, as
one byte per cell (:func:`quantise`: the value over the map's own top), with its top in multiples of
uniform; every colour index is then computed from those bytes with the same float64 arithmetic here and
in ``viewer/static/levels.js``, so both draw the same pixels.

Attribution maps have no uniform: they run from 0 to their peak.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from analysis.trace_maths import STANDS_OUT, mass_levels, stacked_mass_levels

# The top of an attention map's colour scale is at least this many times uniform attention: the
# least peak by which a map stands out from uniform (analysis.trace_maths.STANDS_OUT).
TOP_AT_LEAST = STANDS_OUT
LEVELS = 255


def quantise(values: np.ndarray, top: float | np.ndarray) -> np.ndarray:
    """(same shape) uint8: each value as a share of ``top`` (in the values' own unit; or an array of tops
    that broadcasts against the values), in 255 steps."""
    scaled = np.clip(np.nan_to_num(np.asarray(values, np.float64), nan=0.0) / top, 0.0, 1.0)
    return np.floor(scaled * LEVELS + 0.5).astype(np.uint8)


def attention_indices(stored: np.ndarray, top: float, shared_top: float | None = None) -> np.ndarray:
    """Colour indices (uint8) of an attention map stored with ``top`` (multiples of uniform), on its own scale
    or on ``shared_top`` (the largest top of the maps shown together)."""
    ratio = stored.astype(np.float64) / LEVELS * top  # each cell in multiples of uniform
    span = (shared_top if shared_top is not None else top) - 1.0
    return np.floor(np.clip((ratio - 1.0) / span, 0.0, 1.0) * LEVELS + 0.5).astype(np.uint8)


def shared_top(tops: Sequence[float]) -> float:
    return max(tops)


def standing(stored: np.ndarray, top: float) -> float:
    """How far an attention map's peak stands above uniform on its own scale (0: flat, 1: at least the
    scale's floor): the mass view's bands are drawn this strongly, so a flat map's regions stay faint."""
    return float(attention_indices(np.asarray([stored.max()]), top)[0]) / LEVELS


def weights(indices: np.ndarray, opacity: float) -> np.ndarray:
    """(same shape) float64: how strongly each colour index is blended over the photo, rising as the square
    root of the level (middling values, the colour map's dark ones, still show over a dark photo)."""
    return opacity * np.sqrt(indices.astype(np.float64) / LEVELS)


@dataclass(frozen=True)
class StoredMap:
    """A map as both renderers draw it: one byte per cell (:func:`quantise`), how to read the bytes, and
    its mass levels (0 to 3: how many of the nested regions holding 50%, 80% and 95% of its mass a cell
    lies in, from the exact values).

    Attention maps (``uniform`` the weight of uniform attention, 1 / keys) keep ``top`` in multiples of
    uniform; attribution maps (``uniform`` None) keep their peak.
    """

    cells: np.ndarray
    top: float
    uniform: float | None
    mass: np.ndarray
    total: float = float("nan")  # the sum of the exact values: a cell's share of the map's mass

    @classmethod
    def of_attention(cls, values: np.ndarray, uniform: float) -> "StoredMap":
        return cls.stack_of_attention(np.asarray(values)[None], uniform)[0]

    @classmethod
    def stack_of_attention(cls, maps: np.ndarray, uniform: float) -> list["StoredMap"]:
        """:meth:`of_attention` of each of ``maps`` (K, h, w), their mass levels in one pass."""
        maps = np.asarray(maps)
        mass = stacked_mass_levels(maps).astype(np.uint8)
        peaks = np.nanmax(maps.reshape(len(maps), -1), axis=1)
        tops = np.maximum(peaks / uniform, TOP_AT_LEAST).astype(np.float32)  # as the browser receives them
        cells = quantise(maps, tops.astype(np.float64).reshape(-1, *[1] * (maps.ndim - 1)) * uniform)
        totals = maps.reshape(len(maps), -1).astype(np.float64).sum(axis=1)
        return [cls(map_cells, float(top), float(uniform), levels_of_map, float(total))
                for map_cells, top, levels_of_map, total in zip(cells, tops, mass, totals)]

    @classmethod
    def of_attribution(cls, values: np.ndarray) -> "StoredMap":
        """A non-negative attribution map (its positive part)."""
        peak = float(np.nanmax(values))
        cells = quantise(values, peak) if peak > 0 else np.zeros(np.shape(values), np.uint8)
        return cls(cells, peak, None, mass_levels(values).astype(np.uint8), float(np.sum(values, dtype=np.float64)))

    @property
    def shape(self) -> tuple[int, int]:
        return self.cells.shape

    def indices(self, shared: float | None = None) -> np.ndarray:
        """Colour indices on the map's own scale, or on ``shared`` (a shared top, attention only)."""
        return attention_indices(self.cells, self.top, shared) if self.uniform is not None else self.cells

    def standing(self) -> float:
        return standing(self.cells, self.top) if self.uniform is not None else 1.0

    def values(self) -> np.ndarray:
        """The values the bytes stand for (each within half a step of 1/255 of the top)."""
        unit = self.top * self.uniform if self.uniform is not None else self.top
        return self.cells.astype(np.float64) / LEVELS * unit
