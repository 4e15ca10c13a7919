"""The viewer's pure functions on hand-built traces whose right answers are known, plus one real trace."""
from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest
import timm
import torch

from analysis import trace_maths
from model.capture import capture
from model.dualvit import Grid
from model.preprocess import Geometry
from model.trace import Trace
from viewer import figures, overlay
from viewer.help_texts import EXPLANATIONS
from viewer.levels import StoredMap

# A 56x56 input: stage grids as the network would give them, four semantic tokens on a 2x2 grid.
GRIDS = ((14, 14), (7, 7), (4, 4), (2, 2))
SEMANTIC = (2, 2)
M = 4
INPUT = (56, 56)


def size(stage: int) -> int:
    return GRIDS[stage - 1][0] * GRIDS[stage - 1][1]


def make_trace(maps: dict[str, np.ndarray], geometries: tuple[Geometry, ...] = ()) -> Trace:
    """A trace of the given (B, heads, q, k) maps, stored in float16 as capture stores them."""
    tensors = {name: torch.as_tensor(np.asarray(value, np.float32)).to(torch.float16) for name, value in maps.items()}
    batch = next(iter(tensors.values())).shape[0]
    return Trace(maps=tensors, stage_grids=tuple(Grid(*grid) for grid in GRIDS), semantic_grid=Grid(*SEMANTIC),
                 logits=torch.zeros(batch, 3), probabilities=torch.full((batch, 3), 1 / 3),
                 class_names=("a", "b", "c"), geometries=geometries)


def uniform(queries: int, keys: int, heads: int = 1, batch: int = 1) -> np.ndarray:
    return np.full((batch, heads, queries, keys), 1.0 / keys, np.float32)


def one_hot_rows(targets: np.ndarray, keys: int) -> np.ndarray:
    """(1, 1, len(targets), keys): row i puts all its mass on column targets[i]."""
    rows = np.zeros((len(targets), keys), np.float32)
    rows[np.arange(len(targets)), targets] = 1.0
    return rows[None, None]


def merged_map(stage: int, pixel_to_pixel: float, token_to_pixel: float, heads: int = 1) -> np.ndarray:
    """A merged map whose pixel rows give ``pixel_to_pixel`` to pixels, token rows ``token_to_pixel``; spread evenly."""
    n = size(stage)
    values = np.empty((1, heads, n + M, n + M), np.float32)
    for rows, share in ((slice(None, n), pixel_to_pixel), (slice(n, None), token_to_pixel)):
        values[:, :, rows, :n] = share / n
        values[:, :, rows, n:] = (1 - share) / M
    return values


def merged_regions(stage: int, cells: int, token_to_pixel: float = 0.9) -> np.ndarray:
    """A merged map whose token rows give ``token_to_pixel`` evenly to ``cells`` pixels (token i's start at
    i * cells), the rest to the tokens; pixel rows spread evenly. With 4 of 16 stage-3 pixels, a token's peak
    (0.225) is 4.5 times uniform attention over the 20 keys: it stands out."""
    n = size(stage)
    values = merged_map(stage, 0.5, token_to_pixel)
    values[:, :, n:, :n] = 0.0
    for token in range(M):
        columns = (np.arange(cells) + token * cells) % n
        values[:, :, n + token, columns] = token_to_pixel / cells
    return values


def full_maps() -> dict[str, np.ndarray]:
    """Every map of a two-stage-Dual, two-stage-Merge network, uniform attention."""
    maps = {"semantic_init": uniform(M, M)}
    for stage in (1, 2):
        prefix = f"stage{stage}.block0."
        maps |= {prefix + "semantic_self": uniform(M, M, heads=stage),
                 prefix + "semantic_to_pixel": uniform(M, size(stage), heads=stage),
                 prefix + "pixel_to_semantic": uniform(size(stage), M, heads=stage)}
    maps["stage3.block0.merged"] = merged_map(3, 0.5, 0.5, heads=3)
    maps["stage3.block1.merged"] = merged_map(3, 0.5, 0.5, heads=3)
    maps["stage4.block0.merged"] = merged_map(4, 0.5, 0.5, heads=3)
    maps["head.class_attention"] = uniform(1, 1 + size(4) + M, heads=3)
    return maps


def full_trace() -> Trace:
    return make_trace(full_maps())


# ----------------------------------------------------------------------------- blocks and fusion


def test_blocks_are_in_network_order_with_their_kind():
    trace = make_trace({
        "stage4.block0.merged": merged_map(4, 0.5, 0.5),
        "stage1.block1.semantic_self": uniform(M, M),
        "stage1.block0.pixel_to_semantic": uniform(size(1), M),
        "stage3.block0.merged": merged_map(3, 0.5, 0.5),
        "head.class_attention": uniform(1, 1 + size(4) + M),
    })
    refs = trace_maths.blocks(trace)
    assert [(ref.stage, ref.block, ref.kind) for ref in refs] == [
        (1, 0, "dual"), (1, 1, "dual"), (3, 0, "merge"), (4, 0, "merge")]
    assert refs[1].label == "stage 1 · block 1"


def test_fusion_choices_list_the_stage_heads():
    trace = full_trace()
    assert trace_maths.fusion_choices(trace, 3) == ["mean", "max", "min", "head 0", "head 1", "head 2"]
    assert trace_maths.fusion_choices(trace, 1) == ["mean", "max", "min", "head 0"]
    with pytest.raises(KeyError, match="stage 2"):
        trace_maths.fusion_choices(make_trace({"semantic_init": uniform(M, M)}), 2)


def test_fuse_heads():
    heads = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]], [[0.5, 0.5]]], dtype=torch.float16)
    np.testing.assert_allclose(trace_maths.fuse_heads(heads, "mean"), [[0.5, 0.5]])
    np.testing.assert_array_equal(trace_maths.fuse_heads(heads, "max"), [[1.0, 1.0]])
    np.testing.assert_array_equal(trace_maths.fuse_heads(heads, "min"), [[0.0, 0.0]])
    np.testing.assert_array_equal(trace_maths.fuse_heads(heads, "head 1"), [[1.0, 0.0]])
    assert trace_maths.fuse_heads(heads, "mean").dtype == np.float32
    with pytest.raises(ValueError, match="3 head"):
        trace_maths.fuse_heads(heads, "head 3")
    with pytest.raises(ValueError, match="unknown fusion"):
        trace_maths.fuse_heads(heads, "median")


def test_missing_maps_are_named_in_the_error():
    trace = make_trace({"stage1.block0.semantic_self": uniform(M, M)})
    with pytest.raises(KeyError, match="semantic_to_pixel"):
        trace_maths.token_maps(trace, 1, 0)
    with pytest.raises(KeyError, match="stage 2 · block 0"):
        trace_maths.pixel_reads(trace, 2, 0, (3, 3))
    with pytest.raises(KeyError, match="class_attention"):
        trace_maths.class_attention_map(trace)
    assert trace_maths.merge_quadrants(trace) == []


# ----------------------------------------------------------------------------- tokens


def focused_trace() -> Trace:
    """Stage 1: token 2 puts all its mass on cell (3, 5); the other tokens attend uniformly."""
    to_pixel = uniform(M, size(1))
    to_pixel[0, 0, 2] = 0.0
    to_pixel[0, 0, 2, 3 * 14 + 5] = 1.0
    return make_trace({"stage1.block0.semantic_to_pixel": to_pixel})


def test_a_focused_token():
    trace = focused_trace()
    maps = trace_maths.token_maps(trace, 1, 0)
    assert maps.shape == (M, 14, 14) and maps.dtype == np.float32
    assert maps[2, 3, 5] == 1.0 and maps[2].sum() == 1.0
    stats = trace_maths.token_statistics(trace, maps[2], 2)
    assert stats.entropy == 0.0 and stats.normalised_entropy == 0.0
    assert stats.peak == 1.0 and stats.peak_cell == (3, 5)
    assert stats.area_50 == pytest.approx(1 / 196)
    assert stats.mass == pytest.approx(1.0)
    assert stats.home == (1, 0)


