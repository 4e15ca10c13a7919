"""Pure functions that turn a :class:`~model.trace.Trace` into the arrays the explorer draws.

Every function takes the trace and returns float32 numpy arrays (or small records); nothing here
runs the model or draws. Attention tensors are (B, heads, queries, keys); a fusion reduces the
heads ("mean", "max", "min" or one head, "head k"), ``item`` picks the image of the batch.

Map names and shapes follow ``tests/data/README.md``: Dual blocks (stages 1-2) hold
``semantic_self`` (M, M), ``semantic_to_pixel`` (M, N) and ``pixel_to_semantic`` (N, M); Merge
blocks (stages 3-4) hold ``merged`` (N + M, N + M), pixels first, then the M semantic tokens.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from model.dualvit import POOL_SIZE, Grid
from model.map_names import CLASS_ATTENTION, MERGE_PART, SEMANTIC_INIT, STAGES, MapName
from model.trace import Trace

FUSIONS: tuple[str, ...] = ("mean", "max", "min")
HEAD_PREFIX = "head "
# The stem halves the input twice before stage 1 (stride 4): used only when a trace carries no
# geometry to say how large its model input was.
STEM_STRIDE = 4

BlockKind = Literal["dual", "merge"]


@dataclass(frozen=True)
class BlockRef:
    """One transformer block: Dual (stages 1-2) or Merge (stages 3-4)."""

    stage: int
    block: int
    kind: BlockKind

    @property
    def label(self) -> str:
        return f"stage {self.stage} · block {self.block}"

    def map_name(self, part: str) -> str:
        return str(MapName(part, self.stage, self.block))

    @property
    def token_map_name(self) -> str:
        """The map holding the tokens' attention over the pixels: semantic_to_pixel (Dual) or merged (Merge)."""
        return self.map_name("semantic_to_pixel" if self.kind == "dual" else MERGE_PART)


@dataclass(frozen=True)
class TokenStatistics:
    """How concentrated one token's map is; cells are (row, col) on the map's grid."""

    entropy: float
    normalised_entropy: float
    peak: float
    peak_cell: tuple[int, int]
    area_50: float
    mass: float
    home: tuple[int, int]


# ----------------------------------------------------------------------------- reading maps


