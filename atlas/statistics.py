"""The atlas's bookkeeping: what every token of every Dual and Merge block does over a dataset, kept as running
sums and running top-k lists, so that memory stays the same however many images pass.

A batch's captures become a :class:`Tally` (:func:`tally_batch`); tallies add up (:meth:`Tally.merge`) in any
process, on one machine or through Ray, and the sum is the atlas. Everything is a token's head-mean map over the
pixels of its stage (:func:`analysis.trace_maths.token_maps`):

- its mass near home: the share of its pixel mass inside its home cell (the pooled stage-1 window it was
  initialised from; cells weighted by how much of them the window covers), and the mass-weighted mean distance of
  its pixels from that cell's centre, in home cells;
- its spread: the share of the image holding half of its mass;
- its dataset examples: the images where the most of its mass falls in one square crop a quarter of the image a
  side (the crop's share of its mass is the score), with the crop's box and the map;
- the classes it serves: on scenes, the share of its mass on objects of each class (over the images holding one)
  and on any object; with classes known, its mean map per class on the home grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch.nn import functional

from analysis import trace_maths
from analysis.trace_maths import BlockRef
from model.trace import Trace

TOP_K = 8
CROP_SHARE = 0.25  # a crop's side, as a share of the image's side


@dataclass(frozen=True)
class BlockLayout:
    """Where each token's home lies on one block's grid, and the crops' size there."""

    ref: BlockRef
    grid: tuple[int, int]
    home: torch.Tensor  # (M, cells) float32: how much of each cell the token's home cell covers
    home_area: np.ndarray  # (M,) the home cell's share of the image
    distance: torch.Tensor  # (M, cells) from the home cell's centre to each cell's centre, in home cells
    crop: int  # a crop's side, in cells
    pool: torch.Tensor  # (cells, S) each cell's share in each home-grid cell, to pool a map onto the home grid


def overlap(starts: np.ndarray, ends: np.ndarray, low: float, high: float) -> np.ndarray:
    """How much of each interval [start, end) lies within [low, high), as a share of the interval."""
    return np.clip(np.minimum(ends, high) - np.maximum(starts, low), 0, None) / (ends - starts)


def layouts(trace: Trace) -> list[BlockLayout]:
    """Every block with token maps, laid out for the trace's input size and grids."""
    # Lengths in stage-1 cells: a home cell is POOL_SIZE of them a side (the remainder of the grid dropped).
    stage1 = trace.grid(1)
    height, width = stage1.height, stage1.width
    semantic = trace.semantic_grid
    home_height = home_width = float(trace_maths.POOL_SIZE)
    tokens = np.arange(trace.num_semantic)
    rows, columns = np.divmod(tokens, semantic.width)
    top, left = rows * home_height, columns * home_width
    found = []
    for ref in trace_maths.blocks(trace):
        if not trace_maths.has_token_maps(trace, ref):
            continue
        grid = trace.grid(ref.stage)
        cell_height, cell_width = height / grid.height, width / grid.width
        y0 = np.arange(grid.height) * cell_height
        x0 = np.arange(grid.width) * cell_width
        vertical = np.stack([overlap(y0, y0 + cell_height, t, t + home_height) for t in top])  # (M, h)
        horizontal = np.stack([overlap(x0, x0 + cell_width, s, s + home_width) for s in left])  # (M, w)
        home = (vertical[:, :, None] * horizontal[:, None, :]).reshape(len(tokens), -1)
        centre_y = (top + home_height / 2)[:, None, None]
        centre_x = (left + home_width / 2)[:, None, None]
        distance = np.hypot((y0[None, :, None] + cell_height / 2 - centre_y) / home_height,
                            (x0[None, None, :] + cell_width / 2 - centre_x) / home_width).reshape(len(tokens), -1)
        # A cell's share in each home-grid cell: the same overlaps, home cells as the windows.
        pool = home.T / np.maximum(home.T.sum(axis=1, keepdims=True), 1e-12) * (home.T.sum(axis=1, keepdims=True) > 0)
        as_tensor = lambda array: torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))  # noqa: E731
        found.append(BlockLayout(ref, (grid.height, grid.width), as_tensor(home),
                                 np.full(len(tokens), home_height * home_width / (height * width)), as_tensor(distance),
                                 max(1, round(grid.height * CROP_SHARE)), as_tensor(pool)))
    return found