def test_a_uniform_token():
    trace = focused_trace()
    stats = trace_maths.token_statistics(trace, trace_maths.token_maps(trace, 1, 0)[0], 0)
    assert stats.entropy == pytest.approx(math.log(196), abs=1e-3)
    assert stats.normalised_entropy == pytest.approx(1.0, abs=1e-3)
    assert stats.area_50 == pytest.approx(0.5, abs=1 / 196)
    assert stats.home == (0, 0)


def test_home_cell_is_row_major():
    trace = focused_trace()
    assert [trace_maths.home_cell(trace, token) for token in range(M)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with pytest.raises(ValueError, match="out of range"):
        trace_maths.home_cell(trace, M)


def test_merge_token_maps_keep_the_mass_spent_on_tokens():
    merged = merged_map(3, 0.5, 0.5)
    n = size(3)
    merged[0, 0, n + 1] = 0.0
    merged[0, 0, n + 1, 6] = 0.25  # token 1: a quarter on pixel 6, the rest on tokens
    merged[0, 0, n + 1, n:] = 0.75 / M
    trace = make_trace({"stage3.block0.merged": merged})
    maps = trace_maths.token_maps(trace, 3, 0)
    assert maps.shape == (M, 4, 4)
    assert maps[1, 1, 2] == 0.25 and maps[1].sum() == 0.25
    assert maps[0].sum() == pytest.approx(0.5, abs=1e-3)


def test_filmstrip_and_stage_overview():
    trace = full_trace()
    strip = trace_maths.token_filmstrip(trace, 3)
    assert [ref.label for ref, _ in strip] == ["stage 1 · block 0", "stage 2 · block 0", "stage 3 · block 0",
                                                 "stage 3 · block 1", "stage 4 · block 0"]
    assert [image.shape for _, image in strip] == [(14, 14), (7, 7), (4, 4), (4, 4), (2, 2)]
    overview = trace_maths.stage_overview(trace, None)
    assert [(ref.stage, ref.block) for ref, _ in overview] == [(1, 0), (2, 0), (3, 1), (4, 0)]
    np.testing.assert_allclose(overview[3][1], np.full((2, 2), 0.5 / 4), atol=1e-4)
    np.testing.assert_allclose(trace_maths.stage_overview(trace, 1)[0][1], np.full((14, 14), 1 / 196), atol=1e-5)


# ----------------------------------------------------------------------------- pixels


def test_cell_at_corners_and_clamping():
    grid = Grid(7, 7)
    assert trace_maths.cell_at(grid, INPUT, (0, 0)) == 0
    assert trace_maths.cell_at(grid, INPUT, (55.9, 55.9)) == 48
    assert trace_maths.cell_at(grid, INPUT, (56, 0)) == 6
    assert trace_maths.cell_at(grid, INPUT, (-20, 500)) == 42
    assert trace_maths.cell_at(grid, INPUT, (8, 7.9)) == 1
    # Non-square: 2 rows x 4 columns over a 64 x 32 input.
    assert trace_maths.cell_at(Grid(2, 4), (64, 32), (63, 17)) == 7


def test_pixel_reads_pick_the_row_under_the_point():
    tokens_of_pixel = np.arange(size(2)) % M
    trace = make_trace({"stage2.block0.pixel_to_semantic": one_hot_rows(tokens_of_pixel, M)})
    reads = trace_maths.pixel_reads(trace, 2, 0, (5 * 8 + 3, 2 * 8 + 1))  # cell (2, 5) -> pixel 19 -> token 3
    np.testing.assert_array_equal(reads, [0, 0, 0, 1])


def test_pixel_reads_in_a_merge_block_are_not_renormalised():
    merged = merged_map(3, 0.5, 0.5)
    merged[0, 0, 5, 16:] = [0.3, 0.1, 0.1, 0.0]  # pixel (1, 1): half to pixels, these to tokens
    trace = make_trace({"stage3.block0.merged": merged})
    np.testing.assert_allclose(trace_maths.pixel_reads(trace, 3, 0, (20, 20)), [0.3, 0.1, 0.1, 0.0], atol=1e-3)
    owner, confidence = trace_maths.ownership(trace, 3, 0)
    assert owner[1, 1] == 0 and confidence[1, 1] == pytest.approx(0.6, abs=1e-3)


def test_pixel_reads_follow_the_item():
    batch = np.concatenate([one_hot_rows(np.zeros(size(4), int), M), one_hot_rows(np.full(size(4), 2), M)])
    trace = make_trace({"stage4.block0.pixel_to_semantic": batch})
    np.testing.assert_array_equal(trace_maths.pixel_reads(trace, 4, 0, (0, 0), item=1), [0, 0, 1, 0])
    with pytest.raises(ValueError, match="2 image"):
        trace_maths.pixel_reads(trace, 4, 0, (0, 0), item=2)


def test_ownership_of_one_hot_reads():
    tokens_of_pixel = (np.arange(size(1)) * 7) % M
    trace = make_trace({"stage1.block0.pixel_to_semantic": one_hot_rows(tokens_of_pixel, M)})
    owner, confidence = trace_maths.ownership(trace, 1, 0)
    np.testing.assert_array_equal(owner, tokens_of_pixel.reshape(14, 14))
    np.testing.assert_array_equal(confidence, np.ones((14, 14)))


# ----------------------------------------------------------------------------- whole-network views


def test_class_attention_map_takes_the_pixel_keys():
    values = np.zeros((1, 2, 1, 1 + size(4) + M), np.float32)
    values[0, :, 0, 0] = 0.5
    values[0, :, 0, 1 + 2] = 0.3  # pixel 2 = row 1, col 0
    values[0, :, 0, -1] = 0.2
    trace = make_trace({"head.class_attention": values})
    np.testing.assert_allclose(trace_maths.class_attention_map(trace), [[0, 0], [0.3, 0]], atol=1e-3)


def test_semantic_self_matrix():
    dual = np.eye(M, dtype=np.float32)[None, None]
    merged = merged_map(4, 0.5, 0.2)
    trace = make_trace({"stage1.block0.semantic_self": dual, "stage4.block0.merged": merged})
    np.testing.assert_array_equal(trace_maths.semantic_self_matrix(trace, 1, 0), np.eye(M))
    np.testing.assert_allclose(trace_maths.semantic_self_matrix(trace, 4, 0), np.full((M, M), 0.8 / M), atol=1e-3)


def test_merge_quadrants_on_known_block_masses():
    # Head 0: pixels keep everything among pixels; head 1: half. Head mean: 0.75 / 0.25.
    merged = np.concatenate([merged_map(3, 1.0, 0.4), merged_map(3, 0.5, 0.4)], axis=1)
    trace = make_trace({"stage3.block0.merged": merged, "stage4.block0.merged": merged_map(4, 0.9, 0.1)})
    quadrants = trace_maths.merge_quadrants(trace)
    assert [ref.label for ref, _ in quadrants] == ["stage 3 · block 0", "stage 4 · block 0"]
    expected = [{"pixel→pixel": 0.75, "pixel→semantic": 0.25, "semantic→pixel": 0.4, "semantic→semantic": 0.6},
                {"pixel→pixel": 0.9, "pixel→semantic": 0.1, "semantic→pixel": 0.1, "semantic→semantic": 0.9}]
    for (_, shares), wanted in zip(quadrants, expected):
        assert shares == pytest.approx(wanted, abs=2e-3)


# ----------------------------------------------------------------------------- overlay

# Original 100 x 80 halved to 50 x 40, then a 32 x 32 crop from (10, 5): the model saw original
# x in [20, 84), y in [10, 74); one cell of a 4 x 4 grid covers 16 x 16 original pixels.
CROP = Geometry(original_size=(100, 80), resized_size=(50, 40), crop_box=(10, 5, 42, 37))


def test_to_original_puts_cells_in_place_and_nan_outside():
    values = np.arange(16, dtype=np.float32).reshape(4, 4)
    warped = overlay.to_original(values, CROP)
    assert warped.shape == (80, 100) and warped.dtype == np.float32
    assert warped[10 + 16 * 1 + 1, 20 + 16 * 2 + 1] == values[1, 2]
    assert warped[73, 83] == values[3, 3] and warped[10, 20] == values[0, 0]
    assert warped[41, 51] == values[1, 1]
    for y, x in ((50, 19), (50, 84), (9, 50), (74, 50), (0, 0), (79, 99)):
        assert np.isnan(warped[y, x]), (y, x)
    assert np.isfinite(warped[10:74, 20:84]).all() and np.isnan(warped).sum() == 80 * 100 - 64 * 64


def test_colorize_endpoints_are_the_colormap_ends():
    colours = overlay.colorize(np.array([[0.0, 1.0, -5.0, 9.0]]), 0.0, 1.0, "viridis")
    ends = cv2.cvtColor(cv2.applyColorMap(np.array([[0, 255]], np.uint8), cv2.COLORMAP_VIRIDIS), cv2.COLOR_BGR2RGB)
    assert colours.dtype == np.uint8 and colours.shape == (1, 4, 3)
    np.testing.assert_array_equal(colours[0, [0, 2]], ends[0, [0, 0]])
    np.testing.assert_array_equal(colours[0, [1, 3]], ends[0, [1, 1]])
    with pytest.raises(ValueError, match="colormap"):
        overlay.colorize(np.zeros((2, 2)), 0, 1, "rainbow")


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (80, 100, 3), dtype=np.uint8)