def attention_of(trace: Trace, name: str, item: int = 0) -> torch.Tensor:
    """The map ``name`` of image ``item``: (heads, queries, keys), still a tensor (sliced before converting)."""
    if name not in trace.maps:
        captured = ", ".join(sorted(trace.maps)) or "nothing"
        raise KeyError(f"attention map {name!r} is not in this trace (captured: {captured})")
    tensor = trace.maps[name]
    if not 0 <= item < tensor.shape[0]:
        raise ValueError(f"item {item} is out of range: this trace holds {tensor.shape[0]} image(s)")
    return tensor[item]


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Any (possibly float16) tensor as a float32 numpy array."""
    return tensor.detach().to("cpu", torch.float32).numpy()


def fuse_heads(attention: np.ndarray | torch.Tensor, fusion: str) -> np.ndarray:
    """(heads, q, k) -> (q, k) float32: the mean, max or min over heads, or one head ("head 2")."""
    values = to_numpy(attention) if isinstance(attention, torch.Tensor) else np.asarray(attention, np.float32)
    if values.ndim != 3:
        raise ValueError(f"expected attention of shape (heads, queries, keys), got {values.shape}")
    if fusion == "mean":
        return values.mean(axis=0)
    if fusion == "max":
        return values.max(axis=0)
    if fusion == "min":
        return values.min(axis=0)
    return values[head_index(fusion, values.shape[0])]


def head_index(fusion: str, num_heads: int) -> int:
    """The head named by a fusion such as "head 3", checked against the number of heads."""
    if not isinstance(fusion, str) or not fusion.startswith(HEAD_PREFIX) or not fusion[len(HEAD_PREFIX):].strip().isdigit():
        raise ValueError(f"unknown fusion {fusion!r}: choose one of {', '.join(FUSIONS)} or 'head <k>'")
    index = int(fusion[len(HEAD_PREFIX):])
    if index >= num_heads:
        raise ValueError(f"fusion {fusion!r} asks for a head this map lacks: it has {num_heads} head(s)")
    return index


def fused(trace: Trace, name: str, fusion: str, item: int,
          rows: slice = slice(None), columns: slice = slice(None)) -> np.ndarray:
    """A block of map ``name`` with its heads fused: (rows, columns) float32."""
    return fuse_heads(attention_of(trace, name, item)[:, rows, columns], fusion)


# ----------------------------------------------------------------------------- blocks


def blocks(trace: Trace) -> list[BlockRef]:
    """Every block with at least one map in the trace, in network order."""
    found: dict[tuple[int, int], BlockKind] = {}
    for name in trace.maps:
        parsed = MapName.parse(name)
        if parsed.stage is not None:
            found[(parsed.stage, parsed.block)] = "merge" if parsed.is_merge else "dual"
    return [BlockRef(stage, block, kind) for (stage, block), kind in sorted(found.items())]


def block_ref(trace: Trace, stage: int, block: int) -> BlockRef:
    """The block (stage, block) of the trace, or a KeyError naming the blocks it does hold."""
    for ref in blocks(trace):
        if (ref.stage, ref.block) == (stage, block):
            return ref
    present = ", ".join(ref.label for ref in blocks(trace)) or "none"
    raise KeyError(f"stage {stage} · block {block} has no map in this trace (blocks present: {present})")


def has_token_maps(trace: Trace, ref: BlockRef) -> bool:
    return ref.token_map_name in trace.maps


def fusion_in(trace: Trace, ref: BlockRef, fusion: str) -> str:
    """``fusion`` where block ``ref`` has that head, else "mean".

    Views that span blocks (filmstrip, stage overview) cross stages with different numbers of
    heads, so "head 3" cannot mean the same thing everywhere.
    """
    if not isinstance(fusion, str) or not fusion.startswith(HEAD_PREFIX):
        return fusion  # a bad value is refused where it is used, with its message
    num_heads = trace.maps[ref.token_map_name].shape[1]
    return fusion if head_index(fusion, 10 ** 6) < num_heads else "mean"


def fusion_choices(trace: Trace, stage: int) -> list[str]:
    """"mean", "max", "min", then "head 0" ... "head h-1" for the heads of ``stage``'s maps."""
    names = [name for name in trace.maps if name.startswith(f"stage{stage}.")]
    if not names and stage == STAGES[-1] and CLASS_ATTENTION in trace.maps:
        names = [CLASS_ATTENTION]  # the class block has the last stage's width and heads
    if not names:
        raise KeyError(f"this trace holds no map of stage {stage}")
    num_heads = trace.maps[names[0]].shape[1]
    return [*FUSIONS, *(f"{HEAD_PREFIX}{head}" for head in range(num_heads))]


# ----------------------------------------------------------------------------- semantic tokens


def token_maps(trace: Trace, stage: int, block: int, fusion: str = "mean", item: int = 0) -> np.ndarray:
    """(M, H, W): how much each semantic token (query) attends to each pixel of the stage.

    Dual blocks: ``semantic_to_pixel``, rows sum to one. Merge blocks: the token rows of
    ``merged`` restricted to the pixel columns, deliberately not renormalised: the mass missing
    from a row is what that token spent on other tokens.
    """
    ref = block_ref(trace, stage, block)
    grid = trace.grid(stage)
    if ref.kind == "dual":
        values = fused(trace, ref.map_name("semantic_to_pixel"), fusion, item)
    else:
        values = fused(trace, ref.map_name(MERGE_PART), fusion, item,
                       rows=slice(grid.size, None), columns=slice(None, grid.size))
    return values.reshape(values.shape[0], grid.height, grid.width)


def batch_token_maps(trace: Trace, ref: BlockRef) -> torch.Tensor:
    """(B, M, pixels) float32: every image's :func:`token_maps` of block ``ref``, heads averaged, at once."""
    grid = trace.grid(ref.stage)
    if ref.kind == "dual":
        values = trace.maps[ref.map_name("semantic_to_pixel")]
    else:
        values = trace.maps[ref.map_name(MERGE_PART)][:, :, grid.size:, :grid.size]
    return values.float().mean(dim=1)


def uniform_weight(trace: Trace, ref: BlockRef) -> float:
    """The weight each key gets from uniform attention in block ``ref``'s token maps: 1/N over the stage's N
    pixels (Dual), 1/(N + M) over pixels and tokens together (Merge, whose token maps keep only the pixels)."""
    pixels = trace.grid(ref.stage).size
    return 1.0 / (pixels + (trace.num_semantic if ref.kind == "merge" else 0))


