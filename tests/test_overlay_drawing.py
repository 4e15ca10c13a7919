"""The drawn marks, pixel by pixel: the point marker, region outlines and the token grid land where
their geometry says, in their colours, and leave the rest of the picture alone."""
from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
import timm
import torch

import model  # noqa: F401  (registers dualvit_nano)
from analysis import trace_maths
from model.capture import capture
from model.dualvit import Grid
from model.preprocess import Geometry
from model.trace import Trace
from viewer import levels, overlay, payload, render
from viewer.levels import StoredMap

DARK = 40


def identity(width: int, height: int) -> Geometry:
    return Geometry(original_size=(width, height), resized_size=(width, height), crop_box=(0, 0, width, height))


def canvas(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), DARK, np.uint8)


def test_the_point_marker_rings_the_point_with_light_arms_on_dark_edges():
    image = canvas(300, 200)
    marked = overlay.mark_point(image, (150.4, 80.4))  # rounds to (150, 80); radius 5 on a 200-pixel side
    assert (image == DARK).all()  # a copy is drawn on
    assert marked[80, 150].max() <= DARK  # the light arms start off the point; only their dark edges reach it
    for x, y in ((157, 80), (143, 80), (150, 87), (150, 73)):  # the four arms, past the ring
        assert marked[y, x].min() > 200, (x, y)
    assert marked[84, 153].min() > 200 and marked[76, 147].min() > 200  # on the ring, between the arms
    assert (marked[100:, :] == DARK).all() and (marked[:, 170:] == DARK).all()  # nothing far away
    red = overlay.mark_point(image, (150, 80), colour=(255, 0, 0))
    assert red[80, 157, 0] > 200 and red[80, 157, 1:].max() < 60


def test_an_outline_follows_the_region_border_in_original_pixels():
    image = canvas(64, 64)
    region = np.zeros((4, 4), bool)
    region[1, 2] = True  # cell rows 16..31, columns 32..47 of the original
    drawn = overlay.outline(image, region, identity(64, 64))
    for x, y in ((32, 24), (47, 24), (40, 16), (40, 31)):  # the four sides
        assert drawn[y, x].min() > 200, (x, y)
    assert (drawn[20:28, 36:44] == DARK).all()  # the inside is left as it was
    assert (drawn[:12, :] == DARK).all() and (drawn[:, :28] == DARK).all()
    assert (drawn[40:, :] == DARK).all() and (drawn[:, 52:] == DARK).all()
    assert np.array_equal(overlay.outline(image, np.zeros((4, 4), bool), identity(64, 64)), image)


def test_an_outline_draws_the_border_of_a_hole_in_the_region_too():
    """A ring of cells around an unmarked middle: the middle's border is the region's border as well."""
    image = canvas(64, 64)
    region = np.zeros((4, 4), bool)
    region[:3, :3] = True
    region[1, 1] = False  # the hole: original rows and columns 16..31
    drawn = overlay.outline(image, region, identity(64, 64))
    # Two borders, the region's outer one and the hole's: each gets the light stroke on the region's
    # edge pixels and the dark halo beside it, on both sides (at 64 x 64 the stroke is 1 pixel wide).
    hole_sides = {(15, 24): (1, 0), (32, 24): (-1, 0), (24, 15): (0, 1), (24, 32): (0, -1)}
    outer_sides = {(47, 24): (1, 0), (24, 47): (0, 1)}
    for (x, y), (step_x, step_y) in {**hole_sides, **outer_sides}.items():
        assert drawn[y, x].min() > 200, (x, y)
        assert (drawn[y + step_y, x + step_x] == 0).all() and (drawn[y - step_y, x - step_x] == 0).all(), (x, y)
    assert (drawn[20:28, 20:28] == DARK).all()  # the hole itself is left as it was


def test_grid_lines_draw_the_stage_one_cells_faintly_and_the_home_cells_boldly():
    torch.manual_seed(0)
    network = timm.create_model("dualvit_nano", num_classes=3).eval()
    with torch.inference_mode():
        _, trace = capture(network, torch.randn(1, 3, 160, 224))
    assert tuple(trace.grid(1)) == (40, 56) and trace.semantic_grid == (5, 8)  # 4-pixel cells, 28-pixel homes
    image = canvas(224, 160)
    drawn = overlay.grid_lines(image, trace, identity(224, 160))
    assert (image == DARK).all()
    assert drawn[14, 28].min() > 240 and drawn[28, 14].min() > 240  # home-cell borders: white
    faint = drawn[14, 8]  # a stage-1 cell border inside a home cell
    assert 120 < faint.min() and faint.max() <= 210
    assert (drawn[14, 10] == DARK).all() and (drawn[10, 14] == DARK).all()  # inside a stage-1 cell





def test_an_outline_is_a_white_band_inside_the_region_on_a_dark_edge_on_both_sides():
    image = canvas(64, 64)  # a 64-pixel side: a band 1 pixel wide
    region = np.zeros((4, 4), bool)
    region[1, 2] = True  # original rows 16..31, columns 32..47: its border pixels are columns 32 and 47
    drawn = overlay.outline(image, region, identity(64, 64))
    row = drawn[24, :, :]
    assert tuple(row[32]) == (255, 255, 255) and tuple(row[47]) == (255, 255, 255)
    for x in (31, 33, 46, 48):  # the dark edge, just outside and just inside the band
        assert tuple(row[x]) == (0, 0, 0), x
    assert (row[36:44] == DARK).all() and (row[:28] == DARK).all() and (row[52:] == DARK).all()
    wide = overlay.outline(image, region, identity(64, 64), width=3)  # a band of three, its edge beside it
    assert (wide[24, 32:35] == 255).all() and (wide[24, 31] == 0).all() and (wide[24, 35] == 0).all()