def test_overlay_keeps_the_size_and_only_dims_outside():
    image = photo()
    indices = np.arange(16, dtype=np.uint8).reshape(4, 4) * 17
    drawn, = overlay.level_overlays(image, [indices], CROP, "inferno", 0.5)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    outside = np.ones((80, 100), bool)
    outside[10:74, 20:84] = False
    # Dimmed, not coloured: each channel is the photo's times the brightness (to OpenCV's rounding).
    np.testing.assert_allclose(drawn[outside], image[outside] * overlay.OUTSIDE_BRIGHTNESS, atol=1)
    assert not np.array_equal(drawn[~outside], image[~outside])
    transparent, = overlay.level_overlays(image, [indices], CROP, "inferno", 0.0)
    np.testing.assert_array_equal(transparent[~outside], image[~outside])
    with pytest.raises(ValueError, match="opacity"):
        overlay.level_overlays(image, [indices], CROP, "inferno", 1.5)
    with pytest.raises(ValueError, match="colormap"):
        overlay.level_overlays(image, [indices], CROP, "nope", 0.5)


def test_low_attention_leaves_the_photo_as_it_is():
    image = photo()
    indices = np.zeros((4, 4), np.uint8)
    indices[1, 2] = 255
    drawn, = overlay.level_overlays(image, [indices], CROP, "inferno", 0.6)
    inside = np.zeros((80, 100), bool)
    inside[10:74, 20:84] = True
    peak = np.zeros((80, 100), bool)
    peak[26:42, 52:68] = True  # cell (1, 2): input rows 16..31, columns 32..47, shifted by the crop
    np.testing.assert_array_equal(drawn[inside & ~peak], image[inside & ~peak])  # zero: untouched, not darkened
    assert np.abs(drawn[peak].astype(int) - image[peak]).max() > 50


def test_a_batch_of_overlays_draws_each_map_as_alone_whatever_its_grid():
    image = photo()
    rng = np.random.default_rng(1)
    maps = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in ((4, 4), (2, 2), (4, 4))]
    batch = overlay.level_overlays(image, maps, CROP, "viridis", 0.7)
    for indices, drawn in zip(maps, batch):
        np.testing.assert_array_equal(drawn, overlay.level_overlays(image, [indices], CROP, "viridis", 0.7)[0])
    # A cell at the top index takes the colour map's top colour at the given opacity, blended as
    # floor(photo * 0.3 + colour * 0.7 + 0.5); index 0 leaves the photo.
    peak = np.zeros((4, 4), np.uint8)
    peak[0, 0] = 255
    top = overlay.colorize(np.array([[1.0]]), 0.0, 1.0, "viridis")[0, 0].astype(float)
    drawn, = overlay.level_overlays(image, [peak], CROP, "viridis", 0.7)
    np.testing.assert_array_equal(drawn[10, 20], np.floor(image[10, 20] * (1 - 0.7) + top * 0.7 + 0.5))
    np.testing.assert_array_equal(drawn[40, 60], image[40, 60])


def test_a_map_no_more_peaked_than_uniform_is_drawn_without_colour_on_every_scale():
    from viewer.levels import TOP_AT_LEAST, StoredMap

    grid = (4, 4)
    uniform = 1 / 16
    flat = StoredMap.of_attention(np.full(grid, uniform), uniform)
    assert flat.top == TOP_AT_LEAST and not flat.indices().any() and not flat.indices(shared=9.0).any()
    assert flat.standing() == 0.0  # the mass view's bands: not drawn at all
    # Barely above uniform (a random model's maps peak near 1.04 times uniform): barely coloured.
    noisy = StoredMap.of_attention(np.full(grid, uniform) * np.linspace(0.96, 1.04, 16).reshape(grid), uniform)
    assert noisy.indices().max() <= 0.02 * 255 and noisy.standing() <= 0.02
    # A map peaked at 8 times uniform reaches the top colour on its own scale, half-way up a shared one of 15.
    peaked = np.full(grid, 0.5 / 15)
    peaked[0, 0] = 8 * uniform
    stored = StoredMap.of_attention(peaked, uniform)
    assert stored.top == pytest.approx(8) and stored.indices()[0, 0] == 255 and stored.standing() == 1.0
    assert stored.indices(shared=15.0)[0, 0] == 128  # (8 - 1) / (15 - 1) of 255, rounded half up
    np.testing.assert_allclose(stored.values(), peaked, atol=stored.top * uniform / 255 / 2)


def test_mass_regions_hold_their_share_with_the_fewest_cells():
    values = np.array([[0.4, 0.1], [0.3, 0.2]])
    np.testing.assert_array_equal(trace_maths.mass_region(values, 0.5), [[True, False], [True, False]])
    np.testing.assert_array_equal(trace_maths.mass_region(values, 0.8), [[True, False], [True, True]])
    # 0.95 needs all four cells: the mass before the smallest (0.9) is still short of it.
    np.testing.assert_array_equal(trace_maths.mass_levels(values), [[3, 1], [3, 2]])
    np.testing.assert_array_equal(trace_maths.mass_levels(values, (0.5, 0.7, 0.9)), [[3, 0], [3, 1]])
    uniform_map = np.full((4, 4), 1 / 16)
    assert trace_maths.mass_region(uniform_map, 0.5).sum() == 8 == trace_maths.area_holding(uniform_map, 0.5) * 16
    assert not trace_maths.mass_region(np.zeros((2, 2)), 0.5).any()
    # Negative values carry no mass: a signed map's regions are of its positive part.
    np.testing.assert_array_equal(trace_maths.mass_region(np.array([[-5.0, 1.0], [3.0, 0.0]]), 0.5), [[False, False], [True, False]])


def test_mass_overlay_fills_the_bands_as_strongly_as_the_map_stands_out():
    image = np.full((56, 56, 3), 128, np.uint8)
    whole = Geometry((56, 56), (56, 56), (0, 0, 56, 56))
    levels = np.zeros((4, 4), np.uint8)
    levels[0, 0], levels[3, 3] = 3, 1
    drawn, faint = overlay.mass_overlays(image, [levels, levels], whole, "inferno", 1.0, [1.0, 0.1])
    np.testing.assert_array_equal(drawn[20:36, 20:36], image[20:36, 20:36])  # outside every region: the photo
    centre_inner, centre_outer = drawn[7, 7], drawn[49, 49]
    assert not np.array_equal(centre_inner, centre_outer) and (centre_inner != 128).any()
    assert np.abs(faint[7, 7].astype(int) - 128).max() < np.abs(drawn[7, 7].astype(int) - 128).max() / 5
    outlined = overlay.outline(drawn, levels == 3, whole)
    width = overlay.line_width(drawn)
    assert (outlined[0:14, 14 - width:14] == 255).all()  # the 50% region's border, inside it
    assert (outlined[0:13, 14] == 0).all()  # and its dark edge just outside
    assert not (outlined[0, 0:14 - width] == 255).all(axis=-1).any()  # the picture's own edge draws no border


