"""The trace of one forward pass: every captured attention map plus what is needed to draw it.

A trace is self-sufficient: the views draw any map from it without the model. Saved as
``.safetensors`` (the tensors) with JSON metadata (grids, class names, geometry).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import safetensors.torch
import torch

from model.dualvit import Grid
from model.preprocess import Geometry

MAP_PREFIX = "attn."


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
