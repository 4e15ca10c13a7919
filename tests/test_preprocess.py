"""Preprocessing reproduces timm's evaluation transform and keeps an exact geometry."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from timm.data import create_transform

from model.preprocess import Geometry, aspect_size, data_config_for, preprocess

RNG = np.random.default_rng(0)


def _image(width: int, height: int) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 255, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("variant", ["dualvit_s", "dualvit_s.in1k_384"])
@pytest.mark.parametrize("width, height", [(500, 375), (375, 500), (224, 224), (641, 199)])
def test_crop_mode_equals_timm_eval_transform(variant, width, height):
    config = data_config_for(timm.create_model(variant))
    image = _image(width, height)
    tensor, geometry = preprocess(image, config)
    expected = create_transform(**config)(image).unsqueeze(0)
    torch.testing.assert_close(tensor, expected, rtol=0, atol=1e-6)
    assert geometry.input_size == (config["input_size"][2], config["input_size"][1])


def test_crop_geometry_maps_the_crop_back_to_the_original():
    geometry = Geometry(original_size=(500, 375), resized_size=(341, 256), crop_box=(58, 16, 282, 240))
    corners = np.array([[0, 0], [224, 224]])
    back = geometry.model_to_original(corners)
    np.testing.assert_allclose(back, [[58 * 500 / 341, 16 * 375 / 256], [282 * 500 / 341, 240 * 375 / 256]])
    np.testing.assert_allclose(geometry.original_to_model(back), corners, atol=1e-9)


def test_pixel_content_follows_the_geometry():
    # A white square in the original lands where the geometry says it does in the model input.
    original = np.zeros((375, 500, 3), dtype=np.uint8)
    original[150:230, 300:380] = 255
    config = {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bicubic",
              "mean": (0, 0, 0), "std": (1, 1, 1)}
    tensor, geometry = preprocess(Image.fromarray(original), config)
    bright = np.argwhere(tensor[0, 0].numpy() > 0.5)
    (top, left), (bottom, right) = bright.min(0), bright.max(0) + 1
    expected = geometry.original_to_model(np.array([[300, 150], [380, 230]]))
    np.testing.assert_allclose([left, top, right, bottom], expected.ravel(), atol=1.5)


def test_whole_and_aspect_modes_keep_the_whole_image():
    config = {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bicubic",
              "mean": (0.5,) * 3, "std": (0.5,) * 3}
    tensor, geometry = preprocess(_image(600, 300), config, mode="whole")
    assert tensor.shape == (1, 3, 224, 224) and geometry.crop_box == (0, 0, 224, 224)
    tensor, geometry = preprocess(_image(600, 300), config, mode="aspect")
    width, height = geometry.input_size
    assert tensor.shape == (1, 3, height, width) and width % 32 == 0 and height % 32 == 0
    assert abs(width / height - 2) < 0.3 and abs(width * height / 224 ** 2 - 1) < 0.2
    np.testing.assert_allclose(geometry.model_to_original(np.array([[width, height]])), [[600, 300]])


@pytest.mark.parametrize("width, height", [(32, 20000), (20000, 32), (1, 1), (33, 33)])
def test_aspect_mode_clamps_extreme_shapes(width, height):
    out_width, out_height = aspect_size((width, height), 224)
    assert 32 <= out_width and 32 <= out_height
    assert max(out_width, out_height) / min(out_width, out_height) <= 4.5


def test_geometry_json_round_trip():
    geometry = Geometry((500, 375), (341, 256), (58, 16, 282, 240))
    assert Geometry.from_json(geometry.to_json()) == geometry


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="unknown preprocessing mode"):
        preprocess(_image(64, 64), {"input_size": (3, 224, 224), "mean": (0,) * 3, "std": (1,) * 3}, mode="zoom")


def test_the_aspect_mode_clamps_extreme_shapes_to_one_to_four():
    # 1:10 is clamped to 1:4: about 224 / 2 by 224 * 2 pixels, each side to the nearest multiple of 32.
    assert aspect_size((100, 1000), 224) == (128, 448)
    assert aspect_size((1000, 100), 224) == (448, 128)
    assert aspect_size((300, 400), 224) == (192, 256)  # 3:4 kept: 194 by 259 to the nearest multiples
