"""Property tests: for any accepted image size and mode, the geometry maps model-input pixels into
the original image and back, and overlays keep the original's size."""
from __future__ import annotations

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from model.preprocess import plan_geometry
from viewer.inputs import MAX_ASPECT, MIN_SIDE
from viewer.overlay import level_overlays

sides = st.integers(min_value=MIN_SIDE, max_value=4096)
modes = st.sampled_from(["crop", "whole", "aspect"])
input_sizes = st.sampled_from([224, 384])


def accepted(width: int, height: int) -> bool:
    return max(width, height) / min(width, height) <= MAX_ASPECT


@settings(max_examples=300, deadline=None)
@given(width=sides, height=sides, mode=modes, size=input_sizes, u=st.floats(0, 1), v=st.floats(0, 1))
def test_model_pixels_land_inside_the_original_and_come_back(width, height, mode, size, u, v):
    assume(accepted(width, height))  # the loader refuses the others: Hypothesis draws again
    geometry = plan_geometry((width, height), size, 0.875, mode)
    input_width, input_height = geometry.input_size
    point = np.array([u * input_width, v * input_height])
    original = geometry.model_to_original(point)
    tolerance = 1e-6 * max(width, height)
    assert -tolerance <= original[0] <= width + tolerance
    assert -tolerance <= original[1] <= height + tolerance
    np.testing.assert_allclose(geometry.original_to_model(original), point, atol=1e-6 * max(input_width, input_height))


@settings(max_examples=40, deadline=None)
@given(width=st.integers(MIN_SIDE, 900), height=st.integers(MIN_SIDE, 900), mode=modes,
       grid=st.tuples(st.integers(1, 60), st.integers(1, 60)))
def test_overlays_keep_the_original_size(width, height, mode, grid):
    assume(accepted(width, height))  # the loader refuses the others: Hypothesis draws again
    geometry = plan_geometry((width, height), 224, 0.875, mode)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    indices = np.random.default_rng(0).integers(0, 256, grid, dtype=np.uint8)
    drawn, = level_overlays(image, [indices], geometry, "inferno", 0.6)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
