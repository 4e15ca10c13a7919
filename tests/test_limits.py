"""The limits a host can set: read from flags and the environment, kept by the cache, the decoder and
the live server."""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import launch
from viewer import limits
from viewer.errors import UserError
from viewer.inputs import ImageRejected, open_image
from viewer.limits import Limits
from viewer.service import AnalysisCache

ROOT = Path(__file__).parents[1]


def parse(argv: list[str], environment: dict[str, str], monkeypatch) -> Limits:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser()
    limits.add_arguments(parser)
    return limits.from_arguments(parser.parse_args(argv))


def test_flags_and_environment_variables_set_the_limits(monkeypatch):
    assert parse([], {}, monkeypatch) == Limits()
    read = parse(["--max-pixels", "2_000_000"], {"DUALVIT_CONCURRENT_EXPLANATIONS": "3", "DUALVIT_MAX_PIXELS": "9"},
                 monkeypatch)
    assert read.max_pixels == 2_000_000  # the flag wins over the environment
    assert read.concurrent_explanations == 3
    assert read.cache_bytes == Limits().cache_mib * 2 ** 20


@pytest.mark.parametrize("argv, message", [
    (["--cache-mib", "lots"], "--cache-mib .* must be a whole number, not 'lots'"),
    (["--session-analyses", "0"], "--session-analyses must be a whole number of at least 1, not 0"),
    (["--max-pixels", "300000000"], "--max-pixels may be at most 250,000,000"),
])
def test_a_bad_limit_names_its_flag(argv, message, monkeypatch):
    with pytest.raises(ValueError, match=message):
        parse(argv, {}, monkeypatch)


@pytest.mark.slow
def test_the_app_refuses_a_bad_limit_with_one_line():
    result = subprocess.run([sys.executable, "app.py", "--concurrent-explanations", "none"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --concurrent-explanations (or $DUALVIT_CONCURRENT_EXPLANATIONS) must be a whole number, not 'none'."]


@dataclass
class Held:  # stands in for an analysis: the cache reads its size only
    size: int

    def nbytes(self) -> int:
        return self.size


def test_a_session_keeps_its_latest_analyses_only():
    cache = AnalysisCache(max_bytes=10_000, session_analyses=2)
    first, second, third = (cache.put(Held(100), session="a") for _ in range(3))
    other = cache.put(Held(100), session="b")
    with pytest.raises(UserError, match="analyse an image first"):
        cache.get(first)
    assert {cache.get(key).size for key in (second, third, other)} == {100}
    assert len(cache) == 3 and cache.total_bytes == 300


def test_the_cache_drops_the_least_recently_used_analysis_with_its_explanations():
    cache = AnalysisCache(max_bytes=1_000, session_analyses=5)
    old, recent = cache.put(Held(400)), cache.put(Held(400))
    cache.keep_explanation((old, "occlusion", 0, 2), np.zeros(25, np.float32))  # 100 bytes
    cache.get(old)  # used: now the most recent
    cache.put(Held(400))  # 1,300 bytes: the least recently used goes
    with pytest.raises(UserError):
        cache.get(recent)
    assert cache.explanation((old, "occlusion", 0, 2)) is not None
    cache.put(Held(400))
    cache.put(Held(400))  # old goes now, and its explanation with it
    with pytest.raises(UserError):
        cache.get(old)
    assert cache.explanations == 0 and cache.total_bytes == 800
    cache.keep_explanation((old, "occlusion", 0, 2), np.zeros(25, np.float32))  # computed after it left
    assert cache.explanations == 0 and cache.total_bytes == 800


def test_the_pixel_limit_is_the_hosts():
    data = _png(Image.new("RGB", (400, 300)))
    assert open_image(data, max_pixels=120_000).image.size == (400, 300)
    with pytest.raises(ImageRejected, match="400×300 = 120,000 pixels; this server's limit is 119,999"):
        open_image(data, max_pixels=119_999)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_a_server_with_tight_limits_refuses_and_forgets_as_set(small_weights, tmp_path):
    demo, running = launch(small_weights, Limits(max_pixels=100_000, session_analyses=1))
    try:
        small, large = tmp_path / "small.png", tmp_path / "large.png"
        Image.new("RGB", (300, 300), "teal").save(small)
        Image.new("RGB", (400, 300), "teal").save(large)
        client = running.client()
        with pytest.raises(AppError, match="this server's limit is 100,000"):
            client.predict(handle_file(large), "224", api_name="/analyse")
        for _ in range(3):
            prediction = client.predict(handle_file(small), "224", api_name="/analyse")[0]
        assert len(running.explorer.cache) == 1  # one session, one analysis kept
        top_class = prediction["confidences"][0]["label"]
        title = client.predict("occlusion", top_class, 2, "per map", "inferno", 0.6, api_name="/explain")
        assert "Occlusion" in str(title)  # the kept analysis still explains
    finally:
        demo.close()
