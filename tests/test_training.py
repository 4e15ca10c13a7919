"""The default model: its training loop, its evaluation metrics and the shipped weights."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.torch
import torch

from training.evaluate import (
    average_precision,
    class_misses,
    exact_match,
    mean_average_precision,
    object_figures,
    wrong_by_object_count,
)
from training.scenes import CLASSES, heldout_seed, make_scene, normalise_image
from training.train import (
    CONTAINMENT_WEIGHT,
    Recipe,
    build_network,
    grounding_loss,
    native_bfloat16,
    token_distributions,
    training_record,
)

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "assets" / "weights" / "dualvit_nano_scenes.safetensors"


@pytest.mark.slow
def test_smoke_training_lowers_the_loss_and_resumes(tmp_path):
    command = [sys.executable, "-m", "training.train", "--out", str(tmp_path), "--steps", "8", "--batch-size", "4",
               "--scenes", "4", "--warmup-steps", "1", "--save-every", "4"]  # scenes made between steps on the CPU
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 8 and summary["last_loss"] < summary["first_loss"]
    assert (tmp_path / "last.pt").exists()
    with safetensors.safe_open(str(tmp_path / "dualvit_nano_scenes.safetensors"), "pt") as exported:
        assert json.loads(exported.metadata()["class_names"]) == list(CLASSES)
        # By default bfloat16 only where this CPU computes it natively (emulated, it was 13x slower).
        native = native_bfloat16(torch.device("cpu"))
        assert exported.metadata()["precision"] == summary["precision"] == ("bfloat16" if native else "float32")
    # A second run with a higher step count resumes from step 8 instead of starting again.
    resumed = subprocess.run(command[:6] + ["10"] + command[7:], capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["steps"] == 10
    assert "8/10" in resumed.stderr.replace("\r", "\n")


@pytest.mark.slow
def test_a_run_with_a_moving_average_exports_it_beside_the_live_weights_and_resumes_it(tmp_path):
    command = [sys.executable, "-m", "training.train", "--out", str(tmp_path), "--steps", "4", "--batch-size", "4",
               "--scenes", "4", "--warmup-steps", "1", "--workers", "0", "--save-every", "2", "--precision", "float32",
               "--ema-decay", "0.9"]
    assert subprocess.run(command, capture_output=True, text=True, cwd=ROOT).returncode == 0
    resumed = subprocess.run(command[:6] + ["6"] + command[7:], capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["averaged"]["n_averaged"].item() == 6  # the resumed run went on averaging, not afresh
    average = safetensors.torch.load_file(str(tmp_path / "dualvit_nano_scenes.safetensors"))
    live = safetensors.torch.load_file(str(tmp_path / "dualvit_nano_scenes_live.safetensors"))
    assert average.keys() == live.keys() == state["model"].keys()
    assert all(torch.equal(live[key], state["model"][key]) for key in live)
    assert all(torch.allclose(average[key], state["averaged"][f"module.{key}"]) for key in average)
    # At decay 0.9 the average keeps most of the early weights: it has moved from the start about half
    # as far as the optimiser's own (weighing the newest weights by 0.9 instead would follow them).
    torch.manual_seed(Recipe.seed)
    start = build_network(Recipe()).state_dict()

    def moved(weights: dict[str, torch.Tensor]) -> float:
        return float(torch.cat([(weights[key] - start[key]).flatten() for key in start]).norm())

    assert 0 < moved(average) < 0.75 * moved(live)
    with safetensors.safe_open(str(tmp_path / "dualvit_nano_scenes.safetensors"), "pt") as exported:
        assert exported.metadata()["ema_decay"] == "0.9" and exported.metadata()["training_steps"] == "6"
        assert exported.metadata()["precision"] == "float32"  # as asked, whatever the CPU
    # Resuming with another decay, or none, would change what the average means: refused in words.
    for other in (["--ema-decay", "0.5"], []):
        refused = subprocess.run(command[:6] + ["8"] + command[7:-2] + other, capture_output=True, text=True, cwd=ROOT)
        assert refused.returncode == 2 and "written with --ema-decay 0.9" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_bfloat16_counts_as_native_on_x86_cores_with_avx512_and_not_on_avx2_alone():
    # oneDNN runs bfloat16 kernels on AVX-512 (BW, VL, DQ); with AVX2 alone it emulates them.
    flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags")).split(":")[1].split())
    assert native_bfloat16(torch.device("cpu")) == {"avx512bw", "avx512vl", "avx512dq"}.issubset(flags)


def test_a_fine_tuning_run_records_its_training_after_that_of_its_start(tmp_path):
    start = tmp_path / "start.safetensors"
    safetensors.torch.save_file({"weight": torch.zeros(1)}, str(start),
                                metadata={"training_steps": "3200", "training_minutes": "63.5"})
    record = training_record(40, 1280, 90.0, torch.device("cpu"), start)
    assert record["training_steps"] == "3200 + 40" and record["training_minutes"] == "63.5 + 1.5"
    assert record["training_scenes"] == "1280"  # the start did not record it: this run's own figure
    assert record["fine_tuned_from"] == "start.safetensors"
    assert training_record(40, 1280, 90.0, torch.device("cpu"), None)["training_steps"] == "40"


def test_grounding_loss_is_zero_when_a_token_spreads_evenly_over_each_object():
    maps = torch.tensor([[[0.0, 0.5, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]]])  # token 0 covers pixels 1 and 2
    coverage = torch.tensor([[[0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])  # one object there; one absent
    assert grounding_loss(maps, coverage).item() == pytest.approx(0.0, abs=1e-6)


def test_grounding_loss_asks_for_coverage_and_for_containment():
    coverage = torch.tensor([[[0.0, 1.0, 1.0, 0.0]]])
    # Inside the object but uneven (0.75 / 0.25): KL from (1/2, 1/2) is log(4/3) / 2, nothing spills.
    uneven = torch.tensor([[[0.0, 0.75, 0.25, 0.0]]])
    assert grounding_loss(uneven, coverage).item() == pytest.approx(0.5 * np.log(4 / 3), rel=1e-5)
    # Even over the object but half of the mass outside: KL log 2, containment -log 0.5 at its weight.
    spilling = torch.tensor([[[0.25, 0.25, 0.25, 0.25]]])
    assert grounding_loss(spilling, coverage).item() == pytest.approx((1 + CONTAINMENT_WEIGHT) * np.log(2), rel=1e-5)
    # The token with the most mass inside is the one asked, not the better-shaped one.
    two = torch.tensor([[[0.0, 0.75, 0.25, 0.0], [0.0, 0.3, 0.3, 0.4]]])
    assert grounding_loss(two, coverage).item() == pytest.approx(0.5 * np.log(4 / 3), rel=1e-5)


def test_grounding_loss_of_a_batch_without_objects_is_zero_and_differentiable():
    maps = torch.full((2, 3, 4), 0.25, requires_grad=True)
    loss = grounding_loss(maps, torch.zeros(2, 4, 4))
    loss.backward()
    assert loss.item() == 0.0 and maps.grad is not None


def test_merged_token_rows_are_cut_to_the_pixel_columns_and_renormalised():
    pixels, tokens = 2, 3
    merged = torch.rand(1, 2, pixels + tokens, pixels + tokens).softmax(dim=-1)
    rows = token_distributions("stage3.block0.merged", merged, pixels)
    head_mean = merged.mean(dim=1)[0, pixels:, :pixels]
    torch.testing.assert_close(rows[0], head_mean / head_mean.sum(dim=-1, keepdim=True))
    dual = torch.rand(1, 2, tokens, pixels).softmax(dim=-1)
    torch.testing.assert_close(token_distributions("stage1.block0.semantic_to_pixel", dual, pixels), dual.mean(dim=1))


def test_average_precision_known_answers():
    labels = np.array([1, 0, 1, 0])
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.2]), labels) == 1.0
    # positives ranked 1st and 3rd: (1/1 + 2/3) / 2
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), labels) == pytest.approx((1 + 2 / 3) / 2)
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert mean_average_precision(scores, np.eye(2)) == 1.0
    assert exact_match(scores, np.eye(2)) == 1.0 and exact_match(scores, np.array([[1, 1], [0, 1]])) == 0.5


def test_misses_are_counted_per_class_and_per_object_count():
    labels = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    probabilities = np.array([[0.9, 0.6], [0.5, 0.7], [0.1, 0.2], [0.4, 0.8]])
    # class a: the second scene's 0.5 is not over 0.5 (missed); class b: the first scene's 0.6 is false.
    rows = class_misses(probabilities, labels, ["a", "b"])
    assert [(row["class"], row["missed"], row["false"]) for row in rows] == [("a", 1, 0), ("b", 0, 1)]
    assert rows[0]["AP"] == 1.0 and rows[1]["AP"] == 1.0  # both still rank their positives first
    by_count = wrong_by_object_count(probabilities, labels, np.array([1, 3, 0, 1]))
    assert by_count == [{"objects": 0, "scenes": 1, "wrong": 0.0}, {"objects": 1, "scenes": 2, "wrong": 0.5},
                        {"objects": 3, "scenes": 1, "wrong": 1.0}]


def test_a_map_spread_evenly_over_the_object_scores_by_hand():
    """10 mask cells of 100: even attention there holds all the mass; its 80% region is 8 of the 10 cells."""
    coverage = np.zeros(100)
    coverage[20:30] = 1.0
    coverage[30] = 0.4  # partly covered: counts towards the mass, not the mask
    even = np.zeros((2, 100))
    even[0, 20:30] = 0.1
    even[1] = 0.01  # a uniform token, less inside
    figures = object_figures(even, coverage)
    assert figures["mass_in_mask"] == pytest.approx(1.0)
    assert figures["iou_50"] == pytest.approx(0.5) and figures["iou_80"] == pytest.approx(0.8)
    assert figures["mask_cells_above_uniform"] == 1.0 and figures["pointing"] == 1.0
    assert figures["effective_support"] == pytest.approx(0.1)
    assert figures["area"] == pytest.approx(10.4 / 100)


def test_a_peaked_map_scores_as_a_dot():
    coverage = np.zeros(100)
    coverage[20:30] = 1.0
    dot = np.full((1, 100), 0.1 / 99)
    dot[0, 25] = 0.9
    figures = object_figures(dot, coverage)
    assert figures["mass_in_mask"] == pytest.approx(0.9 + 9 * 0.1 / 99)
    assert figures["iou_50"] == pytest.approx(0.1) and figures["iou_80"] == pytest.approx(0.1)
    assert figures["mask_cells_above_uniform"] == pytest.approx(0.1) and figures["pointing"] == 1.0
    outside = np.full((1, 100), 0.0)
    outside[0, 70] = 1.0
    figures = object_figures(outside, coverage)
    assert figures["mass_in_mask"] == 0.0 and figures["iou_80"] == 0.0 and figures["pointing"] == 0.0


def test_shipped_weights_load_strictly_and_classify_heldout_scenes():
    from model.bundle import open_model

    bundle = open_model(SHIPPED, device="cpu")
    assert bundle.architecture == "dualvit_nano" and bundle.class_names == CLASSES and bundle.multi_label
    assert SHIPPED.stat().st_size <= 15 * 1024 * 1024
    assert sum(p.numel() for p in bundle.network.parameters()) <= 3_000_000
    scenes = [make_scene(heldout_seed(i)) for i in range(8)]
    images = torch.stack([normalise_image(scene.image) for scene in scenes])
    with torch.inference_mode():
        predicted = bundle.network(images).sigmoid().numpy() > 0.5
    labels = np.stack([scene.labels for scene in scenes]).astype(bool)
    assert (predicted == labels).all(axis=1).mean() >= 0.75
