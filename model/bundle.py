"""A loaded model with everything the explorer needs to present it.

Weights files written by this project (``python -m model.weights convert`` or the training
script) may carry metadata: ``architecture``, ``class_names`` (JSON list), ``multi_label``,
``domain`` (what the weights were trained on), ``trained`` ("false" for weights that were
never trained, e.g. test fixtures), ``token_training`` (a sentence saying how the semantic tokens
were trained, when a loss acted on their maps directly). Official ImageNet checkpoints carry none: they
get timm's ImageNet class names.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timm.data import ImageNetInfo

from model.dualvit import DualViT
from model.preprocess import data_config_for
from model.pretrained import is_url, named
from model.weights import HUB_PREFIX, load_model, safetensors_metadata

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_WEIGHTS = ASSETS / "weights" / "dualvit_nano_scenes.safetensors"
DEFAULT_ARCHITECTURE = "dualvit_nano"


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
    trained: bool = True  # False: randomly initialised weights, whose maps and classes mean nothing
    token_training: str = ""  # how a loss shaped the token maps, if one did: the page says so


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA device is available")
    return torch.device(device)


def class_names_for(network: DualViT, metadata: dict[str, str]) -> tuple[str, ...]:
    if "class_names" in metadata:
        return tuple(json.loads(metadata["class_names"]))
    if network.num_classes == 1000:
        info = ImageNetInfo()
        return tuple(info.index_to_description(i) for i in range(1000))
    return tuple(f"class {i}" for i in range(network.num_classes))


RANDOM_WEIGHTS = "random initialisation"


def random_model(architecture: str) -> tuple[DualViT, dict[str, str]]:
    """``architecture`` with randomly initialised weights (ImageNet's 1000 classes), marked untrained."""
    import timm

    import model as _registry  # noqa: F401  (registers the architectures with timm)

    known = timm.list_models("dualvit_*")
    if architecture.split(".")[0] not in known:
        raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(known)}")
    return timm.create_model(architecture).eval(), {"trained": "false", "domain": "nothing (untrained)"}


def open_model(weights: str | Path | None = None, architecture: str | None = None,
               device: str = "auto") -> ModelBundle:
    """Load ``weights`` strictly, ready for inference.

    No weights: the shipped scene model, or, when another ``architecture`` is named, that
    architecture randomly initialised (the bundle says it is untrained).
    """
    if weights is None and architecture not in (None, DEFAULT_ARCHITECTURE):
        network, metadata = random_model(architecture)
        name = RANDOM_WEIGHTS
    else:
        source = weights if weights is not None else DEFAULT_WEIGHTS
        metadata = safetensors_metadata(source)
        network = load_model(str(source), architecture or metadata.get("architecture"))
        name = str(source)
        if not (name.startswith(HUB_PREFIX) or named(name) or is_url(name)):
            name = Path(name).name
    target = pick_device(device)
    network = network.to(target).eval()
    return ModelBundle(
        network=network,
        architecture=network.pretrained_cfg.get("architecture", type(network).__name__),
        weights=name,
        domain=metadata.get("domain", "ImageNet-1k" if network.num_classes == 1000 else "unknown"),
        class_names=class_names_for(network, metadata),
        multi_label=json.loads(metadata.get("multi_label", "false")),
        data_config=data_config_for(network),
        device=target,
        trained=metadata.get("trained", "true").lower() != "false",
        token_training=metadata.get("token_training", ""),
    )
