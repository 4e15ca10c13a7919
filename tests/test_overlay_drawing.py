"""The drawn marks, pixel by pixel: the point marker, region outlines and the token grid land where
their geometry says, in their colours, and leave the rest of the picture alone."""
from __future__ import annotations

import numpy as np
import timm
import torch

import model  # noqa: F401  (registers dualvit_nano)
from model.capture import capture
from model.preprocess import Geometry
from viewer import overlay

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