def rows_over(cells: int, keys: int) -> np.ndarray:
    """(1, 1, M, keys): token i spreads evenly over ``cells`` cells starting at i * cells."""
    rows = np.zeros((M, keys), np.float32)
    for token in range(M):
        rows[token, token * cells:(token + 1) * cells] = 1.0 / cells
    return rows[None, None]


def test_the_opening_block_is_the_last_dual_block_with_regions_before_a_wider_merge_block():
    # Stage 1: each token over 8 of 196 cells (half its mass on 2%); stage 3: uniform token rows.
    regions = rows_over(8, size(1))
    trace = make_trace({"stage1.block0.semantic_to_pixel": regions, "stage3.block0.merged": merged_map(3, 0.5, 0.9)})
    assert trace_maths.default_block(trace).label == "stage 1 · block 0"
    # A later Dual block with regions (each token over 2 of 49 cells: 2%) wins over a wider earlier one.
    trace = make_trace({"stage1.block0.semantic_to_pixel": uniform(M, size(1)),
                        "stage2.block0.semantic_to_pixel": rows_over(2, size(2)),
                        "stage3.block0.merged": merged_map(3, 0.5, 0.9)})
    assert trace_maths.default_block(trace).label == "stage 2 · block 0"
    # Dots at every Dual block (half the mass on 1 of 196 cells, 0.5%): the widest block that stands out.
    dots = one_hot_rows(np.arange(M), size(1))
    trace = make_trace({"stage1.block0.semantic_to_pixel": dots, "stage3.block0.merged": merged_regions(3, 4)})
    assert trace_maths.default_block(trace).label == "stage 3 · block 0"
    # A wider block that does not stand out from uniform attention (its token rows even) shows nothing either.
    trace = make_trace({"stage1.block0.semantic_to_pixel": dots, "stage3.block0.merged": merged_map(3, 0.5, 0.9)})
    assert trace_maths.default_block(trace).label == "stage 1 · block 0"


def test_a_dual_block_of_dots_is_passed_over():
    dots = one_hot_rows(np.arange(M), size(1))  # half the mass on 1 of 196 cells: 0.5% of the grid
    trace = make_trace({"stage1.block0.semantic_to_pixel": dots, "stage2.block0.semantic_to_pixel": rows_over(8, size(2))})
    assert trace_maths.default_block(trace).label == "stage 2 · block 0"
    trace = make_trace({"stage1.block0.semantic_to_pixel": rows_over(8, size(1)), "stage1.block1.semantic_to_pixel": dots})
    assert trace_maths.default_block(trace).label == "stage 1 · block 0"


def test_when_no_block_stands_out_from_uniform_attention_the_last_dual_block_opens_and_says_so():
    flat = make_trace({"stage1.block0.semantic_to_pixel": uniform(M, size(1)),
                       "stage2.block0.semantic_to_pixel": uniform(M, size(2)) * np.linspace(0.9, 1.1, size(2)),
                       "stage3.block0.merged": merged_map(3, 0.5, 0.9)})
    refs = trace_maths.blocks(flat)
    assert not any(trace_maths.stands_out(flat, ref) for ref in refs)
    assert trace_maths.default_block(flat).label == "stage 2 · block 0"
    peaked = make_trace({"stage1.block0.semantic_to_pixel": rows_over(8, size(1))})
    assert trace_maths.stands_out(peaked, trace_maths.blocks(peaked)[0])
    # Just short of the threshold (a peak 3.9 times uniform) does not stand out; 4.1 times does.
    for ratio, expected in ((3.9, False), (4.1, True)):
        rows = np.full((M, size(2)), (1 - ratio / size(2)) / (size(2) - 1), np.float32)
        rows[:, 0] = ratio / size(2)
        trace = make_trace({"stage2.block0.semantic_to_pixel": rows[None, None].astype(np.float64)})
        assert trace_maths.stands_out(trace, trace_maths.blocks(trace)[0]) == expected, ratio


def test_home_grid_maps_land_on_their_pooled_windows():
    trace = full_trace()
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    on_stage1 = trace_maths.on_stage1(trace, values)
    assert on_stage1.shape == (14, 14)
    assert (on_stage1[:7, :7] == 1).all() and (on_stage1[7:, 7:] == 4).all() and (on_stage1[:7, 7:] == 2).all()
    with pytest.raises(ValueError, match="home grid"):
        trace_maths.on_stage1(trace, np.ones((3, 3)))


def class_looking_at(cell: int, batch: int = 1) -> np.ndarray:
    """A class attention putting 0.9 on stage-4 pixel ``cell``, the rest on the class token itself."""
    values = np.zeros((batch, 1, 1, 1 + size(4) + M), np.float32)
    values[..., 0] = 0.1
    values[..., 1 + cell] = 0.9
    return values


def stage2_token_maps(peaks: dict[int, tuple[int, int]]) -> np.ndarray:
    """(1, 1, M, N2): the tokens in ``peaks`` put 0.8 on one stage-2 cell (row, col), the rest spread evenly."""
    values = np.full((1, 1, M, size(2)), 1.0 / size(2), np.float32)
    for token, (row, col) in peaks.items():
        values[0, 0, token] = 0.2 / size(2)
        values[0, 0, token, row * GRIDS[1][1] + col] += 0.8
    return values


def test_the_lead_token_lies_where_the_class_token_looks():
    # Stage 2 is 7x7 under a 2x2 stage 4: rows and columns 0-3 lie under stage-4 row/column 0, 4-6 under 1.
    # Token 2 peaks in the bottom-left stage-4 pixel, token 3 in the top-left one; token 1 owns every pixel.
    maps = {"stage2.block0.semantic_to_pixel": stage2_token_maps({2: (5, 1), 3: (3, 3)}),
            "stage2.block0.pixel_to_semantic": one_hot_rows(np.full(size(2), 1), M)}
    ref = trace_maths.block_ref(make_trace(maps), 2, 0)
    assert trace_maths.lead_token(make_trace(maps | {"head.class_attention": class_looking_at(2)}), ref) == 2
    assert trace_maths.lead_token(make_trace(maps | {"head.class_attention": class_looking_at(0)}), ref) == 3
    # Looking where no token peaks, the evenly spread tokens overlap most; the lowest index wins the tie.
    assert trace_maths.lead_token(make_trace(maps | {"head.class_attention": class_looking_at(3)}), ref) == 0


def test_ownership_overlay_gives_neighbouring_tokens_distinct_colours():
    image = np.zeros((80, 100, 3), np.uint8)
    owner = np.array([[0, 1], [2, 3]])
    colour_of = trace_maths.owner_colours(owner, 4, len(overlay.OWNER_PALETTE))
    drawn = overlay.ownership_overlay(image, owner, colour_of, CROP, opacity=1.0)
    assert drawn.shape == image.shape
    top_left, top_right, bottom_left, bottom_right = (tuple(drawn[y, x]) for y, x in
                                                      ((20, 30), (20, 70), (60, 30), (60, 70)))
    assert {top_left, top_right, bottom_left, bottom_right} <= set(overlay.OWNER_PALETTE)
    assert top_left != top_right and top_left != bottom_left  # regions that touch never share a colour
    assert bottom_right != top_right and bottom_right != bottom_left
    assert (drawn[:, :20] == 0).all()


