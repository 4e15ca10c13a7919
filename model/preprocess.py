"""From a PIL image to the model input, keeping the geometry that relates the two.

Every map the explorer draws lives on the model input's grid; :class:`Geometry` carries it back
to the original image. The resize and centre crop reproduce timm's evaluation transform
(``timm.data.create_transform`` for the model's data config) exactly.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from timm.data import resolve_data_config

Mode = Literal["crop", "whole", "aspect"]
MODES: tuple[str, ...] = ("crop", "whole", "aspect")
# The aspect mode rounds each side to the stage-4 stride so that every pixel grid is exact.
SIDE_MULTIPLE = 32
MAX_ASPECT = 4.0
PIL_INTERPOLATION = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}


@dataclass(frozen=True)
class Geometry:
    """How the model input was cut from the original image.

    The original (``original_size``, width x height) was resized to ``resized_size``, then
    ``crop_box`` (left, top, right, bottom, in resized pixels) became the model input.
    Coordinates are continuous: pixel i spans [i, i + 1).
    """

    original_size: tuple[int, int]
    resized_size: tuple[int, int]
    crop_box: tuple[int, int, int, int]

    @property
    def input_size(self) -> tuple[int, int]:
        left, top, right, bottom = self.crop_box
        return right - left, bottom - top

    @property
    def crops(self) -> bool:
        """Whether the crop leaves part of the resized image out: part the model never sees."""
        left, top, right, bottom = self.crop_box
        width, height = self.resized_size
        return left > 0 or top > 0 or right < width or bottom < height

    @property
    def scale(self) -> tuple[float, float]:
        return (self.resized_size[0] / self.original_size[0], self.resized_size[1] / self.original_size[1])

    def model_to_original(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) x, y in model-input pixels -> the same points in original pixels."""
        points = np.asarray(points, dtype=np.float64)
        offset = np.array(self.crop_box[:2], dtype=np.float64)
        return (points + offset) / np.array(self.scale)

    def original_to_model(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        offset = np.array(self.crop_box[:2], dtype=np.float64)
        return points * np.array(self.scale) - offset

    def for_display(self, size: tuple[int, int]) -> "Geometry":
        """The same cut, relative to a resized copy of the original (e.g. a smaller display copy)."""
        return replace(self, original_size=tuple(size))

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Geometry":
        fields = json.loads(text)
        return cls(**{key: tuple(value) for key, value in fields.items()})


def resized_short_side(size: tuple[int, int], short: int) -> tuple[int, int]:
    """torchvision's Resize(int): the short side becomes ``short``, the long side is truncated."""
    width, height = size
    if width <= height:
        return short, int(short * height / width)
    return int(short * width / height), short


def aspect_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """About side x side pixels in the image's aspect (clamped to 1:4), each side a multiple of 32."""
    width, height = size
    aspect = min(max(width / height, 1 / MAX_ASPECT), MAX_ASPECT)
    def snap(value: float) -> int:
        return max(SIDE_MULTIPLE, int(round(value / SIDE_MULTIPLE)) * SIDE_MULTIPLE)
    return snap(side * aspect ** 0.5), snap(side / aspect ** 0.5)


def plan_geometry(size: tuple[int, int], input_size: int, crop_pct: float, mode: Mode) -> Geometry:
    if mode == "crop":
        resized = resized_short_side(size, int(input_size / crop_pct))
        left = int(round((resized[0] - input_size) / 2.0))
        top = int(round((resized[1] - input_size) / 2.0))
        return Geometry(size, resized, (left, top, left + input_size, top + input_size))
    if mode == "whole":
        resized = (input_size, input_size)
    elif mode == "aspect":
        resized = aspect_size(size, input_size)
    else:
        raise ValueError(f"unknown preprocessing mode {mode!r}; choose one of {', '.join(MODES)}")
    return Geometry(size, resized, (0, 0, *resized))


def preprocess(image: Image.Image, data_config: dict[str, Any], size: int | None = None,
               mode: Mode = "crop") -> tuple[torch.Tensor, Geometry]:
    """(1, 3, H, W) normalised input and its geometry.

    ``crop``: timm's evaluation transform (short side to size / crop_pct, centre crop);
    ``whole``: the whole image squeezed to size x size; ``aspect``: the whole image in its own
    aspect at about size x size pixels (Dual-ViT accepts any input of at least 32 pixels a side).
    """
    image = image.convert("RGB")
    input_size = size or data_config["input_size"][-1]
    geometry = plan_geometry(image.size, input_size, data_config.get("crop_pct", 1.0), mode)
    interpolation = PIL_INTERPOLATION[data_config.get("interpolation", "bicubic")]
    model_input = image.resize(geometry.resized_size, interpolation).crop(geometry.crop_box)
    pixels = torch.from_numpy(np.asarray(model_input, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(data_config["mean"]).view(3, 1, 1)
    std = torch.tensor(data_config["std"]).view(3, 1, 1)
    return ((pixels - mean) / std).unsqueeze(0), geometry


def data_config_for(network: torch.nn.Module) -> dict[str, Any]:
    return resolve_data_config(model=network)