def coverage(masks: list[np.ndarray], mask_classes: list[tuple[int, ...]], classes: int,
             grids: list[tuple[int, int]]) -> list[torch.Tensor]:
    """For a batch of scenes, each block grid's (B, classes, cells): the share of each cell covered by objects of
    each class (each image's object masks (K, H, W) on the model input, their classes in ``mask_classes``).

    Objects do not overlap (a mask holds an object's visible pixels), so a class covers the sum of its objects'
    shares. Each object is pooled to the finest grid from its pixels, a coarser grid from a finer one it divides
    (the same means, fewer sums)."""
    height, width = masks[0].shape[1:]
    objects = [(item, cls) for item, owners in enumerate(mask_classes) for cls in owners]
    pixels = torch.from_numpy(np.concatenate(masks)).float()[:, None] if objects else torch.zeros(0, 1, height, width)
    pooled: dict[tuple[int, int], torch.Tensor] = {}
    for grid in sorted(set(grids), key=lambda shape: -shape[0] * shape[1]):
        finer = next((done for shape, done in pooled.items() if shape[0] % grid[0] == 0 and shape[1] % grid[1] == 0
                      and height % shape[0] == 0 and width % shape[1] == 0), pixels)
        pooled[grid] = functional.adaptive_avg_pool2d(finer, grid)
    found = []
    for grid in grids:
        covered = torch.zeros(len(masks), classes, grid[0] * grid[1])
        for (item, cls), share in zip(objects, pooled[grid].flatten(1)):
            covered[item, cls] += share
        found.append(covered.clamp_(max=1.0))
    return found


