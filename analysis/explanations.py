"""Every explanation method of the explorer, declared once: the service, the page's controls, the progress
bar, the cache key, the export and the tests are built from :data:`METHODS`.

Adding a method means one :func:`register` call with its declaration, and its function (in
:mod:`analysis.attribution`, or anywhere). A method computes from the network, the model input and
the trace of the analysed image; it returns an (h, w) map on some grid of the input (``result`` "map")
or one score per semantic token ("token scores").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch

from analysis import attribution
from model.dualvit import DualViT
from model.trace import Trace

Compute = Callable[[DualViT, torch.Tensor, Trace, int, int], np.ndarray]  # (network, images, trace, class, stage)
Passes = Callable[[DualViT, tuple[int, int], Trace], int]  # (network, input (height, width), trace) -> passes


@dataclass(frozen=True)
class ExplanationMethod:
    """One explanation method.

    ``name``: its value in the API and the cache; ``title``: as the page's menu shows it; ``help``: the
    sentences beside its result. ``compute(network, images, trace, class_index, stage)``: the result for one
    image (``images`` (1, 3, H, W) on the network's device). ``passes(network, (H, W), trace)``: how many
    forward passes it makes, for the progress bar. ``needs_class``: its result depends on the class (else
    the class is not asked for); ``needs_stage``: it acts at one stage (asked for, 1 to 4). ``result``:
    a map, or one score per semantic token. ``unavailable(network)``: why the method cannot run on these
    weights ("" when it can).
    """

    name: str
    title: str
    help: str
    compute: Compute
    passes: Passes
    needs_class: bool = True
    needs_stage: bool = False
    result: Literal["map", "token scores"] = "map"
    unavailable: Callable[[DualViT], str] = lambda _network: ""


METHODS: dict[str, ExplanationMethod] = {}


def register(method: ExplanationMethod) -> ExplanationMethod:
    """Add ``method`` to :data:`METHODS` (a page built afterwards offers it); returns it."""
    if method.name in METHODS:
        raise ValueError(f"an explanation method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def unregister(method: ExplanationMethod) -> None:
    """Remove ``method`` from :data:`METHODS` (for tests that register one of their own)."""
    del METHODS[method.name]


# The settings the page runs each method with.
IG_STEPS = 32
SMOOTH_STEPS, SMOOTH_SAMPLES = 16, 8


def batches(items: int, per_pass: int) -> int:
    return -(-items // per_pass)


INTEGRATED_GRADIENTS = register(ExplanationMethod(
    "integrated_gradients", "Integrated Gradients",
    "Integrated Gradients: the class score's gradient with respect to each input pixel, accumulated along a "
    "straight path from a blank image to this one. Bright pixels are the ones whose colours raise the score.",
    compute=lambda network, images, _trace, target, _stage: attribution.integrated_gradients(
        network, images, target, steps=IG_STEPS),
    passes=lambda network, size, _trace: batches(IG_STEPS, attribution.gradient_batch(network, size)),
))

SMOOTHGRAD = register(ExplanationMethod(
    "smoothgrad", "Integrated Gradients + noise (SmoothGrad)",
    "Integrated Gradients averaged over several noisy copies of the image (SmoothGrad), which removes much of "
    "the pixel-level speckle of the plain method.",
    compute=lambda network, images, _trace, target, _stage: attribution.integrated_gradients(
        network, images, target, steps=SMOOTH_STEPS, smooth=True, samples=SMOOTH_SAMPLES),
    passes=lambda network, size, _trace: batches(SMOOTH_STEPS * SMOOTH_SAMPLES,
                                                 attribution.gradient_batch(network, size, SMOOTH_SAMPLES)),
))

GRAD_CAM = register(ExplanationMethod(
    "grad_cam", "Grad-CAM on the stage-4 pixel tokens",
    "Grad-CAM on the last stage's pixel tokens (a 7×7 grid at 224): each feature channel weighted by how much "
    "the class score rises with it. Coarse, but it reads the representation the classifier actually uses.",
    compute=lambda network, images, _trace, target, _stage: attribution.grad_cam(network, images, target),
    passes=lambda _network, _size, _trace: 1,
))

OCCLUSION = register(ExplanationMethod(
    "occlusion", "Occlusion",
    "Occlusion: a grey square slides over the image and the drop of the class score is recorded. Bright means "
    "hiding that region hurts the prediction; no gradients involved, only the model's outputs.",
    compute=lambda network, images, _trace, target, _stage: attribution.occlusion(network, images, target),
    # The unoccluded image first, then the windows in batches.
    passes=lambda network, size, _trace: 1 + batches(attribution.occlusion_windows(size),
                                                     attribution.batch_size(network, size, with_grad=False)),
))

AUX_HEAD = register(ExplanationMethod(
    "aux_head", "Token-labeling head: per-pixel class map",
    "Models trained with token labeling have a second head that scores every final pixel token for every "
    "class; this is that per-pixel score for the chosen class (its maximum is half of the final logit).",
    compute=lambda network, images, _trace, target, _stage: attribution.aux_class_map(network, images, target),
    passes=lambda _network, _size, _trace: 1,
    unavailable=lambda network: "" if network.token_label else (
        "these weights have no token-labeling head (they were built with token_label=False)"),
))

DUAL_ROLLOUT = register(ExplanationMethod(
    "dual_rollout", "Attention rollout through the semantic tokens",
    "Attention rollout adapted to Dual-ViT: the class token's attention is followed backwards through every "
    "block, through the semantic tokens and across the stages, down to the stage-1 pixels. It shows where "
    "the information reaching the classifier came from, with residual connections counted as half.",
    compute=lambda _network, _images, trace, _target, _stage: attribution.dual_rollout(trace),
    passes=lambda _network, _size, _trace: 0,  # it reads the trace
    needs_class=False,
))

TOKEN_IMPORTANCE = register(ExplanationMethod(
    "token_importance", "Semantic-token importance (ablation)",
    "Each semantic token of the chosen stage is removed in turn (set to zero where it enters the stage) and "
    "the drop of the class score is recorded: the tokens the prediction depends on most, with their maps.",
    compute=lambda network, images, _trace, target, stage: attribution.token_importance(
        network, images, target, stage),
    passes=lambda network, size, trace: len(attribution.token_batches(
        trace.num_semantic, attribution.batch_size(network, size, with_grad=False))),
    needs_stage=True,
    result="token scores",
))


def default_method(network: DualViT) -> ExplanationMethod:
    """The token-labeling head's class map where there is one (fast, and the best localiser measured), else
    Grad-CAM."""
    return next(method for method in (AUX_HEAD, GRAD_CAM) if not method.unavailable(network))
