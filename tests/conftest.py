"""Shared fixtures: the official reference outputs copied into tests/data (see its README)."""
from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

import model  # noqa: F401  (registers the architectures)
from model.dualvit import DualViT

# Tests talk only to the local server: no usage statistics sent by Gradio.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DATA = Path(__file__).parent / "data"
OFFICIAL_FIXTURE = DATA / "dualvit_tiny_official.safetensors"
STATE_PREFIX = "state_dict."
MAP_PREFIX = "attn."


class OfficialReference:
    """The official implementation's tiny model: config, weights, input, logits and attention maps."""

    def __init__(self, path: Path = OFFICIAL_FIXTURE):
        with safe_open(str(path), framework="pt") as stored:
            metadata = stored.metadata()
            tensors = {key: stored.get_tensor(key) for key in stored.keys()}
        self.config = json.loads(metadata["config"])
        self.state_dict = {k[len(STATE_PREFIX):]: v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
        self.maps = {k[len(MAP_PREFIX):]: v for k, v in tensors.items() if k.startswith(MAP_PREFIX)}
        self.input = tensors["input"]
        self.logits = tensors["logits"]

    def build(self, **overrides) -> DualViT:
        """Our DualViT with the official config; the registered models use LayerNorm eps 1e-6."""
        config = {**self.config, **overrides}
        return DualViT(**config, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)).eval()

    def model(self) -> DualViT:
        network = self.build()
        network.load_state_dict(self.state_dict)
        return network


@pytest.fixture(scope="session")
def official() -> OfficialReference:
    return OfficialReference()


@pytest.fixture(scope="session")
def official_model(official: OfficialReference) -> DualViT:
    return official.model()


def read_keys_tsv(variant: str) -> dict[str, tuple[int, ...]]:
    """Official state-dict keys and shapes of a registered variant (tests/data/dualvit_*.keys.tsv)."""
    shapes = {}
    for line in (DATA / f"{variant}.keys.tsv").read_text().splitlines()[1:]:
        key, _, shape = line.partition("\t")
        shapes[key] = tuple(int(size) for size in shape.split("x")) if shape else ()
    return shapes


@pytest.fixture(scope="session")
def small_weights(tmp_path_factory) -> Path:
    """An untrained dualvit_nano written like the shipped weights (same loading code as a user's file)."""
    import timm

    from model.scenes import CLASSES
    from model.train import export

    torch.manual_seed(0)
    network = timm.create_model("dualvit_nano", num_classes=len(CLASSES)).eval()
    path = tmp_path_factory.mktemp("weights") / "nano_untrained.safetensors"
    export(network, path, extra={"trained": "false"})
    return path


class RunningApp:
    def __init__(self, url: str, explorer):
        self.url = url
        self.explorer = explorer

    def client(self):
        from gradio_client import Client

        return Client(self.url, verbose=False)


def launch(weights) -> tuple:
    """The real Gradio server, launched as app.py does, on a free local port."""
    from model.allocator import keep_freed_memory
    from model.bundle import open_model
    from viewer.service import Explorer
    from viewer.ui import LAUNCH_OPTIONS, build_demo

    keep_freed_memory()
    explorer = Explorer(open_model(weights, device="cpu"))
    demo = build_demo(explorer)
    demo.queue(default_concurrency_limit=2, max_size=64)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=None, quiet=True, **LAUNCH_OPTIONS)
    return demo, RunningApp(demo.local_url, explorer)


@pytest.fixture(scope="session")
def app_server(small_weights):
    """The app on untrained weights (the same loading code as a user's file)."""
    demo, running = launch(small_weights)
    yield running
    demo.close()


@pytest.fixture(scope="session")
def shipped_app():
    """The app as ``python app.py`` starts it: the shipped scene model."""
    demo, running = launch(None)
    yield running
    demo.close()