def reads_uniform_weight(trace: Trace, ref: BlockRef) -> float:
    """The weight uniform attention gives each token a pixel reads in block ``ref``: 1/M over the tokens (Dual),
    1/(M + N) over the tokens and the stage's pixels together (Merge)."""
    pixels = trace.grid(ref.stage).size
    return 1.0 / (trace.num_semantic + (pixels if ref.kind == "merge" else 0))


def class_uniform_weight(trace: Trace) -> float:
    """The weight uniform attention gives each key of the class token: itself, the stage-4 pixels, the tokens."""
    return 1.0 / (1 + trace.grid(STAGES[-1]).size + trace.num_semantic)


def check_token(trace: Trace, token: int) -> None:
    if not 0 <= token < trace.num_semantic:
        raise ValueError(f"token {token} is out of range: this trace has {trace.num_semantic} semantic tokens")


def home_cell(trace: Trace, token: int) -> tuple[int, int]:
    """(row, col) of the pooled stage-1 cell that token ``token`` was initialised from."""
    check_token(trace, token)
    row, col = divmod(token, trace.semantic_grid.width)
    return row, col


def token_statistics(trace: Trace, token_map: np.ndarray, token: int) -> TokenStatistics:
    """Concentration of one (H, W) token map; entropy is over the map normalised to sum to one."""
    values = np.asarray(token_map, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"expected one (H, W) token map, got shape {values.shape}")
    stats = map_statistics(values[None])
    return TokenStatistics(
        entropy=float(stats["entropy"][0]),
        normalised_entropy=float(stats["normalised_entropy"][0]),
        peak=float(stats["peak"][0]),
        peak_cell=(int(stats["peak_row"][0]), int(stats["peak_column"][0])),
        area_50=float(stats["area_50"][0]),
        mass=float(stats["mass"][0]),
        home=home_cell(trace, token),
    )


def map_statistics(maps: np.ndarray) -> dict[str, np.ndarray]:
    """For each of ``maps`` (K, H, W): its entropy, normalised entropy, peak, peak cell (row, column), the
    share of its cells holding half its mass and its mass, as :func:`token_statistics` reports them."""
    values = np.asarray(maps, dtype=np.float64)
    flat = values.reshape(len(values), -1)
    peaks = flat.argmax(axis=1)
    entropy = map_entropies(flat)
    max_entropy = math.log(flat.shape[1])
    return {"entropy": entropy, "normalised_entropy": entropy / max_entropy if max_entropy > 0 else np.zeros(len(flat)),
            "peak": flat.max(axis=1), "peak_row": peaks // values.shape[2], "peak_column": peaks % values.shape[2],
            "area_50": areas_holding(np.asarray(maps).reshape(len(values), -1), 0.5), "mass": flat.sum(axis=1)}


def map_entropies(flat: np.ndarray) -> np.ndarray:
    """(K,) the entropy in nats of each row of ``flat`` (K, cells) taken as a distribution; NaN without mass."""
    mass = flat.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = flat / mass
        terms = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(mass[:, 0] > 0, np.maximum(0.0, -terms.sum(axis=1)), np.nan)


MASS_SHARES: tuple[float, ...] = (0.5, 0.8, 0.95)


def mass_ranks(values: np.ndarray) -> np.ndarray:
    """Per cell (same shape): the share of the map's mass held by this cell and every larger one.

    A cell belongs to the smallest region holding ``share`` of the mass exactly when its rank is
    below ``share`` (see :func:`mass_region`); the largest cell's rank is its own share. Ties are
    broken by position, so the regions nest and have the sizes :func:`area_holding` reports.
    """
    values = np.asarray(values)
    return stacked_mass_ranks(values.reshape(1, -1))[0].reshape(values.shape)


def stacked_mass_ranks(flat: np.ndarray) -> np.ndarray:
    """:func:`mass_ranks` of each row of ``flat`` (K, cells), in one pass."""
    # Only positive values carry mass (attention has no other; a signed attribution keeps its positive part).
    # The order is found in the values' own precision (float32 maps sort faster, and widening keeps their order
    # and ties); the sums are made in float64.
    kept = np.clip(np.nan_to_num(np.asarray(flat), nan=0.0), 0.0, None)
    order = descending_order(kept)
    values = kept.astype(np.float64)
    mass = values.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        cumulative = np.cumsum(np.take_along_axis(values, order, axis=1), axis=1) / mass
    # Cell k of the order is inside the share-s region when the mass before it is below s.
    before = np.concatenate([np.zeros((len(values), 1)), cumulative[:, :-1]], axis=1)
    ranks = np.empty_like(before)
    np.put_along_axis(ranks, order, before, axis=1)
    ranks[~(mass[:, 0] > 0)] = np.inf
    return ranks


