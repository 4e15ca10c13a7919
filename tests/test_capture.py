"""Attention capture against the official maps, and the trace's metadata and storage."""
from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from model.capture import capture, explicit_attention, select_probes, stage_grids
from model.map_names import MapName
from model.preprocess import Geometry, preprocess
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


def test_capturing_changes_no_logit_in_float64(official, official_model64):
    """The contract: outputs come from the recorded maps, which moves the logits by rounding only; in
    float64 they equal a plain forward's and the official code's."""
    with torch.inference_mode():
        plain = official_model64(official.input.double())
        logits, trace = capture(official_model64, official.input.double(), dtype=torch.float64)
    torch.testing.assert_close(logits.double(), plain, rtol=0, atol=1e-9)
    torch.testing.assert_close(plain, official.logits, rtol=0, atol=1e-9)


def test_float32_capture_moves_the_logits_by_rounding_only(official, official_model):
    with torch.inference_mode():
        plain = official_model(official.input)
        logits, trace = capture(official_model, official.input)
    official.check_fp32_logits(logits)
    torch.testing.assert_close(logits, plain, rtol=0, atol=official.fp32_logit_tolerance)
    assert all(value.dtype == torch.float16 for value in trace.maps.values())
    # Hooks are gone afterwards: the probes are silent again, and the fused kernel is back.
    assert not any(probe.listening for probe in official_model.attention_probes().values())
    with torch.inference_mode():
        assert torch.equal(official_model(official.input), plain)


def test_capture_takes_each_output_from_the_map_it_records(official, official_model):
    """A capture's arithmetic is an explicit forward's to the last bit, and differs from the fused
    kernel's: so the outputs really are computed from the recorded maps."""
    with torch.inference_mode():
        logits, trace = capture(official_model, official.input, dtype=torch.float32)
        with explicit_attention(official_model):
            explicit = official_model(official.input)
        plain = official_model(official.input)
    assert torch.equal(logits, explicit) and not torch.equal(logits, plain)
    for name, expected in official.maps.items():
        torch.testing.assert_close(trace.maps[name].double(), expected.double(), rtol=0,
                                   atol=official.fp32_logit_tolerance, msg=name)


def test_subset_capture_leaves_the_other_attentions_fused(official, official_model):
    with torch.inference_mode():
        logits, trace = capture(official_model, official.input, include=("stage3.*",))
        with explicit_attention(official_model, ("stage3.*",)):
            expected = official_model(official.input)
        everything = capture(official_model, official.input)[0]
    assert set(trace.maps) == {name for name in official.maps if name.startswith("stage3.")}
    assert torch.equal(logits, expected) and not torch.equal(logits, everything)


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


def test_every_canonical_map_name_parses_and_prints_back(official, official_model):
    names = list(official_model.attention_probes())
    assert set(names) == set(official.maps)
    for name in names:
        assert str(MapName.parse(name)) == name
    assert MapName.parse("stage2.block10.semantic_to_pixel") == MapName("semantic_to_pixel", 2, 10)
    assert MapName.parse("stage4.block0.merged").is_merge
    assert MapName.parse("head.class_attention").stage is None
    for bad in ("stage5.block0.merged", "stage1.block0.pixels", "stage1.semantic_self", "attn.semantic_init", ""):
        with pytest.raises(ValueError, match="is not an attention map name"):
            MapName.parse(bad)


def test_queries_resized_to_a_5x6_pooled_grid_match_the_official_code():
    """A 160 x 192 input pools to 5 x 6 cells: the 64 learned queries are resized (bicubic) to 30, in
    the official code as here. Float64 logits to 1e-9, maps within their float32 storage."""
    from conftest import DATA, OfficialReference

    reference = OfficialReference(DATA / "dualvit_tiny_official_160x192.safetensors")
    network = reference.model().double()
    with torch.inference_mode():
        logits, trace = capture(network, reference.input, dtype=torch.float64)
        float32_logits = reference.model()(reference.input.float())
    assert tuple(trace.semantic_grid) == (5, 6) and trace.num_semantic == 30
    torch.testing.assert_close(logits, reference.logits, rtol=0, atol=1e-9)
    assert set(trace.maps) == set(reference.maps)
    for name, expected in reference.maps.items():
        torch.testing.assert_close(trace.maps[name], expected.double(), rtol=0, atol=1e-6, msg=name)
    reference.check_fp32_logits(float32_logits)


def test_traces_saved_side_by_side_load_back_as_themselves(official_model, tmp_path):
    """Each file loads as the trace written to it, not another one (two different captures)."""
    traces = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        with torch.inference_mode():
            traces.append(capture(official_model, torch.randn(1, 3, 64, 96), include=("stage1.*",))[1])
        traces[-1].save(tmp_path / f"trace{seed}.safetensors")
    for seed, trace in enumerate(traces):
        loaded = Trace.load(tmp_path / f"trace{seed}.safetensors")
        assert loaded.stage_grids == trace.stage_grids
        assert all(torch.equal(loaded.maps[name], trace.maps[name]) for name in trace.maps)


def test_a_name_that_is_no_map_is_refused_with_examples():
    with pytest.raises(ValueError, match="stage3.block1.merged or semantic_init"):
        MapName.parse("stage5.block0.merged")


def test_stage_grids_round_each_halving_up(official_model):
    for height, width in ((224, 224), (161, 97), (33, 65)):
        expected = tuple((math.ceil(height / 2 ** k), math.ceil(width / 2 ** k)) for k in (2, 3, 4, 5))
        assert stage_grids(official_model, torch.zeros(1, 3, height, width)) == expected


def test_a_capture_keeps_what_it_was_given_and_numbers_unnamed_classes(official_model):
    geometry = Geometry(original_size=(192, 128), resized_size=(96, 64), crop_box=(0, 0, 96, 64))
    images = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        logits, trace = capture(official_model, images, include=("stage2.*",), geometries=[geometry, geometry])
    assert trace.class_names == tuple(f"class {index}" for index in range(logits.shape[-1]))
    assert set(trace.maps) and all(name.startswith("stage2.") for name in trace.maps)
    assert all(value.dtype == torch.float16 and value.device.type == "cpu" for value in trace.maps.values())
    assert trace.logits.dtype == torch.float32 and not trace.multi_label
    torch.testing.assert_close(trace.probabilities, logits.float().softmax(dim=-1))
    assert trace.geometries == (geometry, geometry)
    assert trace.stage_grids[0] == (16, 24) and trace.semantic_grid == (2, 3)  # 16 // 7 by 24 // 7 home cells
    names = [f"c{index}" for index in range(logits.shape[-1])]
    with torch.inference_mode():
        logits, multi = capture(official_model, images, include=("stage1.block0.*",), class_names=names,
                                multi_label=True, dtype=torch.float32)
    assert multi.class_names == tuple(names) and multi.multi_label
    assert all(value.dtype == torch.float32 for value in multi.maps.values())
    torch.testing.assert_close(multi.probabilities, logits.float().sigmoid())
    with pytest.raises(ValueError, match=r"no attention map matches \['stage9\.\*'\]; names look like"):
        capture(official_model, images, include=("stage9.*",))