def test_owner_colours_keep_touching_regions_apart():
    # A ring of six regions around a seventh: each touches the centre and its two ring neighbours.
    owner = np.array([[1, 1, 2, 2],
                      [6, 0, 0, 3],
                      [6, 0, 0, 3],
                      [5, 5, 4, 4]])
    colours = trace_maths.owner_colours(owner, 8, 3)
    for a, b in ((owner[:, :-1], owner[:, 1:]), (owner[:-1, :], owner[1:, :])):
        touching = a != b
        clash = colours[a[touching]] == colours[b[touching]]
        assert not clash.all()  # three colours cannot part all of a wheel of seven: the fewest clashes
    many = trace_maths.owner_colours(owner, 8, 12)
    for a, b in ((owner[:, :-1], owner[:, 1:]), (owner[:-1, :], owner[1:, :])):
        touching = a != b
        assert (many[a[touching]] != many[b[touching]]).all()
    assert many[0] == 0 and many[7] == 0  # the largest region takes the first colour; a token owning nothing, 0
    assert len(set(many[:7].tolist())) == 7  # with colours to spare, each region its own: the palette spread


def test_markers_draw_on_a_copy():
    image = np.zeros((80, 100, 3), np.uint8)
    marked = overlay.mark_point(image, (50, 40))
    assert (image == 0).all() and marked.shape == image.shape and marked[30:50, 40:60].any()
    whole = Geometry((56, 56), (56, 56), (0, 0, 56, 56))
    trace = make_trace({"stage1.block0.semantic_self": uniform(M, M)}, geometries=(whole,))
    boxed = overlay.home_box(np.zeros((56, 56, 3), np.uint8), trace, 3, trace.geometries[0])
    # Token 3's home: stage-1 cells 7..13 in both directions = input pixels 28..55.
    assert boxed[28:, 28:].any() and not boxed[:26, :26].any()


def test_tile_lays_out_a_contact_sheet():
    images = [photo(), np.zeros((10, 30), np.uint8), photo()]
    sheet = overlay.tile(images, columns=2, labels=["a", "b", "c"], size=64)
    assert sheet.shape == (2 * 64 + 2, 2 * 64 + 2, 3) and sheet.dtype == np.uint8


# ----------------------------------------------------------------------------- figures and texts


def test_figures():
    reads = np.array([0.1, 0.5, 0.05, 0.3, 0.05])
    bars = figures.pixel_reads_figure(reads, top_k=2)
    assert len(bars.data) == 1 and len(bars.data[0].y) == 5
    assert sum(colour == figures.HIGHLIGHT for colour in bars.data[0].marker.color) == 2
    assert bars.data[0].marker.color[1] == figures.HIGHLIGHT and bars.data[0].marker.color[3] == figures.HIGHLIGHT
    heatmap = figures.semantic_self_figure(np.eye(M), "tokens")
    assert np.asarray(heatmap.data[0].z).shape == (M, M) and heatmap.layout.xaxis.title.text == "key token"
    quadrants = trace_maths.merge_quadrants(full_trace())
    grouped = figures.merge_quadrants_figure(quadrants)
    assert len(grouped.data) == 4 and all(len(bar.y) == 3 for bar in grouped.data)
    assert len(figures.merge_quadrants_figure([]).data) == 4


def test_views_marked_beside_share_the_row_of_the_view_before():
    from viewer import catalogue

    first, second, third = (catalogue.View(name, "e", "t", "text", beside=name == "b") for name in "abc")
    assert catalogue.rows([first, second, third]) == [[first, second], [third]]
    assert catalogue.rows([second]) == [[second]]  # nothing before it: a row of its own


def test_every_help_text_is_used_and_every_cited_one_exists():
    from analysis.explanations import METHODS
    from viewer import catalogue
    from viewer.ui import TAB_HELP

    cited = {view.help for view in catalogue.VIEWS if view.help} | set(TAB_HELP.values()) | \
        {"prediction", "overlay_controls"}
    assert set(EXPLANATIONS) == cited and all(text.strip() for text in EXPLANATIONS.values())
    assert all(len(method.help) > 40 for method in METHODS.values())  # each method says what its result shows
    assert len({view.name for view in catalogue.VIEWS}) == len(catalogue.VIEWS)  # names are ids: unique


# ----------------------------------------------------------------------------- a real trace


@pytest.fixture(scope="module")
def real_trace() -> Trace:
    torch.manual_seed(0)
    network = timm.create_model("dualvit_nano", num_classes=12).eval()
    # A 224 x 160 input from a 300 x 250 photo: non-square, so rows and columns cannot be swapped unnoticed.
    geometry = Geometry(original_size=(300, 250), resized_size=(240, 200), crop_box=(8, 20, 232, 180))
    with torch.inference_mode():
        _, trace = capture(network, torch.randn(1, 3, 160, 224), geometries=(geometry,))
    return trace


def test_every_function_runs_on_a_real_trace(real_trace):
    trace, geometry = real_trace, real_trace.geometries[0]
    image = np.full((250, 300, 3), 128, np.uint8)
    M_real = trace.num_semantic
    assert trace.semantic_grid == (5, 8)
    refs = trace_maths.blocks(trace)
    assert [ref.kind for ref in refs] == ["dual", "dual", "merge", "merge", "merge"]
    for ref in refs:
        grid = trace.grid(ref.stage)
        for fusion in trace_maths.fusion_choices(trace, ref.stage):
            maps = trace_maths.token_maps(trace, ref.stage, ref.block, fusion)
            assert maps.shape == (M_real, *grid) and np.isfinite(maps).all()
        reads = trace_maths.pixel_reads(trace, ref.stage, ref.block, (200, 10))
        owner, confidence = trace_maths.ownership(trace, ref.stage, ref.block)
        matrix = trace_maths.semantic_self_matrix(trace, ref.stage, ref.block)
        assert reads.shape == (M_real,) and owner.shape == confidence.shape == tuple(grid)
        assert matrix.shape == (M_real, M_real) and np.isfinite(matrix).all()
        assert ((confidence > 0) & (confidence <= 1.001)).all() and owner.max() < M_real
        if ref.kind == "dual":
            assert reads.sum() == pytest.approx(1.0, abs=1e-2)
        stats = trace_maths.token_statistics(trace, maps[0], 0)
        assert 0 <= stats.normalised_entropy <= 1.001 and 0 < stats.area_50 <= 1
        drawn, = overlay.level_overlays(image, [StoredMap.of_attention(maps[0], 1 / maps[0].size).indices()],
                                        geometry, "inferno", 0.6)
        owned = overlay.ownership_overlay(image, owner, trace_maths.owner_colours(owner, M_real, 12), geometry)
        assert drawn.shape == owned.shape == image.shape
    strip = trace_maths.token_filmstrip(trace, 7)
    assert len(strip) == len(refs)
    overview = trace_maths.stage_overview(trace, None)
    assert [image_map.shape for _, image_map in overview] == [tuple(trace.grid(s)) for s in (1, 2, 3, 4)]
    class_map = trace_maths.class_attention_map(trace, "head 4")
    assert class_map.shape == tuple(trace.grid(4)) and np.isfinite(class_map).all()
    quadrants = trace_maths.merge_quadrants(trace)
    assert len(quadrants) == 3
    for _, shares in quadrants:
        assert shares["pixel→pixel"] + shares["pixel→semantic"] == pytest.approx(1.0, abs=1e-2)
    drawn = overlay.level_overlays(image, [StoredMap.of_attention(m, 1 / m.size).indices() for _, m in strip], geometry,
                                   "inferno", 0.6)
    sheet = overlay.tile(drawn, columns=3,
                         labels=[ref.label for ref, _ in strip])
    assert sheet.shape == (2 * 112 + 2, 3 * 112 + 4, 3)
    boxed = overlay.home_box(overlay.mark_point(image, (150, 125)), trace, M_real - 1, geometry)
    assert boxed.shape == image.shape
    figures.pixel_reads_figure(trace_maths.pixel_reads(trace, 1, 0, (0, 0)))
    figures.semantic_self_figure(trace_maths.semantic_self_matrix(trace, 2, 0), "stage 2")
    figures.merge_quadrants_figure(quadrants)