def descending_order(flat: np.ndarray) -> np.ndarray:
    """Per row of ``flat`` (K, cells, no NaN), its cells from the largest value to the smallest, ties in
    order of position: ``np.argsort(-flat, axis=1, kind="stable")``."""
    if flat.dtype == np.float32 and not (flat < 0).any():
        # Non-negative float32 values order as their bits do, so one uint64 per cell (the bits, flipped to
        # descend, above the position) sorts into the stable order with numpy's vectorised sort: a third of
        # the time of a stable argsort (a dualvit_s payload sorts 35 stacks of maps and 16 of pixel reads).
        bits = (flat + np.float32(0.0)).view(np.uint32).astype(np.uint64)  # + 0 makes -0.0 a 0.0
        keys = ((np.uint64(0xFFFFFFFF) - bits) << np.uint64(32)) | np.arange(flat.shape[1], dtype=np.uint64)
        return (np.sort(keys, axis=1) & np.uint64(0xFFFFFFFF)).astype(np.intp)
    return np.argsort(-flat, axis=1, kind="stable")


def mass_region(values: np.ndarray, share: float) -> np.ndarray:
    """(same shape) bool: the fewest cells (largest first) that hold ``share`` of the map's mass."""
    # The tolerance keeps a uniform map's half at exactly half of its cells, despite rounding.
    return mass_ranks(values) < share - 1e-6


def mass_levels(values: np.ndarray, shares: Sequence[float] = MASS_SHARES) -> np.ndarray:
    """(same shape) int: for each cell, how many of the nested regions holding ``shares`` of the mass
    (ascending) it lies in; 0 outside the largest. A cell of the 50% region is in all three of
    (0.5, 0.8, 0.95), so it scores 3."""
    return stacked_mass_levels(np.asarray(values)[None], shares)[0]


def stacked_mass_levels(maps: np.ndarray, shares: Sequence[float] = MASS_SHARES) -> np.ndarray:
    """:func:`mass_levels` of each map of ``maps`` (K, ...), in one pass."""
    maps = np.asarray(maps)
    ranks = stacked_mass_ranks(maps.reshape(len(maps), -1)).reshape(maps.shape)
    return sum((ranks < share - 1e-6).astype(np.int64) for share in shares)


def area_holding(values: np.ndarray, share: float) -> float:
    """Smallest share of cells (largest first) whose values add up to ``share`` of the total."""
    return float(areas_holding(np.asarray(values).reshape(1, -1), share)[0])