def best_crops(maps: torch.Tensor, grid: tuple[int, int], side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores (..., M), boxes (..., M, 4) in cells: top, left, bottom, right): each map's side x side crop holding
    the largest share of its mass (the first such crop, row by row, on a tie)."""
    square = maps.reshape(-1, *grid)
    summed = functional.pad(square.cumsum(1).cumsum(2), (1, 0, 1, 0))  # each crop's mass from four corner sums
    windows = summed[:, side:, side:] - summed[:, :-side, side:] - summed[:, side:, :-side] + summed[:, :-side, :-side]
    flat = windows.flatten(1)
    best, where = flat.max(1)
    total = maps.reshape(-1, grid[0] * grid[1]).sum(1)
    scores = torch.where(total > 0, best / total.clamp(min=1e-30), torch.zeros_like(total)).double()
    top, left = where // windows.shape[2], where % windows.shape[2]
    boxes = torch.stack([top, left, top + side, left + side], 1)
    return scores.reshape(maps.shape[:-1]), boxes.reshape(*maps.shape[:-1], 4)


def areas_holding_half(maps: torch.Tensor) -> torch.Tensor:
    """(...) the smallest share of cells (largest first) holding half of each map's mass (as
    :func:`analysis.trace_maths.areas_holding`; 0 for a map without mass). Most maps of a trained model hold half
    of their mass in a few cells: their largest eighth is sorted first, and only the maps it does not settle are
    sorted whole (a map whose peak times an eighth of its cells is under half its mass, at once)."""
    flat = maps.reshape(-1, maps.shape[-1])
    total = flat.sum(1, keepdim=True)
    half = 0.5 - 1e-6
    first = max(1, flat.shape[1] // 8)

    def cells_to_half(ordered: torch.Tensor, totals: torch.Tensor) -> torch.Tensor:
        return (ordered.cumsum(1) / totals.clamp(min=1e-30) < half).sum(1) + 1

    cells = torch.full((len(flat),), flat.shape[1] + 1, dtype=torch.long)
    hopeful = flat.amax(1) * first >= half * total[:, 0]
    if hopeful.any():
        cells[hopeful] = cells_to_half(flat[hopeful].topk(first, dim=1).values, total[hopeful])
    unsettled = cells > first
    if unsettled.any():
        cells[unsettled] = cells_to_half(flat[unsettled].sort(dim=1, descending=True).values, total[unsettled])
    areas = torch.where(total[:, 0] > 0, cells / flat.shape[1], torch.zeros(len(flat), dtype=torch.float64))
    return areas.double().reshape(maps.shape[:-1])


@dataclass
class BlockTally:
    """One block's running sums and top-k examples over the images seen."""

    mass: np.ndarray  # (M,) pixel mass summed over images
    home_mass: np.ndarray  # (M,)
    distance_mass: np.ndarray  # (M,)
    spread: np.ndarray  # (M,) the share holding half the mass, summed over images
    object_mass: np.ndarray  # (M,) mass on any object (scenes)
    class_mass: np.ndarray  # (M, C) mass on objects of class c, over the images holding one
    class_total: np.ndarray  # (M, C) pixel mass over the images holding class c
    class_maps: np.ndarray  # (M, C, S) maps pooled onto the home grid, summed over the images of class c
    scores: np.ndarray  # (M, K) the best crops' shares of mass, highest first; -1 for none yet
    numbers: np.ndarray  # (M, K) their images; -1 for none
    boxes: np.ndarray  # (M, K, 4) their crops, in cells (top, left, bottom, right)
    cells: np.ndarray  # (M, K, cells) uint8 their maps over their peaks
    peaks: np.ndarray  # (M, K)

    def merge(self, other: "BlockTally") -> None:
        for name in ("mass", "home_mass", "distance_mass", "spread", "object_mass", "class_mass", "class_total",
                     "class_maps"):
            getattr(self, name).__iadd__(getattr(other, name))
        scores = np.concatenate([self.scores, other.scores], axis=1)
        numbers = np.concatenate([self.numbers, other.numbers], axis=1)
        # Highest score first; on a tie the lower image number, so any order of merging keeps the same examples.
        order = np.lexsort((np.where(numbers < 0, np.iinfo(np.int64).max, numbers), -scores), axis=1)[:, :TOP_K]
        taken = np.take_along_axis
        self.scores, self.numbers = taken(scores, order, 1), taken(numbers, order, 1)
        self.boxes = taken(np.concatenate([self.boxes, other.boxes], axis=1), order[..., None], 1)
        self.cells = taken(np.concatenate([self.cells, other.cells], axis=1), order[..., None], 1)
        self.peaks = taken(np.concatenate([self.peaks, other.peaks], axis=1), order, 1)


@dataclass
class Tally:
    """Every block's tally, the number of images seen, the object area summed (scenes) and the images holding each
    class."""

    blocks: list[BlockTally]
    images: int = 0
    object_area: float = 0.0
    class_images: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def merge(self, other: "Tally") -> None:
        for mine, theirs in zip(self.blocks, other.blocks):
            mine.merge(theirs)
        self.images += other.images
        self.object_area += other.object_area
        self.class_images = self.class_images + other.class_images

    def arrays(self) -> dict[str, np.ndarray]:
        """Every number of the tally as named arrays (to checkpoint a build, or to send one through Ray)."""
        named = {"images": np.array(self.images), "object_area": np.array(self.object_area),
                 "class_images": self.class_images}
        for index, block in enumerate(self.blocks):
            named |= {f"block{index}.{part.name}": getattr(block, part.name) for part in fields(BlockTally)}
        return named

    @classmethod
    def from_arrays(cls, named: dict[str, np.ndarray]) -> "Tally":
        count = len({name.split(".")[0] for name in named if name.startswith("block")})
        blocks = [BlockTally(**{part.name: np.array(named[f"block{index}.{part.name}"]) for part in fields(BlockTally)})
                  for index in range(count)]
        return cls(blocks, int(named["images"]), float(named["object_area"]), np.array(named["class_images"]))


