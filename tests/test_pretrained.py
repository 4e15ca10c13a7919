"""Named checkpoints and URLs: download once with progress, cache, checksums, offline loads, messages.

A small checkpoint (the official fixture's weights, in the official training code's layout) is served
from a local HTTP server on 127.0.0.1; nothing here reaches beyond the loopback address.
"""
from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest
import timm
import torch

from conftest import FIXTURE_LAYER_NORM_EPS
from model import pretrained
from model.bundle import open_model
from model.pretrained import NAMED_WEIGHTS, NamedWeights
from model.weights import CheckpointError, load_model

ROOT = Path(__file__).parents[1]


class CountingServer:
    """Serves a folder on 127.0.0.1; ``/truncated/NAME`` announces NAME's full length and sends half of it."""

    def __init__(self, folder: Path):
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):
                server.requests.append(self.path)
                if self.path.startswith("/truncated/"):
                    body = (folder / self.path.removeprefix("/truncated/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:len(body) // 2])
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def served(official, tmp_path_factory):
    """The fixture's weights as the official training code saves them (a .pth.tar with EMA weights and
    its arguments), and the shipped model as a safetensors file, on a loopback server."""
    import argparse

    folder = tmp_path_factory.mktemp("served")
    torch.save({"state_dict_ema": official.state_dict, "epoch": 309, "args": argparse.Namespace(model="tiny")},
               folder / "dualvit_tiny.pth.tar")
    (folder / "dualvit_nano_scenes.safetensors").write_bytes(
        (ROOT / "assets" / "weights" / "dualvit_nano_scenes.safetensors").read_bytes())
    server = CountingServer(folder)
    server.folder = folder
    yield server
    server.close()


@pytest.fixture
def tiny_entry(official, monkeypatch, tmp_path, served):
    """A named checkpoint like the paper's, for the fixture's small architecture, mirrored on the server."""
    config = {**{k: v for k, v in official.config.items() if k not in ("num_classes", "token_label")},
              "norm_layer": partial(torch.nn.LayerNorm, eps=FIXTURE_LAYER_NORM_EPS)}
    entry = NamedWeights(name="dualvit_tiny", architecture="dualvit_nano", title="the official fixture",
                         page="https://example.invalid/dualvit_tiny", filename="dualvit_tiny.pth.tar", config=config)
    monkeypatch.setitem(NAMED_WEIGHTS, entry.name, entry)
    monkeypatch.setenv("DUALVIT_WEIGHTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DUALVIT_WEIGHTS_MIRROR", served.url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    served.requests.clear()
    return entry


def cached_files(tmp_path):
    cache = tmp_path / "cache"
    return sorted(str(path.relative_to(cache)) for path in cache.rglob("*") if path.is_file()) if cache.exists() else []


def test_a_named_checkpoint_is_downloaded_once_with_progress_then_loads_offline(tiny_entry, served, official,
                                                                              tmp_path, monkeypatch, capfd):
    path = pretrained.fetch("dualvit_tiny")
    assert "100%" in capfd.readouterr().err  # the progress bar
    served_bytes = (served.folder / "dualvit_tiny.pth.tar").read_bytes()
    assert path.read_bytes() == served_bytes
    assert cached_files(tmp_path) == ["dualvit_tiny.pth.tar", "dualvit_tiny.pth.tar.sha256"]
    assert (tmp_path / "cache" / "dualvit_tiny.pth.tar.sha256").read_text().strip() == \
        hashlib.sha256(served_bytes).hexdigest()
    assert served.requests == ["/dualvit_tiny.pth.tar"]
    # Later loads read the cache: no request, and none possible offline.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DUALVIT_WEIGHTS_MIRROR", "http://127.0.0.1:9/nothing-listens-here")
    network = load_model("dualvit_tiny")
    assert served.requests == ["/dualvit_tiny.pth.tar"]
    with torch.inference_mode():
        official.check_fp32_logits(network(official.input))


def test_a_download_with_the_wrong_checksum_is_refused_and_not_cached(tiny_entry, monkeypatch, tmp_path):
    wrong = NamedWeights(**{**tiny_entry.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(NAMED_WEIGHTS, wrong.name, wrong)
    with pytest.raises(CheckpointError, match="has SHA-256 [0-9a-f]{64}, expected 0{64}; it was refused and not cached"):
        pretrained.fetch("dualvit_tiny")
    assert cached_files(tmp_path) == []


def test_a_truncated_download_is_refused_and_not_cached(tiny_entry, served, monkeypatch, tmp_path):
    monkeypatch.setenv("DUALVIT_WEIGHTS_MIRROR", f"{served.url}/truncated")
    with pytest.raises(CheckpointError, match="is not usable .*truncated or corrupt.*refused and not cached"):
        pretrained.fetch("dualvit_tiny")
    assert cached_files(tmp_path) == []
    assert served.requests == ["/truncated/dualvit_tiny.pth.tar"]


def test_a_download_of_the_wrong_architecture_is_refused(tiny_entry, served, monkeypatch, tmp_path):
    (served.folder / "wrong").mkdir(exist_ok=True)
    torch.save({"state_dict": timm.create_model("dualvit_nano").state_dict()}, served.folder / "wrong" / "dualvit_tiny.pth.tar")
    monkeypatch.setenv("DUALVIT_WEIGHTS_MIRROR", f"{served.url}/wrong")
    with pytest.raises(CheckpointError, match="does not fit dualvit_nano.*It looks like dualvit_nano"):
        pretrained.fetch("dualvit_tiny")
    assert cached_files(tmp_path) == []


def test_a_cached_file_that_changed_is_refused(tiny_entry, tmp_path):
    path = pretrained.fetch("dualvit_tiny", progress=False)
    with open(path, "r+b") as stored:
        stored.seek(100)
        stored.write(b"\0\1\2")
    with pytest.raises(CheckpointError, match="has changed since it was cached .*delete it and fetch it again"):
        pretrained.fetch("dualvit_tiny")


def test_offline_without_a_cached_file_names_the_file_the_url_and_the_manual_route(tiny_entry, monkeypatch,
                                                                                    served, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as error:
        pretrained.fetch("dualvit_tiny")
    message = str(error.value)
    assert f"not in the cache ({tmp_path / 'cache' / 'dualvit_tiny.pth.tar'})" in message
    assert f"{served.url}/dualvit_tiny.pth.tar" in message and "offline (HF_HUB_OFFLINE is set)" in message
    assert "--weights PATH" in message and "python -m model.pretrained add dualvit_tiny PATH" in message
    assert served.requests == []


def test_the_papers_checkpoint_without_a_source_says_where_the_authors_publish_it(monkeypatch, tmp_path):
    monkeypatch.setenv("DUALVIT_WEIGHTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DUALVIT_WEIGHTS_MIRROR", raising=False)
    with pytest.raises(CheckpointError) as error:
        open_model("dualvit_b_384", device="cpu")
    message = str(error.value)
    assert "dualvit_b_384 (Dual-ViT-B, ImageNet-1k, 384 px, top-1 86.0%) is not in the cache" in message
    assert "https://pan.baidu.com/s/1ujl-tHF5WVJRkb3xRoJoLQ" in message and 'access code "nets"' in message
    assert "python -m model.pretrained add dualvit_b_384 PATH" in message and "DUALVIT_WEIGHTS_MIRROR" in message


@pytest.mark.slow
def test_a_file_downloaded_by_hand_is_added_to_the_cache_and_then_found_by_name(tiny_entry, served, tmp_path,
                                                                                 monkeypatch, official):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = subprocess.run([sys.executable, "-m", "model.pretrained", "add", "dualvit_s", str(served.folder / "dualvit_tiny.pth.tar")],
                            capture_output=True, text=True, cwd=ROOT, env={**os.environ})
    assert result.returncode == 2 and result.stderr.startswith("error: the checkpoint does not fit dualvit_s")
    assert cached_files(tmp_path) == []
    pretrained.add("dualvit_tiny", served.folder / "dualvit_tiny.pth.tar")
    network = load_model("dualvit_tiny")
    with torch.inference_mode():
        official.check_fp32_logits(network(official.input))
    assert served.requests == []


def test_a_url_is_downloaded_into_the_cache_and_opened_like_a_file(served, monkeypatch, tmp_path):
    monkeypatch.setenv("DUALVIT_WEIGHTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    url = f"{served.url}/dualvit_nano_scenes.safetensors"
    bundle = open_model(url, device="cpu")
    shipped = open_model(None, device="cpu")
    assert bundle.weights == url and bundle.class_names == shipped.class_names and bundle.trained
    assert all(torch.equal(a, b) for a, b in zip(bundle.network.state_dict().values(),
                                                 shipped.network.state_dict().values()))
    requests = len(served.requests)
    open_model(url, device="cpu")
    assert len(served.requests) == requests  # from the cache the second time


def test_plain_http_is_refused_beyond_the_loopback_address():
    with pytest.raises(CheckpointError, match="refusing to download weights over plain http from example.com: use https://"):
        pretrained.fetch("http://example.com/dualvit_s.pth.tar")


@pytest.mark.slow
def test_timm_pretrained_takes_the_papers_checkpoint_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DUALVIT_WEIGHTS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(1)
    weights = timm.create_model("dualvit_s").state_dict()
    checkpoint = tmp_path / "downloaded" / "dualvit_s.pth.tar"
    checkpoint.parent.mkdir()
    torch.save({"state_dict_ema": weights}, checkpoint)
    pretrained.add("dualvit_s", checkpoint)
    loaded = timm.create_model("dualvit_s", pretrained=True)
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in weights.items())
    # Fine-tuning: the body comes from the checkpoint, the heads are new.
    tuned = timm.create_model("dualvit_s", pretrained=True, num_classes=10)
    assert tuned.head.weight.shape == (10, 448) and tuned.aux_head.weight.shape == (10, 448)
    body = [key for key in weights if not key.startswith(("head.", "aux_head."))]
    assert len(body) == len(weights) - 4
    assert all(torch.equal(tuned.state_dict()[key], weights[key]) for key in body)
    # The 384 weights are another file, not in this cache.
    with pytest.raises(CheckpointError, match="dualvit_s_384 .* is not in the cache"):
        timm.create_model("dualvit_s.in1k_384", pretrained=True)


@pytest.mark.slow
def test_the_app_reads_its_weights_from_the_environment_and_explains_a_missing_checkpoint(tmp_path):
    env = {**os.environ, "DUALVIT_WEIGHTS": "dualvit_l", "DUALVIT_WEIGHTS_CACHE": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}
    env.pop("DUALVIT_WEIGHTS_MIRROR", None)
    result = subprocess.run([sys.executable, "app.py"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: dualvit_l (Dual-ViT-L, ImageNet-1k, 224 px")
    assert "https://pan.baidu.com/s/1UGI4vVj-Oivv7yR0K2bEXg" in lines[0]


@pytest.mark.slow
def test_an_architecture_without_weights_starts_untrained_and_says_how_to_get_the_papers_weights():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = subprocess.Popen([sys.executable, "app.py", "--model", "dualvit_b", "--port", str(port)], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        warning = app.stderr.readline()  # printed before the server starts
        assert warning.startswith("warning: Untrained weights. dualvit_b runs with randomly initialised weights: ")
        assert "restart with `--weights dualvit_b` (or `dualvit_b_384`)" in warning
        while "Running on local URL" not in (line := app.stdout.readline()):
            assert line, "the app stopped before serving"
        assert app.poll() is None
    finally:
        app.terminate()
        app.wait(timeout=30)