def areas_holding(flat: np.ndarray, share: float) -> np.ndarray:
    """(K,) :func:`area_holding` of each row of ``flat`` (K, cells); NaN for a row without mass."""
    flat = np.asarray(flat)
    mass = flat.sum(axis=1, keepdims=True, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # sorted in the values' own precision, summed in float64
        cumulative = np.cumsum(-np.sort(-flat, axis=1), axis=1, dtype=np.float64) / mass
    # The tolerance keeps a uniform map at exactly 0.5, despite rounding in the cumulative sum.
    cells = (cumulative < share - 1e-6).sum(axis=1) + 1
    return np.where(mass[:, 0] > 0, np.minimum(cells, flat.shape[1]) / flat.shape[1], np.nan)


# Below this median half-mass area (share of the stage grid) a block's token maps read as dots.
DOT_AREA = 0.01
# A map stands out from uniform attention when its peak is at least this many times the uniform weight
# (a randomly initialised dualvit_s peaks near 1.04 times; the shipped model's Dual blocks near 15 to 45).
STANDS_OUT = 4.0


def stands_out(trace: Trace, ref: BlockRef, item: int = 0) -> bool:
    """Whether block ``ref``'s token maps stand out from uniform attention: their median peak is at least
    ``STANDS_OUT`` times the uniform weight."""
    maps = token_maps(trace, ref.stage, ref.block, "mean", item)
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    return bool(np.median(peaks) >= STANDS_OUT * uniform_weight(trace, ref))


def default_block(trace: Trace, item: int = 0) -> BlockRef:
    """The block to open on: the last Dual block whose token maps show regions rather than dots (they stand
    out from uniform attention, and a median area holding half a token's mass of at least ``DOT_AREA`` of
    the stage grid); when every Dual block shows dots, the block whose maps spread widest among those that
    stand out, Merge blocks included, earliest on a tie; when none stands out (untrained weights), the last
    Dual block.

    A Dual block's ``semantic_to_pixel`` is the tokens' own reading of the pixels, the paper's
    picture of what a semantic token looks at, and the last one shows the tokens after every round
    of reading, just before they merge with the pixels. Peaked maps read as a few dots on a photo,
    so dots send the page on to the block where the tokens spread most.
    """
    candidates = [ref for ref in blocks(trace) if has_token_maps(trace, ref)]
    if not candidates:
        raise KeyError("this trace holds no semantic_to_pixel or merged map to show")

    def spread(ref: BlockRef) -> float:
        maps = token_maps(trace, ref.stage, ref.block, "mean", item)
        return float(np.nanmedian([area_holding(token_map, 0.5) for token_map in maps]))

    standing = [ref for ref in candidates if stands_out(trace, ref, item)]
    spreads = {ref: spread(ref) for ref in standing}
    regions = [ref for ref in standing if ref.kind == "dual" and spreads[ref] >= DOT_AREA]
    if regions:
        return regions[-1]
    if standing:
        return max(standing, key=lambda ref: (spreads[ref], -candidates.index(ref)))
    return ([ref for ref in candidates if ref.kind == "dual"] or candidates)[-1]


def on_stage1(trace: Trace, values: np.ndarray) -> np.ndarray:
    """(Hs, Ws) values on the semantic (home) grid -> (H1, W1) on the stage-1 grid.

    Each home cell covers exactly POOL_SIZE x POOL_SIZE stage-1 cells (floor pooling): cells past
    the last whole window hold 0, as no home cell covers them.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.shape != tuple(trace.semantic_grid):
        raise ValueError(f"expected a map on the {tuple(trace.semantic_grid)} home grid, got {values.shape}")
    grid = trace.grid(1)
    covered = np.kron(values, np.ones((POOL_SIZE, POOL_SIZE), np.float32))
    result = np.zeros((grid.height, grid.width), np.float32)
    result[:covered.shape[0], :covered.shape[1]] = covered
    return result


def semantic_init_row(trace: Trace, token: int, item: int = 0) -> np.ndarray:
    """(Hs, Ws): how the learned query of token ``token`` spreads over the pooled home cells."""
    check_token(trace, token)
    row = fused(trace, SEMANTIC_INIT, "mean", item, rows=slice(token, token + 1))[0]
    return row.reshape(trace.semantic_grid.height, trace.semantic_grid.width)


def semantic_self_row(trace: Trace, ref: BlockRef, token: int, item: int = 0) -> np.ndarray:
    """(Hs, Ws): what token ``token`` reads from each token in block ``ref``, laid out on the home grid."""
    check_token(trace, token)
    row = semantic_self_matrix(trace, ref.stage, ref.block, "mean", item)[token]
    return row.reshape(trace.semantic_grid.height, trace.semantic_grid.width)


def lead_token(trace: Trace, ref: BlockRef, item: int = 0) -> int:
    """The token to follow: the one whose map in block ``ref`` lies most where the class token looks.

    The overlap is the sum over the cells of ``ref``'s grid of the token's map (head mean) times the
    class token's attention to the stage-4 pixel covering that cell; lowest index on a tie. The class
    token's attention is the network's last look before the classifier, so this mostly lands the tour on an
    object where the image has one. Measured on the shipped weights over the 155 of the first 200
    held-out scenes that hold objects, the token chosen so puts 0.80 of its stage-2 mass on the objects
    (over half in 88% of the scenes); the token owning the most pixels, followed before, put 0.21 there.
    """
    maps = token_maps(trace, ref.stage, ref.block, "mean", item)
    looks = class_attention_map(trace, "mean", item)
    height, width = maps.shape[1:]
    rows = np.arange(height) * looks.shape[0] // height
    columns = np.arange(width) * looks.shape[1] // width
    overlap = (maps.astype(np.float64) * looks[np.ix_(rows, columns)]).sum(axis=(1, 2))
    return int(np.argmax(overlap))


def token_filmstrip(trace: Trace, token: int, fusion: str = "mean", item: int = 0) -> list[tuple[BlockRef, np.ndarray]]:
    """Token ``token``'s (H_s, W_s) map in every captured block, in network order."""
    check_token(trace, token)
    strip = [(ref, token_maps(trace, ref.stage, ref.block, fusion_in(trace, ref, fusion), item)[token])
             for ref in blocks(trace) if has_token_maps(trace, ref)]
    if not strip:
        raise KeyError("this trace holds no semantic_to_pixel or merged map to follow a token through")
    return strip


def stage_overview(trace: Trace, token: int | None, fusion: str = "mean",
                   item: int = 0) -> list[tuple[BlockRef, np.ndarray]]:
    """The last captured block of each stage: token ``token``'s (H_s, W_s) map, or the mean over tokens."""
    if token is not None:
        check_token(trace, token)
    last_of_stage = {ref.stage: ref for ref in blocks(trace) if has_token_maps(trace, ref)}
    if not last_of_stage:
        raise KeyError("this trace holds no semantic_to_pixel or merged map to overview")
    overview = []
    for stage in sorted(last_of_stage):
        ref = last_of_stage[stage]
        maps = token_maps(trace, ref.stage, ref.block, fusion_in(trace, ref, fusion), item)
        overview.append((ref, maps.mean(axis=0) if token is None else maps[token]))
    return overview


# ----------------------------------------------------------------------------- pixels


def cell_at(grid: Grid | tuple[int, int], input_size: tuple[int, int], point: tuple[float, float]) -> int:
    """Row-major index of the cell of ``grid`` (height, width) holding ``point`` (x, y).

    ``point`` is in model-input pixels of an input ``input_size`` (width, height) wide; points
    outside are clamped to the nearest edge cell.
    """
    height, width = grid
    input_width, input_height = input_size
    x, y = point
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"point {point} is not finite")
    col = min(max(int(math.floor(x * width / input_width)), 0), width - 1)
    row = min(max(int(math.floor(y * height / input_height)), 0), height - 1)
    return row * width + col