def test_an_outline_draws_nothing_where_the_model_saw_nothing():
    # The model saw the middle 32 x 32 of a 64 x 64 photo; the region is its whole view.
    geometry = Geometry(original_size=(64, 64), resized_size=(64, 64), crop_box=(16, 16, 48, 48))
    drawn = overlay.outline(canvas(64, 64), np.ones((4, 4), bool), geometry)
    assert drawn[16, 30].min() > 200 and drawn[30, 47].min() > 200  # the view's border
    assert (drawn[:12, :] == DARK).all() and (drawn[:, :12] == DARK).all()  # the unseen margin untouched
    with pytest.raises(ValueError, match="geometry"):
        overlay.outline(canvas(60, 64), np.ones((4, 4), bool), geometry)


def colour_map(name: str) -> np.ndarray:
    """(256, 3) RGB of an OpenCV colour map, read from OpenCV itself."""
    levels = np.arange(256, dtype=np.uint8)[:, None]
    return cv2.cvtColor(cv2.applyColorMap(levels, overlay.COLORMAPS[name]), cv2.COLOR_BGR2RGB)[:, 0]


def test_mass_bands_take_evenly_spaced_colours_from_the_top_of_the_colour_map():
    table = colour_map("viridis")
    # Three bands from 1.0 down to 0.45 of the colour map: levels 255, 185 and 115.
    assert overlay.band_colours("viridis", 3) == [tuple(int(c) for c in table[level]) for level in (255, 185, 115)]
    assert overlay.band_colours("magma", 2) == [tuple(int(c) for c in colour_map("magma")[level]) for level in (255, 115)]


def test_each_mass_band_is_blended_with_its_colour_at_its_weight():
    """Band k of 3 (1: the largest region, 3: the smallest) takes the colour map at 0.45, 0.725 or 1.0 and
    covers the photo with that same fraction of the opacity, times how far the map stands out; outside every
    region the photo is left."""
    image = np.full((64, 64, 3), 128, np.uint8)
    levels = np.zeros((4, 4), np.uint8)
    levels[0, 0], levels[0, 3], levels[3, 0] = 1, 2, 3
    drawn, half = overlay.mass_overlays(image, [levels, levels], identity(64, 64), "viridis", 0.5, [1.0, 0.5])
    table = colour_map("viridis").astype(float)
    for (row, col), position in (((0, 0), 0.45), ((0, 3), 0.725), ((3, 0), 1.0)):
        colour = table[round(position * 255)]
        for picture, strength in ((drawn, 1.0), (half, 0.5)):
            weight = 0.5 * position * strength
            expected = np.floor(128 * (1 - weight) + colour * weight + 0.5)
            np.testing.assert_array_equal(picture[16 * row + 8, 16 * col + 8], expected, err_msg=str((row, col)))
    np.testing.assert_array_equal(drawn[20:44, 20:44], image[20:44, 20:44])
    with pytest.raises(ValueError, match="geometry"):
        overlay.mass_overlays(image[:60], [levels], identity(64, 64), "inferno", 0.5, [1.0])


def test_a_display_geometry_keeps_the_cut_on_a_smaller_copy():
    geometry = Geometry(original_size=(1000, 800), resized_size=(280, 224), crop_box=(28, 0, 252, 224))
    display = geometry.for_display((500, 400))
    assert display == Geometry(original_size=(500, 400), resized_size=(280, 224), crop_box=(28, 0, 252, 224))
    np.testing.assert_allclose(display.model_to_original(np.array([112.0, 112.0])), [250.0, 200.0])