def raw(trace: Trace, name: str) -> np.ndarray:
    """Map ``name`` of the first image as (heads, queries, keys) float64, read straight from the trace."""
    return trace.maps[name][0].double().numpy()


def test_views_of_a_real_trace_are_the_raw_maps_they_name(real_trace):
    """Each view against the captured tensor it reads, indexed by hand: rows, columns and heads cannot be
    swapped, sliced off by one or fused wrongly unnoticed."""
    trace = real_trace
    tokens = trace.num_semantic
    x, y = 200.0, 10.0  # near the top right of the 224 x 160 input
    most_heads = 0
    for ref in trace_maths.blocks(trace):
        height, width = trace.grid(ref.stage)
        pixels = height * width
        cell = int(y * height / 160) * width + int(x * width / 224)
        if ref.kind == "dual":
            prefix = f"stage{ref.stage}.block{ref.block}."
            to_pixels, to_tokens = raw(trace, prefix + "semantic_to_pixel"), raw(trace, prefix + "pixel_to_semantic")
            self_attention = raw(trace, prefix + "semantic_self")
        else:
            merged = raw(trace, f"stage{ref.stage}.block{ref.block}.merged")
            to_pixels, to_tokens = merged[:, pixels:, :pixels], merged[:, :pixels, pixels:]
            self_attention = merged[:, pixels:, pixels:]
        heads = to_pixels.shape[0]
        most_heads = max(most_heads, heads)
        np.testing.assert_allclose(trace_maths.token_maps(trace, ref.stage, ref.block),
                                   to_pixels.mean(0).reshape(tokens, height, width), atol=1e-6)
        np.testing.assert_allclose(trace_maths.token_maps(trace, ref.stage, ref.block, f"head {heads - 1}"),
                                   to_pixels[heads - 1].reshape(tokens, height, width), atol=1e-6)
        np.testing.assert_allclose(trace_maths.token_maps(trace, ref.stage, ref.block, "max"),
                                   to_pixels.max(0).reshape(tokens, height, width), atol=1e-6)
        np.testing.assert_allclose(trace_maths.pixel_reads(trace, ref.stage, ref.block, (x, y)),
                                   to_tokens.mean(0)[cell], atol=1e-6)
        np.testing.assert_allclose(trace_maths.semantic_self_matrix(trace, ref.stage, ref.block),
                                   self_attention.mean(0), atol=1e-6)
        owner, confidence = trace_maths.ownership(trace, ref.stage, ref.block)
        reads = to_tokens.mean(0)
        np.testing.assert_array_equal(owner.ravel(), reads.argmax(1))
        np.testing.assert_allclose(confidence.ravel(), reads.max(1) / reads.sum(1), rtol=1e-5)
    assert most_heads > 1  # so that a fusion of heads was checked
    class_attention = raw(trace, "head.class_attention")
    stage4 = trace.grid(4).height * trace.grid(4).width
    np.testing.assert_allclose(trace_maths.class_attention_map(trace, "head 4").ravel(),
                               class_attention[4, 0, 1:1 + stage4], atol=1e-6)
    for ref, shares in trace_maths.merge_quadrants(trace):
        merged = raw(trace, f"stage{ref.stage}.block{ref.block}.merged").mean(0)
        pixels = trace.grid(ref.stage).height * trace.grid(ref.stage).width
        assert shares["pixel→semantic"] == pytest.approx(merged[:pixels, pixels:].sum(1).mean(), abs=1e-5)
        assert shares["semantic→semantic"] == pytest.approx(merged[pixels:, pixels:].sum(1).mean(), abs=1e-5)


# ----------------------------------------------------------------------------- home-grid rows and the prediction


def test_the_semantic_init_row_is_the_token_query_over_the_home_cells_head_mean():
    # Two heads: token 1's query reads home cells 0 and 3 in head 0, cell 3 alone in head 1.
    init = np.zeros((1, 2, M, M), np.float32)
    init[0, 0, 1, [0, 3]] = 0.5
    init[0, 1, 1, 3] = 1.0
    init[0, :, [0, 2, 3], :] = 1 / M
    trace = make_trace({"semantic_init": init})
    np.testing.assert_allclose(trace_maths.semantic_init_row(trace, 1), [[0.25, 0.0], [0.0, 0.75]], atol=1e-3)
    np.testing.assert_allclose(trace_maths.semantic_init_row(trace, 2), np.full((2, 2), 1 / M), atol=1e-3)
    batch = make_trace({"semantic_init": np.concatenate([uniform(M, M, heads=2), init])})
    np.testing.assert_allclose(trace_maths.semantic_init_row(batch, 1, item=1), [[0.25, 0.0], [0.0, 0.75]], atol=1e-3)
    with pytest.raises(ValueError, match="out of range"):
        trace_maths.semantic_init_row(trace, M)


def test_the_semantic_self_row_is_the_token_row_of_its_block_on_the_home_grid():
    dual = np.zeros((1, 2, M, M), np.float32)
    dual[0, 0, 2] = [0.1, 0.2, 0.3, 0.4]
    dual[0, 1, 2] = [0.3, 0.2, 0.1, 0.4]
    merged = merged_map(3, 0.5, 0.2)
    n = size(3)
    merged[0, 0, n + 3, n:] = [0.0, 0.8, 0.0, 0.0]  # token 3 in the Merge block: 0.8 to token 1
    trace = make_trace({"stage1.block0.semantic_self": dual, "stage3.block0.merged": merged})
    np.testing.assert_allclose(trace_maths.semantic_self_row(trace, trace_maths.block_ref(trace, 1, 0), 2),
                               [[0.2, 0.2], [0.2, 0.4]], atol=1e-3)
    np.testing.assert_allclose(trace_maths.semantic_self_row(trace, trace_maths.block_ref(trace, 3, 0), 3),
                               [[0.0, 0.8], [0.0, 0.0]], atol=1e-3)
    with pytest.raises(ValueError, match="out of range"):
        trace_maths.semantic_self_row(trace, trace_maths.block_ref(trace, 1, 0), -1)
    batch = make_trace({"stage1.block0.semantic_self": np.concatenate([uniform(M, M, heads=2), dual])})
    np.testing.assert_allclose(trace_maths.semantic_self_row(batch, trace_maths.block_ref(batch, 1, 0), 2, item=1),
                               [[0.2, 0.2], [0.2, 0.4]], atol=1e-3)


def test_top_classes_are_the_most_probable_in_order():
    trace = make_trace({"semantic_init": uniform(M, M, batch=2)})
    trace = dataclasses.replace(trace, probabilities=torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.0, 0.4]]))
    assert trace.top_classes(2) == [("b", pytest.approx(0.7)), ("c", pytest.approx(0.2))]
    assert [name for name, _ in trace.top_classes(9, index=1)] == ["a", "c", "b"]  # k past the classes: all of them
    seven = dataclasses.replace(trace, class_names=tuple("abcdefg"),
                                probabilities=torch.tensor([[0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.6]]))
    assert [name for name, _ in seven.top_classes()] == ["b", "e", "g", "d", "a"]  # the default: five


# ----------------------------------------------------------------------------- mass regions, exactly


def test_tied_cells_join_a_mass_region_in_reading_order_whatever_the_total():
    # 200 cells in a repeating pattern 0.2, 0.1, 0.3, 0.1 (total 35): the 50 cells of 0.3 hold 15, and
    # each 0.2 cell adds 0.2 more. Half the mass (17.5) takes the 0.3 cells and then 0.2 cells while
    # the mass before them is under 17.5: 15 + 0.2 k < 17.5 for k = 0..12, so the first 13 of them.
    values = np.tile([0.2, 0.1, 0.3, 0.1], 50).reshape(10, 20)
    region = trace_maths.mass_region(values, 0.5).ravel()
    expected = np.zeros(200, bool)
    expected[2::4] = True
    expected[0:13 * 4:4] = True
    np.testing.assert_array_equal(region, expected)
    np.testing.assert_array_equal(trace_maths.mass_region(values * 7, 0.5).ravel(), expected)


