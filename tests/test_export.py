"""The headless figure export, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from analysis import trace_maths
from model.trace import Trace
from viewer import catalogue, keys

ROOT = Path(__file__).parents[1]
EXAMPLES = ROOT / "assets" / "examples"


@pytest.mark.slow
def test_export_command_writes_the_standard_figures(small_weights, tmp_path):
    images = [EXAMPLES / "coffee.jpg", EXAMPLES / "scene_7_ring.png"]
    command = [sys.executable, "-m", "viewer.export", *map(str, images), "--out", str(tmp_path),
               "--weights", str(small_weights), "--token", "9", "--resolution", "aspect"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "coffee"
    exported = [view for view in catalogue.VIEWS if view.exported]
    expected = {f"{view.name}.{'html' if view.form == 'plot' else 'png'}" for view in exported} | \
        {"contact_sheet.png", "trace.safetensors", "settings.json"}
    assert {"token_gallery.png", "token_image.png", "ownership.png", "semantic_self.html"} <= expected
    assert {path.name for path in folder.iterdir()} == expected
    settings = json.loads((folder / "settings.json").read_text())
    trace = Trace.load(folder / "trace.safetensors")
    assert settings["token"] == 9 and settings["resolution"] == "aspect"
    assert settings["block"] == trace_maths.default_block(trace).label and settings["scale"] == "per map"  # as the page opens
    assert trace.geometries[0].original_size == (600, 400)
    # Every exported overlay carries its colour key below the picture: the 600 x 400 photo is drawn at 600 x 400.
    for name in ("token_image.png", "ownership.png", "class_attention.png"):
        height, width = cv2.imread(str(folder / name)).shape[:2]
        assert (width, height) == (600, 400 + keys.STRIP_HEIGHT), name


@pytest.mark.slow
def test_export_command_reports_a_bad_image_and_goes_on(small_weights, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image at all")
    command = [sys.executable, "-m", "viewer.export", str(bad), str(EXAMPLES / "rocket.jpg"), "--out",
               str(tmp_path / "out"), "--weights", str(small_weights)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "broken.png: skipped: This file is not an image" in result.stderr
    assert (tmp_path / "out" / "rocket" / "contact_sheet.png").exists()
