"""The trace of one forward pass: every captured attention map plus what is needed to draw it.

A trace is self-sufficient: the views draw any map from it without the model. Saved as
``.safetensors`` (the tensors) with JSON metadata (grids, class names, geometry).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import safetensors.torch
import torch

from model.dualvit import Grid
from model.preprocess import Geometry

MAP_PREFIX = "attn."
STAGES = (1, 2, 3, 4)
DUAL_PARTS = ("semantic_self", "semantic_to_pixel", "pixel_to_semantic")
MERGE_PART = "merged"
WHOLE_NETWORK_MAPS = ("semantic_init", "head.class_attention")
_MAP_NAME = re.compile(rf"^stage(?P<stage>[1-4])\.block(?P<block>\d+)\.(?P<part>{'|'.join(DUAL_PARTS + (MERGE_PART,))})$")


@dataclass(frozen=True)
class MapName:
    """A canonical attention-map name, parsed (the names: ``tests/data/README.md``).

    ``stage2.block3.semantic_to_pixel`` is stage 2 (1-based, as the official module names), block 3
    (0-based within its stage), part ``semantic_to_pixel``; ``semantic_init`` and
    ``head.class_attention`` belong to no block.
    """

    part: str
    stage: int | None = None
    block: int | None = None

    @classmethod
    def parse(cls, name: str) -> "MapName":
        if name in WHOLE_NETWORK_MAPS:
            return cls(name)
        match = _MAP_NAME.match(name)
        if match is None:
            raise ValueError(f"{name!r} is not an attention map name; names look like "
                             f"stage2.block0.semantic_to_pixel, stage3.block1.merged or {WHOLE_NETWORK_MAPS[0]}")
        return cls(match["part"], int(match["stage"]), int(match["block"]))

    @property
    def is_merge(self) -> bool:
        return self.part == MERGE_PART

    def __str__(self) -> str:
        return self.part if self.stage is None else f"stage{self.stage}.block{self.block}.{self.part}"


@dataclass(frozen=True)
class Trace:
    """Attention of every captured block for a batch of images.

    ``maps``: canonical name -> (B, heads, queries, keys), e.g. ``stage1.block0.semantic_to_pixel``
    (names in ``tests/data/README.md``). ``stage_grids[s - 1]``: the pixel grid of stage s.
    ``semantic_grid``: the pooled stage-1 grid; token j's home is its cell j (row-major).
    """

    maps: dict[str, torch.Tensor]
    stage_grids: tuple[Grid, ...]
    semantic_grid: Grid
    logits: torch.Tensor
    probabilities: torch.Tensor
    class_names: tuple[str, ...]
    multi_label: bool = False
    geometries: tuple[Geometry, ...] = field(default=())

    @property
    def batch_size(self) -> int:
        return self.logits.shape[0]

    @property
    def num_semantic(self) -> int:
        return self.semantic_grid.size

    def grid(self, stage: int) -> Grid:
        return self.stage_grids[stage - 1]

    def item(self, index: int) -> "Trace":
        """The trace of image ``index`` alone (batch of one)."""
        keep = slice(index, index + 1)
        return replace(
            self,
            maps={name: value[keep] for name, value in self.maps.items()},
            logits=self.logits[keep],
            probabilities=self.probabilities[keep],
            geometries=self.geometries[keep],
        )

    def top_classes(self, k: int = 5, index: int = 0) -> list[tuple[str, float]]:
        values, indices = self.probabilities[index].float().topk(min(k, self.probabilities.shape[1]))
        return [(self.class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())]

    def nbytes(self) -> int:
        return sum(value.numel() * value.element_size() for value in self.maps.values())

    def save(self, path: str | Path) -> None:
        tensors = {MAP_PREFIX + name: value.contiguous() for name, value in self.maps.items()}
        tensors["logits"] = self.logits.contiguous()
        tensors["probabilities"] = self.probabilities.contiguous()
        metadata = {
            "stage_grids": json.dumps([list(grid) for grid in self.stage_grids]),
            "semantic_grid": json.dumps(list(self.semantic_grid)),
            "class_names": json.dumps(list(self.class_names)),
            "multi_label": json.dumps(self.multi_label),
            "geometries": json.dumps([geometry.to_json() for geometry in self.geometries]),
        }
        safetensors.torch.save_file(tensors, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> "Trace":
        with safetensors.safe_open(str(path), framework="pt") as stored:
            metadata = stored.metadata()
            tensors = {key: stored.get_tensor(key) for key in stored.keys()}
        return cls(
            maps={key[len(MAP_PREFIX):]: value for key, value in tensors.items() if key.startswith(MAP_PREFIX)},
            stage_grids=tuple(Grid(*grid) for grid in json.loads(metadata["stage_grids"])),
            semantic_grid=Grid(*json.loads(metadata["semantic_grid"])),
            logits=tensors["logits"],
            probabilities=tensors["probabilities"],
            class_names=tuple(json.loads(metadata["class_names"])),
            multi_label=json.loads(metadata["multi_label"]),
            geometries=tuple(Geometry.from_json(text) for text in json.loads(metadata["geometries"])),
        )