def test_nan_cells_carry_no_mass():
    values = np.array([[np.nan, 1.0], [3.0, np.nan]])
    np.testing.assert_array_equal(trace_maths.mass_region(values, 0.5), [[False, False], [True, False]])
    np.testing.assert_array_equal(trace_maths.mass_levels(values), [[0, 2], [3, 0]])


def test_a_half_precision_map_has_the_regions_of_its_exact_values():
    # 4096 equal cells: a float16 running sum stops growing at 2048, which would put every cell past
    # half the mass; the regions must be those of the exact values.
    values = np.ones((64, 64), np.float16)
    assert trace_maths.mass_region(values, 0.5).sum() == 2048
    levels = trace_maths.mass_levels(values)
    assert np.issubdtype(levels.dtype, np.integer)
    inside = [math.ceil(share * 4096) for share in (0.95, 0.8, 0.5)]  # the fewest equal cells holding each share
    assert np.bincount(levels.ravel()).tolist() == [4096 - inside[0], inside[0] - inside[1], inside[1] - inside[2], 2048]


def test_home_grid_maps_land_on_their_pooled_windows_on_a_wide_grid():
    # A 2 x 3 home grid pooled from a 15 x 22 stage-1 grid: the last row and column of stage-1 cells
    # lie past the last whole 7 x 7 window and stay 0.
    trace = dataclasses.replace(full_trace(), stage_grids=tuple(Grid(*grid) for grid in ((15, 22), (8, 11), (4, 6), (2, 3))),
                                semantic_grid=Grid(2, 3))
    values = np.arange(1, 7, dtype=np.float64).reshape(2, 3)
    drawn = trace_maths.on_stage1(trace, values)
    assert drawn.shape == (15, 22) and drawn.dtype == np.float32
    for row in range(2):
        for col in range(3):
            assert (drawn[7 * row:7 * row + 7, 7 * col:7 * col + 7] == values[row, col]).all()
    assert (drawn[14, :] == 0).all() and (drawn[:, 21] == 0).all()


def test_the_lead_token_follows_the_item():
    token_maps = np.concatenate([stage2_token_maps({2: (5, 1), 3: (3, 3)})] * 2)
    looks = np.concatenate([class_looking_at(2), class_looking_at(0)])
    trace = make_trace({"stage2.block0.semantic_to_pixel": token_maps, "head.class_attention": looks})
    ref = trace_maths.block_ref(trace, 2, 0)
    assert trace_maths.lead_token(trace, ref) == 2 and trace_maths.lead_token(trace, ref, item=1) == 3


def test_the_opening_block_needs_token_maps_and_follows_the_item():
    with pytest.raises(KeyError, match="no semantic_to_pixel or merged map"):
        trace_maths.default_block(make_trace({"stage1.block0.semantic_self": uniform(M, M)}))
    # Image 0: regions at stage 1 (each token over 8 of 196 cells); image 1: dots there (1 cell, 0.5%),
    # so the widest block opens.
    stage1 = np.concatenate([rows_over(8, size(1)), one_hot_rows(np.arange(M), size(1))])
    trace = make_trace({"stage1.block0.semantic_to_pixel": stage1,
                        "stage3.block0.merged": np.concatenate([merged_regions(3, 4)] * 2)})
    assert trace_maths.default_block(trace).label == "stage 1 · block 0"
    assert trace_maths.default_block(trace, item=1).label == "stage 3 · block 0"


def test_a_block_whose_half_mass_area_is_exactly_the_dot_threshold_shows_regions():
    # A 10 x 10 stage-1 grid: one cell is exactly 1% of it, the threshold for "dots".
    grids = tuple(Grid(*grid) for grid in ((10, 10), (5, 5), (3, 3), (2, 2)))
    trace = dataclasses.replace(make_trace({"stage1.block0.semantic_to_pixel": one_hot_rows(np.arange(M), 100),
                                            "stage4.block0.merged": merged_map(4, 0.5, 0.9)}), stage_grids=grids)
    assert trace_maths.default_block(trace).label == "stage 1 · block 0"


def test_among_equally_spread_blocks_the_earliest_opens():
    dots = one_hot_rows(np.arange(M), size(1))
    trace = make_trace({"stage1.block0.semantic_to_pixel": dots, "stage3.block0.merged": merged_regions(3, 4),
                        "stage3.block1.merged": merged_regions(3, 4)})
    assert trace_maths.default_block(trace).label == "stage 3 · block 0"


def test_the_last_stage_offers_the_class_attention_heads_when_it_has_no_map_of_its_own():
    class_only = make_trace({"head.class_attention": uniform(1, 1 + size(4) + M, heads=5)})
    assert trace_maths.fusion_choices(class_only, 4)[3:] == [f"head {k}" for k in range(5)]
    with pytest.raises(KeyError, match="stage 3"):
        trace_maths.fusion_choices(class_only, 3)
    both = make_trace({"head.class_attention": uniform(1, 1 + size(4) + M, heads=5),
                       "stage4.block0.merged": merged_map(4, 0.5, 0.5, heads=2)})
    assert trace_maths.fusion_choices(both, 4)[3:] == ["head 0", "head 1"]
    with pytest.raises(KeyError, match="stage 4"):
        trace_maths.fusion_choices(make_trace({"stage1.block0.semantic_self": uniform(M, M)}), 4)


def test_a_head_fusion_falls_back_to_the_mean_only_where_the_block_lacks_that_head():
    trace = full_trace()  # stage 1: 1 head, stage 2: 2 heads, Merge blocks: 3 heads
    dual1, dual2, merge = (trace_maths.block_ref(trace, stage, 0) for stage in (1, 2, 3))
    assert trace_maths.fusion_in(trace, dual1, "head 0") == "head 0"
    assert trace_maths.fusion_in(trace, dual1, "head 1") == "mean"
    assert trace_maths.fusion_in(trace, dual2, "head 1") == "head 1"
    assert trace_maths.fusion_in(trace, merge, "head 2") == "head 2"
    assert trace_maths.fusion_in(trace, merge, "head 3") == "mean"
    assert trace_maths.fusion_in(trace, merge, "head 100") == "mean"
    assert trace_maths.fusion_in(trace, dual1, "max") == "max"
    assert trace_maths.fusion_in(trace, dual1, 7) == 7  # not a fusion: refused where it is used, with its message


def test_token_statistics_of_tiny_and_flat_maps():
    one_cell = trace_maths.token_statistics(focused_trace(), np.array([[0.7]]), 0)
    assert one_cell.normalised_entropy == 0.0 and one_cell.entropy == 0.0
    pair = trace_maths.token_statistics(focused_trace(), np.array([[0.5, 0.5]]), 0)
    assert pair.normalised_entropy == pytest.approx(1.0) and pair.entropy == pytest.approx(math.log(2))
    with pytest.raises(ValueError, match=r"expected one \(H, W\) token map"):
        trace_maths.token_statistics(focused_trace(), np.ones((2, 2, 2)), 0)


def test_map_entropy_counts_only_cells_with_mass():
    assert trace_maths.map_entropies(np.array([[0.5, 0.0, 0.5, 0.0]]))[0] == pytest.approx(math.log(2))
    assert math.isnan(trace_maths.map_entropies(np.zeros((1, 4)))[0])


def test_area_holding_of_any_total():
    values = np.array([[4.0, 3.0], [2.0, 1.0]])  # total 10: the largest cell holds 40%, two hold 70%
    assert trace_maths.area_holding(values, 0.4) == 0.25
    assert trace_maths.area_holding(values, 0.6) == 0.5
    assert trace_maths.area_holding(values, 0.95) == 1.0
    assert math.isnan(trace_maths.area_holding(np.zeros((2, 2)), 0.5))