def input_size_of(trace: Trace, item: int = 0) -> tuple[int, int]:
    """(width, height) of the model input: from the geometry, else inferred from the stage-1 grid."""
    if item < len(trace.geometries):
        return trace.geometries[item].input_size
    grid = trace.grid(1)
    return grid.width * STEM_STRIDE, grid.height * STEM_STRIDE


def pixel_to_token_rows(trace: Trace, ref: BlockRef, fusion: str, item: int,
                        rows: slice = slice(None)) -> np.ndarray:
    """(pixels, M): what the chosen pixels read from the tokens (Merge: not renormalised)."""
    if ref.kind == "dual":
        return fused(trace, ref.map_name("pixel_to_semantic"), fusion, item, rows=rows)
    size = trace.grid(ref.stage).size
    pixel_rows = slice(*rows.indices(size))
    return fused(trace, ref.map_name(MERGE_PART), fusion, item, rows=pixel_rows, columns=slice(size, None))


def pixel_reads(trace: Trace, stage: int, block: int, point: tuple[float, float],
                fusion: str = "mean", item: int = 0) -> np.ndarray:
    """(M,): the attention the pixel under ``point`` (x, y model-input pixels) pays to each token.

    Dual: its row of ``pixel_to_semantic`` (sums to one). Merge: its row of ``merged`` over the
    token columns, not renormalised (the rest went to other pixels).
    """
    ref = block_ref(trace, stage, block)
    index = cell_at(trace.grid(stage), input_size_of(trace, item), point)
    return pixel_to_token_rows(trace, ref, fusion, item, rows=slice(index, index + 1))[0]


