"""The canonical names of Dual-ViT's attention maps (the list: ``tests/data/README.md``).

The architecture names its probes with them and the trace keys its maps by them, so they live apart
from both.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

STAGES = (1, 2, 3, 4)
DUAL_PARTS = ("semantic_self", "semantic_to_pixel", "pixel_to_semantic")
MERGE_PART = "merged"
SEMANTIC_INIT = "semantic_init"
CLASS_ATTENTION = "head.class_attention"
WHOLE_NETWORK_MAPS = (SEMANTIC_INIT, CLASS_ATTENTION)
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
