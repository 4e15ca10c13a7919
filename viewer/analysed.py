"""One analysed image: its trace, the model input and the copies of the original that the views draw on.

No Gradio and no drawing here: the service makes these, the views read them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from model.preprocess import Geometry
from model.trace import Trace

# Overlays are drawn on a copy of the original no larger than this, so a view change stays fast
# whatever the upload's size.
DISPLAY_SIDE = 768
# Smaller originals are enlarged to this for drawing, so cell borders and outlines stay crisp.
MIN_DISPLAY_SIDE = 512
THUMBNAIL_SIDE = 128


@dataclass(frozen=True)
class Analysis:
    """One analysed image: its trace and the copy of the original that the views draw on."""

    trace: Trace
    inputs: torch.Tensor  # (1, 3, H, W) the model input, on the CPU (for the attribution methods)
    display: np.ndarray  # (H, W, 3) uint8 RGB: the original, downscaled to DISPLAY_SIDE at most
    geometry: Geometry  # model input -> display copy
    thumbnail: np.ndarray  # the original at THUMBNAIL_SIDE at most, for galleries
    thumbnail_geometry: Geometry  # model input -> thumbnail
    resolution: str
    notes: tuple[str, ...]
    name: str = "image"  # the image's file name, as exported figures and decks name it

    def nbytes(self) -> int:
        return (self.trace.nbytes() + self.inputs.numel() * self.inputs.element_size() + self.display.nbytes
                + self.thumbnail.nbytes)


def display_copy(image: Image.Image, side: int, min_side: int = 0) -> Image.Image:
    """``image`` scaled so that its longer side is at most ``side`` (and, with ``min_side``, at least that)."""
    longest = max(image.size)
    if min_side <= longest <= side:
        return image
    scale = (side if longest > side else min_side) / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.BILINEAR if scale < 1 else Image.BICUBIC)
