"""Dual-ViT variants registered with timm: ``timm.create_model("dualvit_s", ...)`` after ``import model``.

The pretrained configs match the official evaluation: bicubic resize of the short side to 256 and a
224 centre crop (crop_pct 0.875), ImageNet mean/std; the 384 fine-tuned weights use the whole
image at 384. ``pretrained=True`` takes the paper's ImageNet checkpoints from the user's cache,
fetching them there the first time where a source is known (model/pretrained.py).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model

from model.dualvit import DualViT
from model.weights import checkpoint_filter_fn

# The classes of the shipped model, as its weights' metadata names them; the scene generator
# (training/scenes.py) draws these shapes.
SCENE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross", "heart", "crescent",
                                  "arrow", "letter_A")

SCENE_WEIGHTS = Path(__file__).resolve().parents[1] / "assets" / "weights" / "dualvit_nano_scenes.safetensors"

OFFICIAL_NORM = partial(nn.LayerNorm, eps=1e-6)


def _cfg(**overrides: Any) -> dict[str, Any]:
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.875,
        "crop_mode": "center", "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stages.0.patch_embed.convs.0", "classifier": "head",
        "license": "apache-2.0", "paper_ids": "arXiv:2207.04976", **overrides,
    }


default_cfgs = generate_default_cfgs({
    "dualvit_s.in1k": _cfg(),
    "dualvit_s.in1k_384": _cfg(input_size=(3, 384, 384), crop_pct=1.0),
    "dualvit_b.in1k": _cfg(),
    "dualvit_b.in1k_384": _cfg(input_size=(3, 384, 384), crop_pct=1.0),
    "dualvit_l.in1k": _cfg(),
    "dualvit_l.in1k_384": _cfg(input_size=(3, 384, 384), crop_pct=1.0),
    # Our small model, trained on generated scenes (training/train.py); pretrained=True loads the
    # shipped weights. Scenes are 224x224 already: no crop.
    "dualvit_nano.scenes": _cfg(file=str(SCENE_WEIGHTS), num_classes=len(SCENE_CLASSES), crop_pct=1.0,
                                label_names=SCENE_CLASSES, license="same as this project"),
})

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # About 1.6 M parameters: trainable from scratch on two CPU cores (training/train.py).
    "dualvit_nano": dict(stem_hidden_dim=16, embed_dims=(32, 64, 128, 160), num_heads=(1, 2, 4, 5),
                         mlp_ratios=(4, 4, 4, 3, 2), depths=(1, 1, 2, 1)),
    "dualvit_s": dict(stem_hidden_dim=32, embed_dims=(64, 128, 320, 448), num_heads=(2, 4, 10, 14),
                      mlp_ratios=(8, 8, 4, 3, 2), depths=(3, 4, 6, 3)),
    "dualvit_b": dict(stem_hidden_dim=64, embed_dims=(64, 128, 320, 512), num_heads=(2, 4, 10, 16),
                      mlp_ratios=(8, 8, 4, 3, 2), depths=(3, 4, 15, 3)),
    "dualvit_l": dict(stem_hidden_dim=64, embed_dims=(96, 192, 384, 512), num_heads=(3, 6, 12, 16),
                      mlp_ratios=(8, 8, 4, 3, 2), depths=(3, 6, 21, 3)),
}


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> DualViT:
    architecture = {**ARCHITECTURES[variant.split(".")[0]], "norm_layer": OFFICIAL_NORM, **kwargs}
    tag = kwargs.get("pretrained_cfg")
    own_file = "file" in (kwargs.get("pretrained_cfg_overlay") or {})  # timm's way to a local checkpoint
    if pretrained and variant != "dualvit_nano" and not own_file and (tag is None or isinstance(tag, str)):
        # The paper's checkpoints come from the user's cache (fetched there the first time): see model/pretrained.py.
        from model import pretrained as named_weights

        name = variant if tag in (None, "in1k") else f"{variant}_384" if tag == "in1k_384" else None
        if name is not None:
            overlay = {**(architecture.pop("pretrained_cfg_overlay", None) or {}), "file": str(named_weights.fetch(name))}
            architecture["pretrained_cfg_overlay"] = overlay
    return build_model_with_cfg(DualViT, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **architecture)


@register_model
def dualvit_nano(pretrained: bool = False, **kwargs: Any) -> DualViT:
    return _create("dualvit_nano", pretrained, **kwargs)


@register_model
def dualvit_s(pretrained: bool = False, **kwargs: Any) -> DualViT:
    return _create("dualvit_s", pretrained, **kwargs)


@register_model
def dualvit_b(pretrained: bool = False, **kwargs: Any) -> DualViT:
    return _create("dualvit_b", pretrained, **kwargs)


@register_model
def dualvit_l(pretrained: bool = False, **kwargs: Any) -> DualViT:
    return _create("dualvit_l", pretrained, **kwargs)