def test_following_a_token_honours_the_head_and_the_item_in_every_block():
    maps = {name: np.concatenate([values, values]) for name, values in full_maps().items()}  # two images
    merged = maps["stage3.block0.merged"]
    merged[:, 1, size(3) + 2, :size(3)] = 0.0
    merged[:, 1, size(3) + 2, 5] = 0.9  # head 1 of stage 3: token 2 on pixel 5
    to_pixel = maps["stage1.block0.semantic_to_pixel"]
    to_pixel[1, 0, 2] = 0.0
    to_pixel[1, 0, 2, 7] = 1.0  # image 1, stage 1: token 2 on pixel 7
    trace = make_trace(maps)
    strip = dict((ref.label, image) for ref, image in trace_maths.token_filmstrip(trace, 2, "head 1"))
    assert strip["stage 3 · block 0"][1, 1] == pytest.approx(0.9, abs=1e-3)  # its head 1, not the mean
    np.testing.assert_allclose(strip["stage 1 · block 0"], np.full((14, 14), 1 / 196), atol=1e-5)  # one head: the mean
    second = dict((ref.label, image) for ref, image in trace_maths.token_filmstrip(trace, 2, item=1))
    assert second["stage 1 · block 0"][0, 7] == 1.0
    overview = dict((ref.label, image) for ref, image in trace_maths.stage_overview(trace, 2, "head 1", item=1))
    assert overview["stage 1 · block 0"][0, 7] == 1.0 and overview["stage 1 · block 0"].sum() == 1.0
    assert overview["stage 3 · block 1"].shape == (4, 4)
    nothing = make_trace({"stage1.block0.semantic_self": uniform(M, M)})
    with pytest.raises(KeyError, match="no semantic_to_pixel or merged map to follow a token through"):
        trace_maths.token_filmstrip(nothing, 0)
    with pytest.raises(KeyError, match="no semantic_to_pixel or merged map to overview"):
        trace_maths.stage_overview(nothing, None)


def test_bad_fusions_are_refused_with_the_choices():
    heads = np.zeros((2, 1, 1), np.float32)
    for fusion in ("head x", "heads 1", 5, None, "median"):
        with pytest.raises(ValueError, match=r"unknown fusion .*: choose one of mean, max, min or 'head <k>'"):
            trace_maths.fuse_heads(heads, fusion)


def test_a_missing_block_is_named_beside_the_blocks_present():
    trace = make_trace({"stage1.block0.semantic_self": uniform(M, M), "stage3.block0.merged": merged_map(3, 0.5, 0.5)})
    with pytest.raises(KeyError, match="blocks present: stage 1 · block 0, stage 3 · block 0"):
        trace_maths.block_ref(trace, 2, 0)
    with pytest.raises(KeyError, match=r"blocks present: none\)"):
        trace_maths.block_ref(make_trace({"semantic_init": uniform(M, M)}), 1, 0)


def test_a_point_must_be_finite():
    for point in ((math.nan, 3.0), (3.0, math.inf)):
        with pytest.raises(ValueError, match="is not finite"):
            trace_maths.cell_at(Grid(7, 7), INPUT, point)


def test_the_input_size_comes_from_the_geometry_when_the_trace_has_one():
    geometry = Geometry(original_size=(230, 230), resized_size=(230, 230), crop_box=(0, 0, 230, 230))
    assert trace_maths.input_size_of(make_trace({"semantic_init": uniform(M, M)}, geometries=(geometry,))) == (230, 230)
    assert trace_maths.input_size_of(make_trace({"semantic_init": uniform(M, M)})) == (56, 56)  # 14 cells of 4 pixels


def test_a_pixel_that_reads_nothing_has_no_confidence():
    reads = one_hot_rows(np.arange(size(4)) % M, M)
    reads[0, 0, 3] = 0.0  # pixel 3 (row 1, col 1) reads nothing at all
    owner, confidence = trace_maths.ownership(make_trace({"stage4.block0.pixel_to_semantic": reads}), 4, 0)
    assert confidence.dtype == np.float32 and confidence[1, 1] == 0.0 and np.isfinite(confidence).all()
    assert confidence[0, 0] == 1.0


def test_a_missing_map_is_named_beside_the_maps_captured():
    trace = make_trace({"stage1.block0.semantic_self": uniform(M, M), "semantic_init": uniform(M, M)})
    with pytest.raises(KeyError, match="captured: semantic_init, stage1.block0.semantic_self"):
        trace_maths.attention_of(trace, "stage2.block0.semantic_self")
    empty = dataclasses.replace(trace, maps={})
    with pytest.raises(KeyError, match=r"captured: nothing\)"):
        trace_maths.attention_of(empty, "semantic_init")
    batch = make_trace({"semantic_init": np.concatenate([uniform(M, M), np.zeros((1, 1, M, M), np.float32)])})
    assert float(trace_maths.attention_of(batch, "semantic_init").sum()) == pytest.approx(M)  # item 0 by default


def test_heads_given_as_numpy_are_fused_in_float32():
    fused = trace_maths.fuse_heads(np.array([[[0.25, 0.75]], [[0.75, 0.25]]], np.float64), "mean")
    assert fused.dtype == np.float32 and fused.tolist() == [[0.5, 0.5]]
    assert trace_maths.fuse_heads([[[1.0, 0.0]]], "head 0").dtype == np.float32


def test_an_item_of_a_batch_keeps_its_own_prediction_and_geometry_and_its_size_is_counted_exactly():
    first = Geometry((100, 80), (50, 40), (10, 5, 42, 37))
    second = Geometry((64, 64), (64, 64), (0, 0, 64, 64))
    trace = make_trace({"semantic_init": uniform(M, M, batch=2)}, geometries=(first, second))
    trace = dataclasses.replace(trace, probabilities=torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.0, 0.4]]))
    item = trace.item(1)
    assert item.geometries == (second,)
    torch.testing.assert_close(item.probabilities, torch.tensor([[0.5, 0.0, 0.4]]))
    assert item.maps["semantic_init"].shape == (1, 1, M, M) and item.batch_size == 1
    assert trace.nbytes() == 2 * M * M * 2  # two images of M x M float16 values
    assert len(trace.top_classes()) == 3 and len(make_trace({"semantic_init": uniform(M, M)}).top_classes(k=2)) == 2


def test_attention_of_the_wrong_shape_is_refused_by_name():
    with pytest.raises(ValueError, match=r"expected attention of shape \(heads, queries, keys\), got \(2, 2\)"):
        trace_maths.fuse_heads(np.zeros((2, 2)), "mean")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_descending_order_is_the_stable_order_of_the_values(dtype):
    rng = np.random.default_rng(7)
    flat = rng.random((6, 300)).astype(dtype)
    flat[0] = 0.25  # every value tied
    flat[1, ::3] = 0.0
    flat[1, 1] = np.float32(1e-40)  # beside a zero: a subnormal still orders above it
    flat[2, :40] = flat[2, 200]  # ties with a value elsewhere
    flat[3, 5] = -0.0
    flat[4, 10:20] = np.float32(1e-40)  # subnormal
    order = trace_maths.descending_order(flat)
    expected = np.array([sorted(range(flat.shape[1]), key=lambda cell: (-float(row[cell]), cell)) for row in flat])
    np.testing.assert_array_equal(order, expected)


def test_uniform_weights_are_the_weight_a_uniform_map_gives_each_key():
    maps, trace = full_maps(), full_trace()
    # The class token's keys: itself, the stage-4 pixels and the tokens (a uniform row over all of them).
    assert trace_maths.class_uniform_weight(trace) == pytest.approx(float(maps["head.class_attention"][0, 0, 0, 0]))
    assert trace_maths.class_uniform_weight(trace) == pytest.approx(1 / (1 + 4 + M))
    dual, merge = trace_maths.BlockRef(2, 0, "dual"), trace_maths.BlockRef(3, 0, "merge")
    assert trace_maths.uniform_weight(trace, dual) == pytest.approx(1 / size(2))
    assert trace_maths.uniform_weight(trace, merge) == pytest.approx(1 / (size(3) + M))
