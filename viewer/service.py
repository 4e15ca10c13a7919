"""The explorer's server-side state: one forward pass per image, every view from the cache.

No Gradio here: the UI holds a key per session and asks this service for the analysis.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

from model.allocator import release_freed_memory
from model.bundle import ModelBundle
from model.capture import capture
from model.preprocess import Geometry, preprocess
from model.trace import Trace
from viewer import attribution
from viewer.limits import Limits

RESOLUTIONS: dict[str, str] = {
    "224": "224 × 224 (centre crop, as in evaluation)",
    "384": "384 × 384 (centre crop)",
    "aspect": "whole image, its own aspect (about 224² pixels)",
}
try:  # On a Hugging Face ZeroGPU Space, a GPU is attached only inside functions marked for it.
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(function):
        return function

# Overlays are drawn on a copy of the original no larger than this, so a view change stays fast
# whatever the upload's size.
DISPLAY_SIDE = 768
# Smaller originals are enlarged to this for drawing, so cell borders and outlines stay crisp.
MIN_DISPLAY_SIDE = 512
THUMBNAIL_SIDE = 128


@dataclass(frozen=True)
class Analysis:
    """One analysed image: its trace and the copy of the original that the views draw on."""

    trace: Trace
    inputs: torch.Tensor  # (1, 3, H, W) the model input, on the CPU (for the attribution methods)
    display: np.ndarray  # (H, W, 3) uint8 RGB: the original, downscaled to DISPLAY_SIDE at most
    geometry: Geometry  # model input -> display copy
    thumbnail: np.ndarray  # the original at THUMBNAIL_SIDE at most, for galleries
    thumbnail_geometry: Geometry  # model input -> thumbnail
    resolution: str
    notes: tuple[str, ...]

    def nbytes(self) -> int:
        return (self.trace.nbytes() + self.inputs.numel() * self.inputs.element_size() + self.display.nbytes
                + self.thumbnail.nbytes)


class AnalysisCache:
    """Analyses and the explanations computed on them, least recently used out first: at most
    ``session_analyses`` per session and ``max_bytes`` in all. Safe across request threads."""

    def __init__(self, max_bytes: int, session_analyses: int):
        self.max_bytes = max_bytes
        self.session_analyses = session_analyses
        self._entries: OrderedDict[str, Analysis] = OrderedDict()
        self._sessions: dict[str, str | None] = {}  # analysis key -> the session that made it
        self._explanations: OrderedDict[tuple, np.ndarray] = OrderedDict()  # (key, method, class, stage)
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, analysis: Analysis, session: str | None = None) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._entries[key], self._sessions[key] = analysis, session
            self._bytes += analysis.nbytes()
            if session is not None:
                owned = [owned_key for owned_key, owner in self._sessions.items() if owner == session]
                for stale in owned[:-self.session_analyses]:  # in insertion order: the oldest first
                    self._drop(stale)
            self._shrink()
        return key

    def get(self, key: str | None) -> Analysis:
        with self._lock:
            if not key or key not in self._entries:
                raise LookupError("No analysed image in this session (or it expired): analyse an image first.")
            self._entries.move_to_end(key)
            return self._entries[key]

    def newest(self) -> Analysis:
        with self._lock:
            return next(reversed(self._entries.values()))

    def explanation(self, explanation_key: tuple) -> np.ndarray | None:
        with self._lock:
            result = self._explanations.get(explanation_key)
            if result is not None:
                self._explanations.move_to_end(explanation_key)  # the latest shown, for the export
            return result

    def keep_explanation(self, explanation_key: tuple, result: np.ndarray) -> None:
        with self._lock:
            if explanation_key[0] not in self._entries or explanation_key in self._explanations:
                return  # its analysis left the cache while it was computed, or another request kept it first
            self._explanations[explanation_key] = result
            self._bytes += result.nbytes
            self._shrink()

    def latest_explanation(self, key: str | None) -> tuple[tuple, np.ndarray] | None:
        with self._lock:
            for explanation_key, result in reversed(self._explanations.items()):
                if explanation_key[0] == key:
                    return explanation_key, result
        return None

    @property
    def explanations(self) -> int:
        return len(self._explanations)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def _shrink(self) -> None:
        """Drop the least recently used analyses until the rest fit (the newest one always stays)."""
        while len(self._entries) > 1 and self._bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: str) -> None:
        self._bytes -= self._entries.pop(key).nbytes()
        del self._sessions[key]
        for explanation_key in [item for item in self._explanations if item[0] == key]:
            self._bytes -= self._explanations.pop(explanation_key).nbytes


class Explorer:
    """Runs the model (once per image) and keeps the traces for the views, within the host's limits."""

    def __init__(self, bundle: ModelBundle, limits: Limits = Limits()):
        self.bundle = bundle
        self.limits = limits
        self.cache = AnalysisCache(limits.cache_bytes, limits.session_analyses)
        self.forward_passes = 0
        self._model_lock = threading.Lock()

    def analyse(self, image: Image.Image, resolution: str = "224", notes: tuple[str, ...] = (),
                session: str | None = None) -> str:
        """Capture every attention map of ``image``; returns the cache key of the analysis. A ``session``
        keeps at most the host's number of analyses: its older ones leave the cache."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"Unknown resolution {resolution!r}; choose one of {', '.join(RESOLUTIONS)}.")
        mode, size = ("aspect", 224) if resolution == "aspect" else ("crop", int(resolution))
        images, geometry = preprocess(image, self.bundle.data_config, size=size, mode=mode)
        with self._model_lock:
            self.forward_passes += 1
            trace = run_capture(self.bundle, images, geometry)
        display, thumbnail = display_copy(image, DISPLAY_SIDE, MIN_DISPLAY_SIDE), display_copy(image, THUMBNAIL_SIDE)
        analysis = Analysis(trace, images, np.asarray(display), geometry.for_display(display.size),
                            np.asarray(thumbnail), geometry.for_display(thumbnail.size), resolution, notes)
        return self.cache.put(analysis, session)

    def get(self, key: str | None) -> Analysis:
        return self.cache.get(key)

    def latest_explanation(self, key: str | None) -> tuple[str, int, int, np.ndarray] | None:
        """(method, class, stage, result) of the last explanation computed or shown for this analysis, if any."""
        latest = self.cache.latest_explanation(key)
        if latest is None:
            return None
        (_, method, target, stage), result = latest
        return method, target, stage, result

    def explain(self, key: str | None, method: str, target: int, stage: int = 2,
                on_pass: Callable[[int, int], None] | None = None) -> np.ndarray:
        """An attribution map (or token scores) for ``method``, computed once per image, method and class.

        ``on_pass(done, expected)`` is called as each of the method's forward passes starts.
        """
        analysis = self.get(key)
        if method not in EXPLANATION_METHODS:
            raise ValueError(f"Unknown method {method!r}; choose one of {', '.join(EXPLANATION_METHODS)}.")
        if not 0 <= target < len(self.bundle.class_names):
            raise ValueError(f"Class index {target} does not exist (0 to {len(self.bundle.class_names) - 1}).")
        if not 1 <= stage <= 4:
            raise ValueError(f"Stage {stage} does not exist: Dual-ViT has stages 1 to 4.")
        explanation_key = (key, method, target, stage if method == "token_importance" else 2)
        cached = self.cache.explanation(explanation_key)
        if cached is not None:
            return cached
        expected = expected_passes(self.bundle, method, analysis)
        report = (lambda _pass, done: on_pass(done, expected)) if on_pass else (lambda _pass, done: None)
        with self._model_lock, attribution.recording_passes(self.bundle.network, report):
            result = run_explanation(self.bundle, analysis, method, target, stage)
            release_freed_memory()  # an explanation's gradients and batches, gigabytes at large inputs
        self.cache.keep_explanation(explanation_key, result)
        return result


@on_gpu
def run_capture(bundle: ModelBundle, images: torch.Tensor, geometry: Geometry) -> Trace:
    """The one forward pass of an analysis (on the GPU when there is one)."""
    with torch.inference_mode():
        # The maps shown are the very probabilities the prediction was made with.
        _, trace = capture(bundle.network, images.to(bundle.device), class_names=bundle.class_names,
                           multi_label=bundle.multi_label, geometries=[geometry])
    return trace


# The settings the page runs each method with.
IG_STEPS = 32
SMOOTH_STEPS, SMOOTH_SAMPLES = 16, 8
EXPLANATION_METHODS: dict[str, str] = {
    "integrated_gradients": "Integrated Gradients",
    "smoothgrad": "Integrated Gradients + noise (SmoothGrad)",
    "grad_cam": "Grad-CAM on the stage-4 pixel tokens",
    "occlusion": "Occlusion",
    "aux_head": "Token-labeling head: per-pixel class map",
    "dual_rollout": "Attention rollout through the semantic tokens",
    "token_importance": "Semantic-token importance (ablation)",
}


@on_gpu
def run_explanation(bundle: ModelBundle, analysis: Analysis, method: str, target: int, stage: int) -> np.ndarray:
    """The map of ``method`` for class ``target`` (token scores (M,) for token_importance)."""
    if method == "dual_rollout":
        return attribution.dual_rollout(analysis.trace)
    network, images = bundle.network, analysis.inputs.to(bundle.device)
    if method == "integrated_gradients":
        return attribution.integrated_gradients(network, images, target, steps=IG_STEPS)
    if method == "smoothgrad":
        return attribution.integrated_gradients(network, images, target, steps=SMOOTH_STEPS, smooth=True,
                                            samples=SMOOTH_SAMPLES)
    if method == "grad_cam":
        return attribution.grad_cam(network, images, target)
    if method == "occlusion":
        return attribution.occlusion(network, images, target)
    if method == "aux_head":
        return attribution.aux_class_map(network, images, target)
    return attribution.token_importance(network, images, target, stage)


def expected_passes(bundle: ModelBundle, method: str, analysis: Analysis) -> int:
    """How many forward passes ``method`` makes on this analysis's input (for a progress bar)."""
    size, network = analysis.inputs.shape[-2:], bundle.network
    if method == "dual_rollout":
        return 0  # it reads the trace
    if method == "integrated_gradients":
        return -(-IG_STEPS // attribution.gradient_batch(network, size))
    if method == "smoothgrad":
        return -(-SMOOTH_STEPS * SMOOTH_SAMPLES // attribution.gradient_batch(network, size, SMOOTH_SAMPLES))
    if method == "occlusion":
        windows = attribution.occlusion_windows(size)
        return 1 + -(-windows // attribution.batch_size(network, size, with_grad=False))
    if method == "token_importance":
        per_pass = attribution.batch_size(network, size, with_grad=False)
        return len(attribution.token_batches(analysis.trace.num_semantic, per_pass))
    return 1


def display_copy(image: Image.Image, side: int, min_side: int = 0) -> Image.Image:
    """``image`` scaled so that its longer side is at most ``side`` (and, with ``min_side``, at least that)."""
    longest = max(image.size)
    if min_side <= longest <= side:
        return image
    scale = (side if longest > side else min_side) / longest
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.BILINEAR if scale < 1 else Image.BICUBIC)
