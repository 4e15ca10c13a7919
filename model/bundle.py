"""A loaded model with everything the explorer needs to present it.

Weights files written by this project (``python -m model.weights convert`` or the training
script) may carry metadata: ``architecture``, ``class_names`` (JSON list), ``multi_label``,
``domain`` (what the weights were trained on). Official ImageNet checkpoints carry none: they
get timm's ImageNet class names.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import torch
from timm.data import ImageNetInfo

from model.dualvit import DualViT
from model.preprocess import data_config_for
from model.weights import HUB_PREFIX, load_model, resolve_source

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_WEIGHTS = ASSETS / "weights" / "dualvit_nano_scenes.safetensors"


@dataclass(frozen=True)
class ModelBundle:
    network: DualViT
    architecture: str
    weights: str
    domain: str
    class_names: tuple[str, ...]
    multi_label: bool
    data_config: dict[str, Any]
    device: torch.device


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(device)


def weights_metadata(source: Any) -> dict[str, str]:
    """The metadata of a safetensors source (empty for anything else)."""
    if isinstance(source, (str, Path)) and str(source).endswith(".safetensors"):
        with safetensors.safe_open(str(resolve_source(source)), framework="pt") as stored:
            return dict(stored.metadata() or {})
    return {}


def class_names_for(network: DualViT, metadata: dict[str, str]) -> tuple[str, ...]:
    if "class_names" in metadata:
        return tuple(json.loads(metadata["class_names"]))
    if network.num_classes == 1000:
        info = ImageNetInfo()
        return tuple(info.index_to_description(i) for i in range(1000))
    return tuple(f"class {i}" for i in range(network.num_classes))


def open_model(weights: str | Path | None = None, architecture: str | None = None,
               device: str = "auto") -> ModelBundle:
    """Load ``weights`` (default: the shipped scene model) strictly, ready for inference."""
    source = weights if weights is not None else DEFAULT_WEIGHTS
    metadata = weights_metadata(source)
    network = load_model(str(source), architecture or metadata.get("architecture"))
    target = pick_device(device)
    network = network.to(target).eval()
    name = str(source)
    if not name.startswith(HUB_PREFIX):
        name = Path(name).name
    return ModelBundle(
        network=network,
        architecture=network.pretrained_cfg.get("architecture", type(network).__name__),
        weights=name,
        domain=metadata.get("domain", "ImageNet-1k" if network.num_classes == 1000 else "unknown"),
        class_names=class_names_for(network, metadata),
        multi_label=json.loads(metadata.get("multi_label", "false")),
        data_config=data_config_for(network),
        device=target,
    )