def ownership(trace: Trace, stage: int, block: int, fusion: str = "mean",
              item: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Owner (H, W) int64: the token each pixel reads most; confidence (H, W): its share of the pixel's token reads.

    The share is renormalised over the tokens, so it means the same in Merge blocks (where a
    pixel also reads pixels) and after max/min fusion (whose rows do not sum to one).
    """
    ref = block_ref(trace, stage, block)
    grid = trace.grid(stage)
    reads = pixel_to_token_rows(trace, ref, fusion, item)
    owner = reads.argmax(axis=1)
    total = reads.sum(axis=1)
    best = np.take_along_axis(reads, owner[:, None], axis=1)[:, 0]
    confidence = np.divide(best, total, out=np.zeros_like(best), where=total > 0)
    return owner.reshape(grid.height, grid.width), confidence.reshape(grid.height, grid.width).astype(np.float32)


def owner_colours(owner: np.ndarray, tokens: int, colours: int) -> np.ndarray:
    """(tokens,) int: a colour (0 to ``colours`` - 1) for each token, so that regions of ``owner`` (h, w) that
    touch (4-neighbours) get different colours wherever the palette allows.

    Greedy, the largest regions first (lowest token on a tie): each takes, among the colours none of its
    coloured neighbours has, the one used least so far (the lowest on a tie), so that the palette is spread
    over the regions rather than four colours repeated; when its neighbours have them all, the one fewest of
    them have. Tokens that own nothing get colour 0.
    """
    owner = np.asarray(owner)
    pairs = np.concatenate([np.stack([owner[:, :-1].ravel(), owner[:, 1:].ravel()], axis=1),
                            np.stack([owner[:-1, :].ravel(), owner[1:, :].ravel()], axis=1)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    neighbours: dict[int, set[int]] = {}
    for a, b in np.unique(np.sort(pairs, axis=1), axis=0):
        neighbours.setdefault(int(a), set()).add(int(b))
        neighbours.setdefault(int(b), set()).add(int(a))
    counts = np.bincount(owner.ravel(), minlength=tokens)
    chosen = np.zeros(tokens, np.int64)
    coloured: set[int] = set()
    for token in np.argsort(-counts, kind="stable"):
        if counts[token] == 0:
            break
        taken = np.bincount([chosen[other] for other in neighbours.get(int(token), ()) if other in coloured],
                            minlength=colours)
        free = np.flatnonzero(taken == 0)
        used = np.bincount([chosen[other] for other in coloured], minlength=colours)
        chosen[token] = free[np.argmin(used[free])] if free.size else int(np.argmin(taken))
        coloured.add(int(token))
    return chosen


# ----------------------------------------------------------------------------- whole-network views


def class_attention_map(trace: Trace, fusion: str = "mean", item: int = 0) -> np.ndarray:
    """(H4, W4): the class token's attention to each stage-4 pixel (keys: class, pixels, tokens)."""
    grid = trace.grid(STAGES[-1])
    values = fused(trace, CLASS_ATTENTION, fusion, item, rows=slice(0, 1), columns=slice(1, 1 + grid.size))
    return values.reshape(grid.height, grid.width)


def semantic_self_matrix(trace: Trace, stage: int, block: int, fusion: str = "mean", item: int = 0) -> np.ndarray:
    """(M, M), query token x key token. Dual: ``semantic_self``; Merge: the token-to-token quadrant of ``merged``
    (not renormalised: the rest of each row went to pixels)."""
    ref = block_ref(trace, stage, block)
    if ref.kind == "dual":
        return fused(trace, ref.map_name("semantic_self"), fusion, item)
    size = trace.grid(stage).size
    return fused(trace, ref.map_name(MERGE_PART), fusion, item, rows=slice(size, None), columns=slice(size, None))


QUADRANTS = ("pixel→pixel", "pixel→semantic", "semantic→pixel", "semantic→semantic")


def merge_quadrants(trace: Trace, item: int = 0) -> list[tuple[BlockRef, dict[str, float]]]:
    """Per Merge block (head mean): the mean share of each query group's attention going to each key group.

    "pixel→semantic" is the mean over pixel rows of the mass on token columns, so
    "pixel→pixel" + "pixel→semantic" = 1 (likewise for the semantic rows). Empty without Merge maps.
    """
    result = []
    for ref in blocks(trace):
        if ref.kind != "merge" or not has_token_maps(trace, ref):
            continue
        size = trace.grid(ref.stage).size
        matrix = fused(trace, ref.map_name(MERGE_PART), "mean", item)
        to_pixels = matrix[:, :size].sum(axis=1)
        to_tokens = matrix[:, size:].sum(axis=1)
        result.append((ref, {
            "pixel→pixel": float(to_pixels[:size].mean()),
            "pixel→semantic": float(to_tokens[:size].mean()),
            "semantic→pixel": float(to_pixels[size:].mean()),
            "semantic→semantic": float(to_tokens[size:].mean()),
        }))
    return result
