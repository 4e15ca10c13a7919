"""The explorer's server-side state: one forward pass per image, every view from the cache.

No Gradio here: the UI holds a key per session and asks this service for the analysis.
"""
from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from functools import cached_property
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from analysis import attribution, trace_maths
from model.allocator import release_freed_memory
from model.bundle import ModelBundle
from model.capture import capture
from model.preprocess import Geometry, preprocess
from model.trace import Trace
from viewer import payload, requests
from viewer.analysed import DISPLAY_SIDE, MIN_DISPLAY_SIDE, THUMBNAIL_SIDE, Analysis, display_copy
from viewer import atlas_view
from viewer.atlas_view import Atlas
from viewer.errors import UserError
from viewer.limits import Limits
from viewer.render import DEFAULT_OPACITY, DEFAULT_SCALE
from viewer.requests import AtlasRequest, ExplainRequest, ExportRequest, TourRequest, ViewRequest

try:  # On a Hugging Face ZeroGPU Space, a GPU is attached only inside functions marked for it.
    import spaces

    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(function):
        return function


class AnalysisCache:
    """Analyses and the explanations computed on them, least recently used out first: at most
    ``session_analyses`` per session and ``max_bytes`` in all. Safe across request threads."""

    def __init__(self, max_bytes: int, session_analyses: int):
        self.max_bytes = max_bytes
        self.session_analyses = session_analyses
        self._entries: OrderedDict[str, Analysis] = OrderedDict()
        self._sessions: dict[str, str | None] = {}  # analysis key -> the session that made it
        self._explanations: OrderedDict[tuple, np.ndarray] = OrderedDict()  # ExplainRequest.cache_key
        self._payloads: dict[str, bytes] = {}  # what the browser draws of an analysis (viewer.payload)
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
                raise UserError("No analysed image in this session (or it expired): analyse an image first.")
            self._entries.move_to_end(key)
            return self._entries[key]

    def holds(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def latest_of(self, session: str | None) -> str | None:
        """The key of the latest analysis a session made (None: none left in the cache)."""
        with self._lock:
            owned = [key for key, owner in self._sessions.items() if owner == session]
        return owned[-1] if owned else None

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

    def payload(self, key: str, build: Callable[[], bytes]) -> bytes:
        """The analysis's payload, built on the first request and kept beside it (two racing requests may both
        build it; one is kept)."""
        with self._lock:
            found = self._payloads.get(key)
        if found is not None:
            return found
        built = build()
        with self._lock:
            if key in self._entries and key not in self._payloads:
                self._payloads[key] = built
                self._bytes += len(built)
                self._shrink()
        return built

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
        self._bytes -= len(self._payloads.pop(key, b""))
        for explanation_key in [item for item in self._explanations if item[0] == key]:
            self._bytes -= self._explanations.pop(explanation_key).nbytes


class Explorer:
    """Runs the model (once per image) and keeps the traces for the views, within the host's limits.

    Requests enter here: :meth:`view_request` and :meth:`explain_request` check what a user sent and raise
    :class:`~viewer.errors.UserError` for what they can mend."""

    def __init__(self, bundle: ModelBundle, limits: Limits = Limits(), atlas: Atlas | None = None):
        self.bundle = bundle
        self.limits = limits
        self.atlas = atlas  # what the tokens do across a dataset (viewer.atlas_view), when one was given
        self.cache = AnalysisCache(limits.cache_bytes, limits.session_analyses)
        self.forward_passes = 0
        self._model_lock = threading.Lock()
        # The maps the browser will fetch, built while the page receives the analysis's answer.
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explorer-payload")
        self._building: dict[str, Future] = {}

    def analyse(self, image: Image.Image, resolution: str = "224", notes: tuple[str, ...] = (),
                session: str | None = None, name: str = "image") -> str:
        """Capture every attention map of ``image`` at ``resolution`` (one of
        :data:`~viewer.requests.RESOLUTIONS`); returns the cache key of the analysis. A ``session`` keeps at
        most the host's number of analyses: its older ones leave the cache."""
        mode, size = ("aspect", 224) if resolution == "aspect" else ("crop", int(resolution))
        images, geometry = preprocess(image, self.bundle.data_config, size=size, mode=mode)
        with self._model_lock:
            self.forward_passes += 1
            trace = run_capture(self.bundle, images, geometry)
        display, thumbnail = display_copy(image, DISPLAY_SIDE, MIN_DISPLAY_SIDE), display_copy(image, THUMBNAIL_SIDE)
        analysis = Analysis(trace, images, np.asarray(display), geometry.for_display(display.size),
                            np.asarray(thumbnail), geometry.for_display(thumbnail.size), resolution, notes,
                            name)
        return self.cache.put(analysis, session)

    def get(self, key: str | None) -> Analysis:
        return self.cache.get(key)

    def view_request(self, key: str | None, block: Any, fusion: Any, scale: Any, colormap: Any, opacity: Any,
                     **selection: Any) -> ViewRequest:
        """A view of the analysis ``key``, checked (``selection``: see :func:`viewer.requests.view_request`)."""
        return requests.view_request(key, self.get(key), block, fusion, scale, colormap, opacity, **selection)

    def payload(self, key: str | None) -> bytes:
        """Everything the browser draws of the analysis ``key`` (:func:`viewer.payload.analysis_payload`): built
        once, kept beside the analysis; waits for a build :meth:`prepare_payload` started."""
        analysis = self.get(key)
        started = self._building.pop(key, None)
        if started is not None:
            started.result()
        return self.cache.payload(key, lambda: payload.analysis_payload(analysis))

    def prepare_payload(self, key: str) -> None:
        """Start building the analysis's payload now, for the page that will fetch it in a moment."""
        for finished in [name for name, future in self._building.items() if future.done()]:
            self._building.pop(finished, None)
        analysis = self.get(key)
        self._building[key] = self._builder.submit(self.cache.payload, key, lambda: payload.analysis_payload(analysis))

    def block_payload(self, key: str | None, stage: int, block: int, fusion: Any) -> bytes:
        """One block's maps for another fusion of its heads, checked as a view of it."""
        analysis = self.get(key)
        label = trace_maths.BlockRef(stage, block, "dual").label
        request = self.view_request(key, label, fusion, DEFAULT_SCALE, "inferno", DEFAULT_OPACITY)
        return payload.block_payload(analysis, request.block, request.fusion)

    def selection_request(self, key: str | None, controls: Any) -> ViewRequest:
        """The view the page's live controls hold (their value: ``{"selection": {...}}``), checked."""
        selection = requests.selection_of(controls)
        return self.view_request(key, selection.get("block"), selection.get("fusion"), selection.get("scale"),
                                 selection.get("colormap"), selection.get("opacity"), token=selection.get("token", 0),
                                 point=selection.get("point"), stage_token=selection.get("stageToken"))

    def export_request(self, key: str | None, controls: Any, second_key: str | None = None) -> ExportRequest:
        """The download of the views the controls hold, with the compared image where one is still analysed."""
        compared = self.cache.get(second_key) if second_key and self.cache.holds(second_key) else None
        return ExportRequest(self.selection_request(key, controls), compared)

    @cached_property
    def weights_sha256(self) -> str:
        from atlas.build import weights_hash

        return weights_hash(self.bundle.network)

    def atlas_citation(self) -> Callable[[str, int], str] | None:
        """What the atlas says of a token, for the tour, where the atlas was built with these very weights."""
        if self.atlas is None or not self.atlas.describes(self.weights_sha256):
            return None
        return atlas_view.citation(self.atlas)

    def atlas_request(self, block: Any, token: Any, controls: Any) -> AtlasRequest:
        """A token of the atlas (``block``, ``token``; None: the live selection's), drawn in the controls' style."""
        if self.atlas is None:
            raise UserError("No atlas is loaded: build one with `python -m atlas build SOURCE --out DIR` and start "
                            "the app with `--atlas DIR`.")
        selection = controls.get("selection", {}) if isinstance(controls, dict) else {}
        style = requests.parse_style(DEFAULT_SCALE, selection.get("colormap", "inferno"),
                                     selection.get("opacity", DEFAULT_OPACITY))
        block = block if block is not None else selection.get("block")
        token = token if token is not None else selection.get("token", 0)
        return requests.atlas_request(self.atlas.blocks, self.atlas.token_count(self.atlas.blocks[0]), block, token,
                                      style)

    def tour_request(self, key: str | None, scale: Any, colormap: Any, opacity: Any) -> TourRequest:
        return TourRequest(key, self.get(key), requests.parse_style(scale, colormap, opacity))

    def explain_request(self, key: str | None, method: Any, class_name: Any = None, stage: Any = None,
                        scale: Any = DEFAULT_SCALE, colormap: Any = "inferno",
                        opacity: Any = DEFAULT_OPACITY) -> ExplainRequest:
        """An explanation of the analysis ``key`` for the class named ``class_name``, checked."""
        return requests.explain_request(key, self.get(key), self.bundle, method, class_name, stage,
                                        requests.parse_style(scale, colormap, opacity))

    def latest_explanation(self, key: str | None) -> tuple[tuple, np.ndarray] | None:
        """(cache key, result) of the last explanation computed or shown for this analysis, if any."""
        return self.cache.latest_explanation(key)

    def explain(self, request: ExplainRequest, on_pass: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The method's result (a map, or token scores), computed once per image, method, class and stage.

        ``on_pass(done, expected)`` is called as each of the method's forward passes starts.
        """
        cached = self.cache.explanation(request.cache_key)
        if cached is not None:
            return cached
        analysis = request.analysis
        expected = request.method.passes(self.bundle.network, tuple(analysis.inputs.shape[-2:]), analysis.trace)
        report = (lambda _pass, done: on_pass(done, expected)) if on_pass else (lambda _pass, done: None)
        with self._model_lock, attribution.recording_passes(self.bundle.network, report):
            result = run_explanation(self.bundle, request)
            release_freed_memory()  # an explanation's gradients and batches, gigabytes at large inputs
        self.cache.keep_explanation(request.cache_key, result)
        return result


@on_gpu
def run_capture(bundle: ModelBundle, images: torch.Tensor, geometry: Geometry) -> Trace:
    """The one forward pass of an analysis (on the GPU when there is one)."""
    with torch.inference_mode():
        # The maps shown are the very probabilities the prediction was made with.
        _, trace = capture(bundle.network, images.to(bundle.device), class_names=bundle.class_names,
                           multi_label=bundle.multi_label, geometries=[geometry])
    return trace


@on_gpu
def run_explanation(bundle: ModelBundle, request: ExplainRequest) -> np.ndarray:
    """The request's method run on its image (on the GPU when there is one)."""
    analysis = request.analysis
    return request.method.compute(bundle.network, analysis.inputs.to(bundle.device), analysis.trace,
                                  request.target, request.stage)
