"""Attention capture against the official maps, and the trace's metadata and storage."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from model.capture import capture, explicit_attention, select_probes
from model.preprocess import data_config_for, preprocess
from model.trace import Trace


def test_every_official_map_is_reproduced(official, official_model64):
    """In float64, as the reference was made: maps within the float32 storage of the reference's maps."""
    with torch.inference_mode():
        _, trace = capture(official_model64, official.input.double(), dtype=torch.float64)
    assert set(trace.maps) == set(official.maps)
    for name, expected in official.maps.items():
        assert trace.maps[name].shape == expected.shape, name
        torch.testing.assert_close(trace.maps[name], expected.double(), rtol=0, atol=1e-6, msg=name)


def test_float32_maps_stay_within_a_few_times_the_official_float32_error(official, official_model):
    with torch.inference_mode():
        _, trace = capture(official_model, official.input, dtype=torch.float32)
    for name, expected in official.maps.items():
        torch.testing.assert_close(trace.maps[name].double(), expected.double(), rtol=0,
                                   atol=official.fp32_logit_tolerance, msg=name)


def test_capturing_changes_no_logit(official, official_model):
    with torch.inference_mode():
        plain = official_model(official.input)
        logits, trace = capture(official_model, official.input)
    torch.testing.assert_close(logits, plain, rtol=0, atol=1e-6)
    assert all(value.dtype == torch.float16 for value in trace.maps.values())
    # Hooks are gone afterwards: the probes are silent again.
    assert not any(probe.listening for probe in official_model.attention_probes().values())


def test_shared_capture_reproduces_the_maps_and_takes_outputs_from_them(official, official_model):
    with torch.inference_mode():
        logits, trace = capture(official_model, official.input, dtype=torch.float32, fused=False)
        with explicit_attention(official_model):
            explicit = official_model(official.input)
    for name, expected in official.maps.items():
        torch.testing.assert_close(trace.maps[name].double(), expected.double(), rtol=0,
                                   atol=official.fp32_logit_tolerance, msg=name)
    # The same arithmetic as an explicit forward, to the last bit; and as close to the official
    # outputs as a plain forward is.
    assert torch.equal(logits, explicit)
    official.check_fp32_logits(logits)
    assert not any(probe.explicit for probe in official_model.attention_probes().values())


def test_shared_subset_capture_leaves_the_other_attentions_fused(official, official_model):
    with torch.inference_mode():
        logits, trace = capture(official_model, official.input, include=("stage3.*",), fused=False)
        with explicit_attention(official_model, ("stage3.*",)):
            expected = official_model(official.input)
    assert set(trace.maps) == {name for name in official.maps if name.startswith("stage3.")}
    assert torch.equal(logits, expected)


def test_probabilities_rows_sum_to_one(official, official_model):
    with torch.inference_mode():
        _, trace = capture(official_model, official.input, dtype=torch.float32)
    for name, probs in trace.maps.items():
        torch.testing.assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]), rtol=0, atol=1e-5, msg=name)


def test_non_square_grids_multiply_out(official_model):
    images = torch.randn(1, 3, 288, 224)
    with torch.inference_mode():
        _, trace = capture(official_model, images)
    assert trace.stage_grids == ((72, 56), (36, 28), (18, 14), (9, 7))
    assert trace.semantic_grid == (10, 8) and trace.num_semantic == 80
    M = trace.num_semantic
    for name, probs in trace.maps.items():
        if name == "semantic_init":
            assert probs.shape[-2:] == (M, trace.semantic_grid.size)
        elif name == "head.class_attention":
            assert probs.shape[-2:] == (1, 1 + trace.grid(4).size + M)
        else:
            stage = int(name[5])
            N = trace.grid(stage).size
            expected = {"semantic_self": (M, M), "semantic_to_pixel": (M, N),
                        "pixel_to_semantic": (N, M), "merged": (N + M, N + M)}[name.rsplit(".", 1)[1]]
            assert probs.shape[-2:] == expected, name


def test_batched_trace_items_equal_single_traces(official):
    # In float64, so that batched and single kernels agree far below any real difference.
    network = official.model().double()
    torch.manual_seed(0)
    images = torch.randn(3, 3, 224, 224, dtype=torch.float64)
    with torch.inference_mode():
        _, batched = capture(network, images, dtype=torch.float64)
        for index in range(3):
            _, single = capture(network, images[index:index + 1], dtype=torch.float64)
            item = batched.item(index)
            assert item.maps.keys() == single.maps.keys()
            for name in single.maps:
                torch.testing.assert_close(item.maps[name], single.maps[name], rtol=0, atol=1e-10, msg=name)
            torch.testing.assert_close(item.logits.double(), single.logits.double(), rtol=0, atol=1e-5)


def test_subset_capture(official_model):
    with torch.inference_mode():
        _, trace = capture(official_model, torch.randn(1, 3, 224, 224), include=("stage2.*", "head.*"))
    assert set(trace.maps) == {name for name in official_model.attention_probes()
                               if name.startswith(("stage2.", "head."))}
    with pytest.raises(ValueError, match="no attention map matches"):
        select_probes(official_model, ("stage9.*",))


def test_save_load_round_trip(official_model, tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    network = official_model
    config = {"input_size": (3, 224, 224), "crop_pct": 0.875, "interpolation": "bicubic",
              "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    images, geometry = preprocess(image, config)
    with torch.inference_mode():
        _, trace = capture(network, images, class_names=[f"c{i}" for i in range(10)], multi_label=True,
                           geometries=[geometry])
    trace.save(tmp_path / "trace.safetensors")
    loaded = Trace.load(tmp_path / "trace.safetensors")
    assert loaded.maps.keys() == trace.maps.keys()
    assert all(torch.equal(loaded.maps[k], trace.maps[k]) for k in trace.maps)
    assert torch.equal(loaded.logits, trace.logits) and torch.equal(loaded.probabilities, trace.probabilities)
    assert (loaded.stage_grids, loaded.semantic_grid, loaded.class_names, loaded.multi_label, loaded.geometries) == \
           (trace.stage_grids, trace.semantic_grid, trace.class_names, trace.multi_label, trace.geometries)
    torch.testing.assert_close(trace.probabilities, trace.logits.sigmoid())


def test_capture_of_a_registered_model_in_half_storage_is_small():
    network = timm.create_model("dualvit_s", num_classes=10).eval()
    with torch.inference_mode():
        _, trace = capture(network, torch.randn(1, 3, 224, 224))
    assert trace.nbytes() / 1e6 <= 32