def empty_block(layout: BlockLayout, classes: int) -> BlockTally:
    tokens, cells = layout.home.shape
    semantic = layout.pool.shape[1]
    return BlockTally(np.zeros(tokens), np.zeros(tokens), np.zeros(tokens), np.zeros(tokens), np.zeros(tokens),
                      np.zeros((tokens, classes)), np.zeros((tokens, classes)), np.zeros((tokens, classes, semantic)),
                      np.full((tokens, 0), -1.0), np.full((tokens, 0), -1, np.int64), np.zeros((tokens, 0, 4), np.int64),
                      np.zeros((tokens, 0, cells), np.uint8), np.zeros((tokens, 0), np.float32))


def empty_tally(layouts_: list[BlockLayout], classes: int) -> Tally:
    return Tally([empty_block(layout, classes) for layout in layouts_], class_images=np.zeros(classes))


def tally_batch(trace: Trace, layouts_: list[BlockLayout], numbers: list[int], classes: list[tuple[int, ...]],
                coverages: list[torch.Tensor] | None, object_areas: list[float], class_count: int) -> Tally:
    """The tally of one batch's captures: image ``numbers[i]`` is the trace's item i, with its ``classes``; for
    scenes, each block's object coverage (:func:`coverage`) and each image's share of pixels on objects."""
    count = len(numbers)
    tally = empty_tally(layouts_, class_count)
    tally.images = count
    tally.object_area = float(sum(object_areas))
    present = torch.zeros(count, class_count, dtype=torch.float64)
    for item, shown in enumerate(classes):
        present[item, list(shown)] = 1.0
    tally.class_images = present.sum(0).numpy()
    image_numbers = np.asarray(numbers, dtype=np.int64)
    for index, layout in enumerate(layouts_):
        # Each image's sums in float32 (as the maps are), added over images in float64.
        maps = trace_maths.batch_token_maps(trace, layout.ref)  # (B, M, cells)
        block = tally.blocks[index]
        mass = maps.sum(-1).double()  # (B, M)
        block.mass = mass.sum(0).numpy()
        block.home_mass = torch.einsum("bmn,mn->bm", maps, layout.home).double().sum(0).numpy()
        block.distance_mass = torch.einsum("bmn,mn->bm", maps, layout.distance).double().sum(0).numpy()
        block.spread = areas_holding_half(maps).sum(0).numpy()
        block.class_total = torch.einsum("bm,bc->mc", mass, present).numpy()
        if coverages is None:  # a labelled folder: each class's mean map (scenes say more: their objects' masks)
            pooled = (maps @ layout.pool).double()
            block.class_maps = torch.einsum("bms,bc->mcs", pooled, present).numpy()
        else:
            covered = coverages[index]  # (B, C, cells)
            on_classes = torch.einsum("bmn,bcn->bmc", maps, covered).double()
            block.class_mass = (on_classes * present[:, None, :]).sum(0).numpy()
            on_objects = torch.einsum("bmn,bn->bm", maps, covered.sum(1).clamp(max=1.0))
            block.object_mass = on_objects.double().sum(0).numpy()
        scores, boxes = best_crops(maps, layout.grid, layout.crop)  # (B, M), (B, M, 4)
        # The batch's best K for each token: highest score first, the lower image number on a tie.
        score_rows = scores.numpy().T  # (M, B)
        ranked = np.lexsort((np.broadcast_to(image_numbers, score_rows.shape), -score_rows), axis=1)[:, :TOP_K]
        tokens = np.arange(score_rows.shape[0])[:, None]
        block.scores = score_rows[tokens, ranked]
        block.numbers = image_numbers[ranked]
        block.boxes = boxes.numpy().transpose(1, 0, 2)[tokens, ranked]
        # Only the kept examples' maps are stored: each over its own peak, one byte a cell.
        kept = maps.transpose(0, 1)[torch.from_numpy(tokens), torch.from_numpy(ranked)]  # (M, K, cells)
        peaks = kept.amax(-1)
        block.cells = torch.round(kept / torch.where(peaks > 0, peaks, torch.ones_like(peaks))[..., None] * 255).to(
            torch.uint8).numpy()
        block.peaks = peaks.numpy()
    return tally
