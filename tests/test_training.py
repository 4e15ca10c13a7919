"""The default model: its training loop, its evaluation metrics and the shipped weights."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch

from model.evaluate import average_precision, exact_match, mean_average_precision, token_localisation
from model.scenes import CLASSES, heldout_seed, make_scene, normalise_image
from model.train import grounding_loss

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "assets" / "weights" / "dualvit_nano_scenes.safetensors"


def test_smoke_training_lowers_the_loss_and_resumes(tmp_path):
    command = [sys.executable, "-m", "model.train", "--out", str(tmp_path), "--steps", "8", "--batch-size", "4",
               "--scenes", "4", "--warmup-steps", "1", "--workers", "0", "--save-every", "4"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 8 and summary["last_loss"] < summary["first_loss"]
    assert (tmp_path / "last.pt").exists()
    with safetensors.safe_open(str(tmp_path / "dualvit_nano_scenes.safetensors"), "pt") as exported:
        assert json.loads(exported.metadata()["class_names"]) == list(CLASSES)
    # A second run with a higher step count resumes from step 8 instead of starting again.
    resumed = subprocess.run(command[:6] + ["10"] + command[7:], capture_output=True, text=True, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["steps"] == 10
    assert "8/10" in resumed.stderr.replace("\r", "\n")


def test_grounding_loss_is_zero_when_a_token_sits_inside_each_object():
    maps = torch.zeros(1, 2, 3, 4)
    maps[0, :, 1, 2] = 1.0  # token 1 attends only to pixel 2, in both heads
    maps[0, :, [0, 2]] = 0.25  # the others spread evenly
    coverage = torch.tensor([[[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])  # one object on pixel 2; one absent
    assert grounding_loss(maps, coverage).item() == pytest.approx(0.0, abs=1e-6)
    coverage_elsewhere = torch.tensor([[[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]])
    assert grounding_loss(maps, coverage_elsewhere).item() == pytest.approx(-np.log(0.25), rel=1e-5)


def test_average_precision_known_answers():
    labels = np.array([1, 0, 1, 0])
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.2]), labels) == 1.0
    # positives ranked 1st and 3rd: (1/1 + 2/3) / 2
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.1]), labels) == pytest.approx((1 + 2 / 3) / 2)
    scores = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert mean_average_precision(scores, np.eye(2)) == 1.0
    assert exact_match(scores, np.eye(2)) == 1.0 and exact_match(scores, np.array([[1, 1], [0, 1]])) == 0.5


def test_token_localisation_known_answers():
    coverage = np.zeros((1, 2, 4))
    coverage[0, 0, :2] = 1.0  # object 0 covers pixels 0 and 1; object 1 is absent
    perfect = np.array([[[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]]])  # token 0 sits on the object
    result = token_localisation(perfect, coverage)
    assert (result.mass_in_mask, result.pointing_game, result.objects) == (1.0, 1.0, 1)
    outside = np.array([[[0.0, 0.0, 0.5, 0.5], [0.1, 0.0, 0.9, 0.0]]])
    result = token_localisation(outside, coverage)
    assert result.mass_in_mask == pytest.approx(0.1) and result.pointing_game == 0.0
    uniform = np.full((1, 2, 4), 0.25)
    assert token_localisation(uniform, coverage).mass_in_mask == pytest.approx(0.5)  # the object's area


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