def hand_built_trace(stage1: tuple[int, int], semantic: tuple[int, int]) -> Trace:
    """A trace with no maps: enough for the drawings that need only its grids."""
    height, width = stage1
    grids = tuple(Grid(-(-height // 2 ** k), -(-width // 2 ** k)) for k in range(4))
    return Trace(maps={}, stage_grids=grids, semantic_grid=Grid(*semantic), logits=torch.zeros(1, 3),
                 probabilities=torch.zeros(1, 3), class_names=("a", "b", "c"))


def faint(pixel: np.ndarray) -> bool:
    return 120 < int(pixel.min()) and int(pixel.max()) <= 210


def test_grid_lines_cover_the_model_view_and_nothing_outside_it():
    # A 224 x 160 input cut from (38, 20) of a 300 x 200 photo: stage-1 cells of 4 pixels (56 x 40),
    # home cells of 28 (8 x 5, covering stage-1 rows 0..34: rows 35..39 have faint lines only).
    trace = hand_built_trace((40, 56), (5, 8))
    geometry = Geometry(original_size=(300, 200), resized_size=(300, 200), crop_box=(38, 20, 262, 180))
    drawn = overlay.grid_lines(canvas(300, 200), trace, geometry)
    assert faint(drawn[22, 42]) and faint(drawn[22, 38 + 4 * 55])  # the second and the last inner column border
    assert (drawn[22, 44] == DARK).all()  # inside a stage-1 cell
    assert faint(drawn[20 + 4 * 39, 52]) and faint(drawn[20 + 4 * 40, 52])  # the last row border and the bottom edge
    assert (drawn[20 + 4 * 38 + 2, 52] == DARK).all()
    # Past the view: no line, the photo dimmed as every picture dims what the model did not see.
    unseen = round(DARK * overlay.OUTSIDE_BRIGHTNESS)
    assert (drawn[183:] == unseen).all() and (drawn[:, 265:] == unseen).all()
    assert (drawn[:18] == unseen).all() and (drawn[:, :36] == unseen).all()
    with pytest.raises(ValueError, match="geometry"):
        overlay.grid_lines(canvas(300, 199), trace, geometry)


def test_home_cell_borders_are_as_wide_as_the_picture_asks():
    # The same input shown on a photo twice its size: lines of 2 pixels (a 320-pixel side) for the home
    # cells, 1 pixel for the stage-1 cells.
    trace = hand_built_trace((40, 56), (5, 8))
    geometry = Geometry(original_size=(448, 320), resized_size=(224, 160), crop_box=(0, 0, 224, 160))
    drawn = overlay.grid_lines(canvas(448, 320), trace, geometry)
    bold = [x for x in range(50, 62) if drawn[10, x].min() > 240]  # across the border at x = 2 * 28
    assert len(bold) >= 2 and min(bold) <= 56 <= max(bold)
    across_faint = [x for x in range(2, 14) if drawn[10, x].min() > 120]  # the stage-1 border at x = 8
    assert len(across_faint) <= 3 and faint(drawn[10, 8])


def test_colorize_scales_between_its_bounds():
    table = colour_map("inferno")
    values = np.array([[2.0, 3.0, 4.0, 1.0, 9.0, np.nan]])
    np.testing.assert_array_equal(overlay.colorize(values, 2.0, 4.0), table[[0, 128, 255, 0, 255, 0]][None])
    np.testing.assert_array_equal(overlay.colorize(values * 10, 20.0, 40.0, "inferno"), table[[0, 128, 255, 0, 255, 0]][None])
    # An empty range has nothing to scale: every value takes the first colour.
    flat = overlay.colorize(np.array([[5.0, 6.0], [4.0, 5.0]]), 5.0, 5.0)
    assert flat.shape == (2, 2, 3) and (flat == table[0]).all()


def test_an_unknown_colour_map_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="choose one of inferno, viridis, magma, turbo, jet, hot"):
        overlay.colormap_code("rainbow")





def test_ownership_takes_each_owners_palette_colour_at_the_opacity():
    owner = np.array([[0, 1], [2, 3]])
    colour_of = np.array([3, 0, 5, 1])
    image = np.full((64, 64, 3), 100, np.uint8)
    drawn = overlay.ownership_overlay(image, owner, colour_of, identity(64, 64), opacity=0.5)
    for row, col in ((0, 0), (0, 1), (1, 0), (1, 1)):
        colour = np.array(overlay.OWNER_PALETTE[colour_of[owner[row, col]]], float)
        np.testing.assert_array_equal(drawn[32 * row + 12, 32 * col + 12], np.floor(100 * 0.5 + colour * 0.5 + 0.5))
    with pytest.raises(ValueError, match="geometry"):
        overlay.ownership_overlay(image[:, :60], owner, colour_of, identity(64, 64))


def test_neighbouring_owners_are_parted_by_a_dark_seam_and_one_owner_is_not():
    owner = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
    geometry = Geometry(original_size=(64, 64), resized_size=(64, 64), crop_box=(0, 0, 64, 64))
    colour_of = np.array([0, 1])
    drawn = overlay.ownership_overlay(np.zeros((64, 64, 3), np.uint8), owner, colour_of, geometry, opacity=1.0)
    colour = {token: np.array(overlay.OWNER_PALETTE[colour_of[token]], float) for token in (0, 1)}

    def assert_colour(y: int, x: int, token: int, brightness: float = 1.0) -> None:
        np.testing.assert_allclose(drawn[y, x], colour[token] * brightness, atol=1.0, err_msg=str((y, x)))

    # Token 1 owns the top-right quarter: a seam one pixel wide on each side of its left and lower edges.
    assert_colour(8, 31, 0, overlay.OUTSIDE_BRIGHTNESS)
    assert_colour(8, 32, 1, overlay.OUTSIDE_BRIGHTNESS)
    assert_colour(31, 48, 1, overlay.OUTSIDE_BRIGHTNESS)
    assert_colour(32, 48, 0, overlay.OUTSIDE_BRIGHTNESS)
    for y, x in ((8, 29), (8, 34), (29, 48), (34, 48), (50, 10), (50, 50), (8, 8)):
        assert_colour(y, x, 1 if y < 32 and x >= 32 else 0)
    # Along the edge of what the model saw there is no seam: only the dimmed margin outside it.
    cropped = Geometry(original_size=(64, 64), resized_size=(64, 64), crop_box=(16, 16, 48, 48))
    drawn = overlay.ownership_overlay(np.zeros((64, 64, 3), np.uint8), np.zeros((4, 4), int), colour_of,
                                      cropped, opacity=1.0)
    for y, x in ((16, 16), (16, 30), (47, 47), (30, 47), (30, 30)):
        assert_colour(y, x, 0)


def test_the_ownership_key_shows_each_large_owner_in_the_colour_the_map_gives_it():
    owner = np.array([[0, 0, 0, 0], [1, 1, 1, 2]])
    colour_of = trace_maths.owner_colours(owner, 3, len(overlay.OWNER_PALETTE))
    key = render.ownership_key(owner, colour_of, render.Style())
    assert key.swatches == (("token 0 (50%)", overlay.OWNER_PALETTE[colour_of[0]]),
                            ("token 1 (38%)", overlay.OWNER_PALETTE[colour_of[1]]),
                            ("token 2 (12%)", overlay.OWNER_PALETTE[colour_of[2]]))
    assert len({swatch for _, swatch in key.swatches}) == 3  # all three touch: three colours
    drawn = overlay.ownership_overlay(np.zeros((40, 80, 3), np.uint8), owner, colour_of, identity(80, 40), 1.0)
    assert tuple(int(c) for c in drawn[30, 10]) == key.swatches[1][1]
    assert tuple(int(c) for c in drawn[10, 30]) == key.swatches[0][1]


def test_a_region_wide_enough_gets_its_number_deep_inside_it_and_a_thin_one_none():
    # 224 pixels on a 28 x 28 grid (8 pixels a cell). Token 7 owns an L: a bar 8 cells wide (columns 4-11,
    # rows 4-19) and a foot 4 cells high (rows 16-19, out to column 23), so the deepest points lie on the
    # bar's middle column (pixel 64), far from the middle of the L's bounding box (pixel 112). Token 3 owns
    # a strip one cell high (8 pixels: too narrow for a digit about 9 pixels high and its margin).
    owner = np.full((28, 28), 5)
    owner[4:20, 4:12] = 7
    owner[16:20, 4:24] = 7
    owner[24, :] = 3
    dark = np.zeros((224, 224, 3), np.uint8)
    drawn = overlay.number_regions(dark, owner, [7, 3], identity(224, 224))
    written = drawn.max(axis=2) > 0
    rows, columns = np.nonzero(written)
    assert written.any() and abs(columns.mean() - 64) < 6, columns.mean()
    assert (owner[rows // 8, columns // 8] == 7).all()  # all of it inside the L
    assert (drawn[written].max(axis=1) >= 250).any()  # white type...
    assert not written[192:200].any()  # ...and nothing on the strip too thin to hold a number
    assert not (overlay.number_regions(dark, owner, [], identity(224, 224)) > 0).any()  # no token asked: none
    # A region along the picture's edge gets its number whole, away from the edge, not cut by it.
    edge = np.full((28, 28), 5)
    edge[:, 20:] = 7  # the right 64 pixels
    rows, columns = np.nonzero(overlay.number_regions(dark, edge, [7], identity(224, 224)).max(axis=2) > 0)
    assert columns.min() > 160 + 4 and columns.max() < 224 - 4 and abs(columns.mean() - 192) < 6


def test_the_largest_owners_come_largest_first_the_lower_token_first_on_a_tie_and_at_most_a_keyful():
    owner = np.array([[9, 9, 4, 4, 4], [2, 2, 7, 7, 1]])
    assert render.largest_owners(owner) == [(4, 3), (2, 2), (7, 2), (9, 2), (1, 1)]
    many = np.arange(render.OWNERSHIP_SWATCHES + 5).reshape(1, -1)
    assert len(render.largest_owners(many)) == render.OWNERSHIP_SWATCHES


def test_a_home_box_outlines_exactly_the_pooled_window_on_a_dark_halo():
    # A 112 x 112 input: stage-1 cells of 4 pixels (28 x 28), home cells of 28 pixels on a 4 x 4 grid;
    # token 5 (row 1, column 1) started from pixels 28..55 in both directions.
    trace = hand_built_trace((28, 28), (4, 4))
    boxed = overlay.home_box(canvas(112, 112), trace, 5, identity(112, 112), colour=(0, 255, 255))
    for x in (28, 55):  # the left and right sides, 1 pixel wide
        assert tuple(boxed[40, x]) == (0, 255, 255), x
        assert tuple(boxed[40, x - 1]) == (0, 0, 0) and tuple(boxed[40, x + 1]) == (0, 0, 0), x
        assert (boxed[40, x - 3] == DARK).all() and (boxed[40, x + 3] == DARK).all(), x  # a halo of at most 2
    for y in (28, 55):  # the top and bottom
        assert tuple(boxed[y, 40]) == (0, 255, 255), y
    assert (boxed[31:53, 31:53] == DARK).all() and (boxed[:25] == DARK).all() and (boxed[59:] == DARK).all()
    assert (boxed[:, :25] == DARK).all() and (boxed[:, 59:] == DARK).all()
    with pytest.raises(ValueError, match="geometry"):
        overlay.home_box(canvas(112, 100), trace, 5, identity(112, 112))


def test_ownership_dims_what_the_model_did_not_see():
    owner = np.array([[0, 1], [2, 3]])
    photo = np.full((64, 64, 3), 200, np.uint8)
    geometry = Geometry(original_size=(64, 64), resized_size=(64, 64), crop_box=(16, 16, 48, 48))
    drawn = overlay.ownership_overlay(photo, owner, np.arange(4), geometry, opacity=1.0)
    assert (drawn[:8] == round(200 * overlay.OUTSIDE_BRIGHTNESS)).all()  # outside the view: the photo, dimmed


def test_the_point_marker_scales_with_the_picture_and_is_drawn_smooth():
    image = canvas(1200, 1000)
    cx, cy = 600, 500
    marked = overlay.mark_point(image, (cx, cy))  # radius 1000 / 40 = 25, arms from 12 to 50 pixels out
    for x, y in ((cx + 40, cy), (cx - 40, cy), (cx, cy + 40), (cx, cy - 40)):  # the arms, past the ring
        assert marked[y, x].min() > 200, (x, y)
    for x, y in ((cx + 55, cy), (cx - 55, cy), (cx, cy + 55), (cx, cy - 55)):  # just past their ends
        assert (marked[y, x] == DARK).all(), (x, y)
    for x, y in ((cx + 8, cy), (cx - 8, cy), (cx, cy + 8), (cx, cy - 8)):  # short of their starts
        assert marked[y, x].max() < 200, (x, y)
    assert marked[cy, cx + 25].min() > 200 and marked[cy + 18, cx + 18].min() > 200  # the ring, radius 25
    assert marked[cy + 10, cx + 10].max() == DARK  # inside the ring, between the arms
    assert (overlay.mark_point(canvas(300, 200), (150, 80)) == 0).all(axis=-1).any()  # the dark edge is black
    levels = np.unique(marked[..., 0])
    assert ((levels > DARK) & (levels < 200)).any()  # anti-aliased: edges blend into the picture


def test_an_integer_map_goes_to_the_original_with_nan_outside():
    geometry = Geometry(original_size=(64, 64), resized_size=(64, 64), crop_box=(16, 16, 48, 48))
    drawn = overlay.to_original(np.array([[1, 2], [3, 4]]), geometry)
    assert drawn.dtype == np.float32 and drawn[20, 20] == 1 and drawn[40, 40] == 4 and np.isnan(drawn[0, 0])
    with pytest.raises(ValueError, match=r"expected an \(h, w\) map"):
        overlay.to_original(np.zeros((2, 2, 2)), geometry)


def pixel_checkerboard(side: int) -> np.ndarray:
    """A side x side grey image of alternating black and white pixels."""
    return (np.indices((side, side)).sum(axis=0) % 2 * 255).astype(np.uint8)


def test_a_tile_fits_the_image_centred_with_hard_edges_when_enlarged_and_averaged_when_shrunk():
    wide = np.zeros((32, 64, 3), np.uint8)
    wide[:] = (200, 10, 10)
    tiled = overlay.fit_tile(wide, 64)
    assert (tiled[:16] == overlay.BACKGROUND).all() and (tiled[48:] == overlay.BACKGROUND).all()
    assert (tiled[16:48] == (200, 10, 10)).all()
    tall = overlay.fit_tile(wide.transpose(1, 0, 2), 64)
    assert (tall[:, :16] == overlay.BACKGROUND).all() and (tall[:, 16:48] == (200, 10, 10)).all()
    enlarged = overlay.fit_tile(pixel_checkerboard(40), 64)
    assert set(np.unique(enlarged)) == {0, 255}  # nearest: no blended pixels
    shrunk = overlay.fit_tile(pixel_checkerboard(128), 64)
    assert np.abs(shrunk.astype(int) - 127.5).max() <= 1  # area averaging: every pixel of the pattern mid-grey
    sliver = overlay.fit_tile(np.full((200, 1, 3), 255, np.uint8), 64)  # a 1-pixel column stays 1 pixel wide
    assert (sliver == 255).all(axis=-1).any(axis=0).sum() == 1
    flat = overlay.fit_tile(np.full((1, 200, 3), 255, np.uint8), 64)  # and a 1-pixel row 1 pixel high
    assert (flat == 255).all(axis=-1).any(axis=1).sum() == 1


def test_a_label_sits_on_a_dark_strip_in_white_cut_to_fit_the_tile():
    image = np.full((64, 64, 3), 200, np.uint8)
    labelled = overlay.label_tile(image, "token 12")
    strip = labelled[64 - overlay.LABEL_HEIGHT:]
    assert (labelled[:64 - overlay.LABEL_HEIGHT] == 200).all()  # above the strip: untouched
    assert (strip[:, 0] == overlay.BACKGROUND).all() and (strip[0] == overlay.BACKGROUND).all()
    assert (strip == 255).all(axis=-1).any()  # white type
    greys = np.unique(strip[..., 0])
    assert ((greys > overlay.BACKGROUND[0]) & (greys < 255)).any()  # anti-aliased
    assert (strip[..., 0] == strip[..., 1]).all() and (strip[..., 1] == strip[..., 2]).all()
    text_columns = np.flatnonzero((strip > 100).any(axis=(0, 2)))
    assert 2 <= text_columns.min() <= 4 and text_columns.max() < 64 - 2  # left-aligned, inside the tile
    # "token 12" fits whole: it reaches further right than "token 1" (the font's own widths decide).
    shorter = overlay.label_tile(image, "token 1")[64 - overlay.LABEL_HEIGHT:]
    assert np.flatnonzero((shorter > 100).any(axis=(0, 2))).max() < text_columns.max()
    long = overlay.label_tile(image, "a label far too long for a tile of sixty-four pixels")
    long_columns = np.flatnonzero((long[64 - overlay.LABEL_HEIGHT:] > 100).any(axis=(0, 2)))
    assert 64 - 14 <= long_columns.max() <= 64 - 2  # cut at the last character that fits, none past the edge
    assert (overlay.label_tile(image, "")[64 - overlay.LABEL_HEIGHT:] == overlay.BACKGROUND).all()


def test_a_contact_sheet_places_each_tile_in_reading_order_with_black_gaps():
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    images = [np.full((10, 10, 3), colour, np.uint8) for colour in colours]
    sheet = overlay.tile(images, columns=2, size=16)
    assert sheet.shape == (34, 34, 3)
    assert tuple(sheet[8, 8]) == colours[0] and tuple(sheet[8, 26]) == colours[1] and tuple(sheet[26, 8]) == colours[2]
    assert (sheet[:, 16:18] == 0).all() and (sheet[16:18] == 0).all()  # the gaps
    assert (sheet[15, :16] == colours[0]).all()  # no label: the tile's bottom row is the image
    labelled = overlay.tile(images, columns=3, labels=["a", "b", "c"], size=32)
    assert (labelled[31, :32] != colours[0]).all(axis=-1).all()  # a label strip along each bottom
    step = 32 + overlay.TILE_GAP
    strips = [labelled[32 - overlay.LABEL_HEIGHT:32, step * column:step * column + 32] for column in range(3)]
    assert all((strip > 100).any() for strip in strips)  # each strip carries light type
    assert not (strips[0] == strips[1]).all() and not (strips[1] == strips[2]).all()  # its own label
    assert overlay.tile(images[:1], columns=1, size=8).shape == (8, 8, 3)
    with pytest.raises(ValueError, match="at least one image"):
        overlay.tile([], columns=2)
    for columns, size in ((0, 16), (2, 7)):
        with pytest.raises(ValueError, match="columns >= 1 and size >= 8"):
            overlay.tile(images, columns=columns, size=size)
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        overlay.tile(images, columns=2, labels=["a", "b"])





def test_lines_are_a_pixel_wide_per_two_hundred_pixels_of_the_shorter_side():
    assert [overlay.line_width(np.zeros((side, 2 * side, 3), np.uint8)) for side in (100, 299, 300, 1000)] == [1, 1, 2, 5]


def test_a_home_box_spans_its_seven_stage_one_cells_on_any_grid():
    # A 176 x 80 input: a 44 x 20 stage-1 grid of 4-pixel cells, a 6 x 2 home grid of 28-pixel cells.
    trace = hand_built_trace((20, 44), (2, 6))
    assert overlay.home_box_on_input(trace, 9, (176, 80)) == (84.0, 28.0, 112.0, 56.0)  # row 1, column 3
    assert overlay.home_box_on_input(trace, 0, (176, 80)) == (0.0, 0.0, 28.0, 28.0)


def test_a_colour_index_is_drawn_with_its_colour_at_the_square_root_of_its_level():
    image = np.full((64, 64, 3), 100, np.uint8)
    table = colour_map("viridis").astype(float)
    indices = np.array([[128, 0], [255, 64]], np.uint8)
    drawn, = overlay.level_overlays(image, [indices], identity(64, 64), "viridis", 0.8)
    for (row, col), index in (((0, 0), 128), ((1, 0), 255), ((1, 1), 64)):
        weight = 0.8 * np.sqrt(index / 255)
        np.testing.assert_array_equal(drawn[32 * row + 16, 32 * col + 16],
                                      np.floor(100 * (1 - weight) + table[index] * weight + 0.5))
    np.testing.assert_array_equal(drawn[16, 48], image[16, 48])  # index 0: the photo


def test_overlays_refuse_bad_images_by_name():
    with pytest.raises(ValueError, match="image is 64x48 but the geometry's original is 64x80"):
        overlay.level_overlays(canvas(64, 48), [np.zeros((2, 2), np.uint8)], identity(64, 80), "inferno", 0.5)
    for bad in (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((8, 8), np.uint8)):
        with pytest.raises(ValueError, match=r"expected a uint8 RGB image \(H, W, 3\)"):
            overlay.check_image(bad)


def test_the_innermost_mass_band_is_outlined_on_a_large_picture():
    from types import SimpleNamespace

    photo = np.full((64, 64, 3), 128, np.uint8)
    analysis = SimpleNamespace(display=photo, geometry=identity(64, 64), thumbnail=photo,
                               thumbnail_geometry=identity(64, 64))
    values = np.full((4, 4), 0.01)
    values[1, 1] = 0.85  # half the mass and more in one cell: original rows and columns 16..31
    drawn = render.draw_one(analysis, StoredMap.of_attention(values, 1 / 16), render.Style(scale="mass")).image
    assert drawn[24, 16].min() > 240 and tuple(drawn[24, 15]) == (0, 0, 0)  # light border, dark edge outside


def test_the_backdrop_is_the_photo_in_grey_at_its_brightness():
    image = np.random.default_rng(3).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    drawn = overlay.backdrop(image)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (drawn[..., 0] == drawn[..., 1]).all() and (drawn[..., 1] == drawn[..., 2]).all()
    luminance = image.astype(float) @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as OpenCV weighs them
    np.testing.assert_allclose(drawn[..., 0], luminance * overlay.BACKDROP_BRIGHTNESS, atol=1.5)


def test_maps_are_drawn_over_the_grey_photo_and_only_large_pictures_carry_the_outline():
    from types import SimpleNamespace

    rng = np.random.default_rng(4)
    photo = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # a colourful photo, as a scene is
    analysis = SimpleNamespace(display=photo, geometry=identity(64, 64), thumbnail=photo.copy(),
                               thumbnail_geometry=identity(64, 64))
    values = np.zeros((4, 4), np.float32)
    values[1, 1] = 1.0  # one cell: original rows and columns 16..31
    values = StoredMap.of_attention(values, 1 / 16)
    quiet = np.ones((64, 64), bool)
    quiet[12:36, 12:36] = False  # away from the cell and its outline
    for scale in ("per map", "mass"):
        style = render.Style(scale=scale)
        large_picture = render.draw_one(analysis, values, style)
        large, large_key = large_picture.image, large_picture.key
        (small,), small_key = render.draw_maps(analysis, [values], style, small=True)
        grey = overlay.backdrop(photo)
        # Where the map is zero, the photo in grey: every colour in the picture is the map's.
        np.testing.assert_array_equal(large[quiet], grey[quiet])
        np.testing.assert_array_equal(small[quiet], grey[quiet])
        assert np.abs(small[20:28, 20:28].astype(int) - grey[20:28, 20:28]).max() > 50  # the cell is coloured
        border = (slice(14, 34), 15)  # the column just left of the cell: the outline's dark halo and light line
        assert (large[border] == 0).all(axis=-1).any() and not (small[border] == 0).all(axis=-1).any(), scale
        assert "outline" in large_key.note and small_key.note.startswith(render.TILE_NOTE)


def test_the_ownership_map_takes_no_colour_from_the_photo():
    from types import SimpleNamespace

    photo = np.random.default_rng(5).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)  # the same luminance
    owner = np.arange(16).reshape(4, 4) % 5

    def picture(image):
        analysis = SimpleNamespace(display=image, geometry=identity(64, 64), trace=hand_built_trace((28, 28), (4, 4)))
        return render.ownership_picture(analysis, owner, render.Style()).image.astype(int)

    # A colourful photo and its grey copy give one map: every hue on it is an owner's.
    assert np.abs(picture(photo) - picture(grey)).max() <= 1
    assert np.abs(picture(photo) - picture(np.full_like(photo, 128))).max() > 5  # its light and shade show through


def test_a_key_says_what_the_dimmed_bands_are_only_where_the_model_saw_part_of_the_image():
    from types import SimpleNamespace

    photo = np.full((48, 64, 3), 90, np.uint8)
    cropped = Geometry(original_size=(64, 48), resized_size=(64, 48), crop_box=(8, 0, 56, 48))  # a centre crop
    values = StoredMap.of_attention(np.eye(4, dtype=np.float32), 1 / 16)
    for geometry, said in ((cropped, True), (identity(64, 48), False)):
        analysis = SimpleNamespace(display=photo, geometry=geometry, thumbnail=photo, thumbnail_geometry=geometry,
                                   trace=hand_built_trace((28, 28), (4, 4)))
        for small in (False, True):
            _, key = render.draw_maps(analysis, [values], render.Style(), small=small)
            assert (render.CROPPED_NOTE in key.note) == said, (said, small)
        ownership = render.ownership_picture(analysis, np.arange(16).reshape(4, 4), render.Style())
        assert (render.CROPPED_NOTE in ownership.key.note) == said
    assert cropped.crops and not identity(64, 48).crops


def test_each_block_of_a_series_says_how_spread_its_map_is():
    from types import SimpleNamespace

    from analysis import trace_maths

    photo = np.full((64, 64, 3), 90, np.uint8)
    analysis = SimpleNamespace(display=photo, geometry=identity(64, 64), thumbnail=photo,
                               thumbnail_geometry=identity(64, 64), trace=hand_built_trace((28, 28), (4, 4)))
    peaked = np.zeros((4, 4))
    peaked[0, 0] = 1.0  # half its mass on 1 cell of 16
    spread = np.full((4, 4), 1 / 16)  # half on 8 of 16
    refs = [trace_maths.BlockRef(1, 0, "dual"), trace_maths.BlockRef(3, 0, "merge")]
    tiles = render.series_tiles(analysis, list(zip(refs, [peaked, spread])), render.Style())
    assert [tile.caption for tile in tiles.tiles] == [f"{refs[0].label} · half on 6%", f"{refs[1].label} · half on 50%"]
    assert tiles.key.note.endswith(render.SPREAD_NOTE)
    empty = render.series_tiles(analysis, [(refs[0], np.zeros((4, 4)))], render.Style())
    assert empty.tiles[0].caption.endswith("no mass")


def test_an_exported_key_fades_in_from_the_grey_under_a_map_as_the_pages_key_does():
    from viewer import keys

    bar = keys.bar_colours("inferno", 201)
    grey = round(128 * overlay.BACKDROP_BRIGHTNESS)
    assert tuple(int(c) for c in bar[0]) == (grey, grey, grey)  # zero: the photo's grey, no colour on it
    full = overlay.colorize(np.linspace(0, 1, 201, dtype=np.float32)[None, :], 0.0, 1.0, "inferno")[0]
    # Past the page's first stop (a tenth of the bar), the colour map itself, as on the page.
    np.testing.assert_array_equal(bar[20:], full[20:])
    assert np.abs(bar[1:20].astype(int) - full[1:20]).max() > 0  # and a fade before it
    # An exported figure's key draws that bar, step by step, as vector rectangles.
    from matplotlib.collections import PatchCollection

    from viewer import figure_files
    figure = figure_files.laid_out(figure_files.key_blocks(keys.ColourKey("attention")))
    (collection,) = [artist for artist in figure.get_children() if isinstance(artist, PatchCollection)]
    np.testing.assert_allclose(collection.get_facecolors()[:, :3], keys.bar_colours("inferno", 64) / 255.0, atol=1e-6)


def test_the_deepest_point_lies_in_the_largest_four_connected_region_the_picture_edge_counting_as_outside():
    empty = np.zeros((20, 30), bool)
    assert overlay.deepest_point(empty) == (0, 0, 0.0)
    mask = np.zeros((40, 60), bool)
    mask[1:5, 1:5] = True  # a small square, labelled first
    mask[10:22, 20:40] = True  # 12 rows by 20 columns: 6 pixels deep, first at row 15, column 25
    assert overlay.deepest_point(mask) == (25, 15, 6.0)
    edge = np.zeros((40, 60), bool)
    edge[0:12, 0:20] = True  # against the top and left edges: the edge counts as outside
    assert overlay.deepest_point(edge) == (5, 5, 6.0)
    # Two squares touching at a corner (144 + 100 cells) are one region only if diagonal neighbours
    # count; on their own each is smaller than the 14 x 14 square (196), which is 7 deep at row 31, column 6.
    corners = np.zeros((40, 62), bool)
    corners[0:12, 40:52] = True
    corners[12:22, 52:62] = True
    corners[25:39, 0:14] = True
    assert overlay.deepest_point(corners) == (6, 31, 7.0)


def test_a_number_is_white_on_a_dark_edge_centred_on_its_region_s_deepest_point():
    owner = np.full((28, 28), 5)
    owner[4:20, 4:12] = 17  # the L of the test above, on a 448-pixel picture (16 pixels a cell)
    owner[16:20, 4:24] = 17
    grey = np.full((448, 448, 3), 128, np.uint8)
    drawn = overlay.number_regions(grey, owner, [17], identity(448, 448))
    changed = (drawn != grey).any(axis=2)
    rows, columns = np.nonzero(changed)
    assert (drawn[changed].max(axis=1) >= 250).any() and (drawn[changed].max(axis=1) <= 40).any()
    x, y, _ = overlay.deepest_point(np.kron(owner == 17, np.ones((16, 16), bool)))
    # Centred on the point, to a pixel across and two down (digits sit on their baseline, below their middle).
    assert abs((columns.min() + columns.max()) / 2 - x) <= 1.5 and abs((rows.min() + rows.max()) / 2 - y) <= 2.5
    # The edge rings the type: every pixel beside a white one is drawn on, and the dark ones lie beside the type.
    white, dark = drawn[..., 0] >= 250, drawn[..., 0] <= 40
    assert changed[cv2.dilate(white.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0].all()
    assert not (dark & ~(cv2.dilate(white.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)).any()


def test_an_attribution_map_is_stored_against_its_own_peak():
    values = np.array([[0.0, 1.0, 2.0], [4.0, 0.5, 0.0]])
    stored = StoredMap.of_attribution(values)
    # Bytes: floor(value / 4 * 255 + 0.5). Mass 7.5: 4 alone holds half; 4 and 2 hold 80%; 4, 2, 1, 0.5 hold 95%.
    np.testing.assert_array_equal(stored.cells, [[0, 64, 128], [255, 32, 0]])
    np.testing.assert_array_equal(stored.mass, [[0, 1, 2], [3, 1, 0]])
    assert (stored.top, stored.uniform, stored.total) == (4.0, None, 7.5)
    np.testing.assert_array_equal(stored.indices(), stored.cells)  # no uniform: the bytes are the indices
    assert stored.standing() == 1.0
    blank = StoredMap.of_attribution(np.zeros((2, 2)))
    assert not blank.cells.any() and not blank.mass.any() and blank.top == 0.0


def test_maps_shown_together_share_the_largest_top():
    assert levels.shared_top([4.0, 12.5, 7.0]) == 12.5


@pytest.mark.parametrize("side, seam_columns", [(224, (111, 113)), (800, (398, 402))])
def test_a_seam_between_two_owners_is_as_wide_as_the_picture_s_lines(side, seam_columns):
    # Owner 1 on the left half, owner 2 on the right; a 224-pixel picture draws 1-pixel lines (a seam of one
    # pixel each side of the border), an 800-pixel one 4-pixel lines (two each side).
    owner = np.array([[1, 1, 2, 2]] * 4)
    grey = np.full((side, side, 3), 200, np.uint8)
    seamed = overlay.with_seams(grey, owner, identity(side, side))
    start, stop = seam_columns
    assert (seamed[:, start:stop] == overlay.dimming_table()[200]).all()
    assert (np.delete(seamed, np.s_[start:stop], axis=1) == 200).all()


def test_quantise_keeps_a_value_in_255_steps_of_its_top():
    values = np.array([[-1.0, 0.0, 0.5, 1.0, 3.0, np.nan], [0.0, 1.0, 2.0, 4.0, 8.0, 1.0]])
    tops = np.array([[1.0], [4.0]])  # one top per row
    np.testing.assert_array_equal(levels.quantise(values, tops), [[0, 0, 128, 255, 255, 0], [0, 64, 128, 255, 255, 64]])
    assert levels.quantise(values, tops).dtype == np.uint8


def test_mass_ranks_and_areas_of_maps_stacked_together():
    flat = np.array([[4, 2, 1, 1], [0, 0, 0, 0], [1, 3, 0, 0]], np.float32)
    # Each cell: the share of its map's mass held by the larger cells before it (ties in order of position).
    ranks = trace_maths.stacked_mass_ranks(flat)
    np.testing.assert_allclose(ranks[0], [0.0, 0.5, 0.75, 0.875])
    assert np.isinf(ranks[1]).all()  # no mass: in no region
    np.testing.assert_allclose(ranks[2], [0.75, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(trace_maths.areas_holding(flat, 0.5), [0.25, np.nan, 0.25])
    np.testing.assert_allclose(trace_maths.areas_holding(flat, 0.8), [0.75, np.nan, 0.5])  # 4+2+1; 3+1


def test_the_browser_s_owner_labels_sit_inside_their_regions_away_from_the_picture_s_edge():
    # As the server's numbers (the test above): token 7 owns the right 64 pixels of a 224-pixel picture, so its
    # label sits on the strip's middle column (192), not against the edge; token 5 owns the rest.
    owner = np.full((28, 28), 5)
    owner[:, 20:] = 7
    shown = types.SimpleNamespace(geometry=identity(224, 224), display=np.zeros((224, 224, 3), np.uint8))
    labels = {token: (x, y) for token, x, y in payload.owner_labels(shown, owner, render.largest_owners(owner))}
    assert set(labels) == {5, 7}
    assert abs(labels[7][0] - 192) <= 4 and abs(labels[5][0] - 80) <= 4
    assert all(16 <= y <= 224 - 16 for _, y in labels.values())
