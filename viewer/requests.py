"""What a user asks of the explorer, checked once, where it enters the service, into frozen requests.

Every value from the page or the API is checked here and nowhere else: a bad one raises
:class:`~viewer.errors.UserError`, whose message says what is accepted. The views and methods behind a request
trust it; anything they raise is a bug, reported as one (``viewer.handlers``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analysis import trace_maths
from analysis.explanations import METHODS, ExplanationMethod
from model.bundle import ModelBundle
from model.map_names import STAGES
from viewer import overlay, render
from viewer.analysed import Analysis
from viewer.errors import UserError
from viewer.inputs import LoadedImage, open_image

RESOLUTIONS: dict[str, str] = {
    "224": "224 × 224 (centre crop, as in evaluation)",
    "384": "384 × 384 (centre crop)",
    "aspect": "whole image, its own aspect (about 224² pixels)",
}
# The Stages tab's choice that stands for no single token.
MEAN_OF_TOKENS = "mean over tokens"


@dataclass(frozen=True)
class AnalyseRequest:
    """An image to analyse, decoded, at one of :data:`RESOLUTIONS`, for a browser session (None: none)."""

    image: LoadedImage
    resolution: str
    session: str | None = None


@dataclass(frozen=True)
class ViewRequest:
    """A view of one analysed image (``key`` in the cache): the block, how its heads are fused and how maps
    are drawn; the token picked, the point clicked (display-image pixels, None: the centre) and the Stages
    tab's token (None: the mean over tokens)."""

    key: str
    analysis: Analysis
    block: trace_maths.BlockRef
    fusion: str
    style: render.Style
    token: int = 0
    point: tuple[float, float] | None = None
    stage_token: int | None = None


@dataclass(frozen=True)
class ExportRequest:
    """The page's download: the views as selected, and the image analysed for Compare (None: none, or it
    expired), whose tour follows the first's in the deck."""

    view: ViewRequest
    compared: Analysis | None = None


@dataclass(frozen=True)
class AtlasRequest:
    """A token of the atlas: its block's label and its number, drawn in ``style``."""

    block: str
    token: int
    style: render.Style


@dataclass(frozen=True)
class TourRequest:
    """The guided tour of one analysed image (``key`` in the cache), drawn in ``style``."""

    key: str
    analysis: Analysis
    style: render.Style


@dataclass(frozen=True)
class ExplainRequest:
    """An explanation of one analysed image (``key`` in the cache): ``target`` is the class index (None for a
    method whose result does not depend on it), ``stage`` the stage it acts at (None where it has none)."""

    key: str
    analysis: Analysis
    method: ExplanationMethod
    target: int | None
    stage: int | None
    style: render.Style

    @property
    def cache_key(self) -> tuple:
        return self.key, self.method.name, self.target, self.stage


def analyse_request(upload: Any, resolution: Any, max_pixels: int, session: str | None = None) -> AnalyseRequest:
    """The upload (a path or the file's bytes) decoded within ``max_pixels``, and the resolution checked."""
    if upload is None:
        raise UserError("Add an image first: upload, paste, use the webcam or pick an example.")
    if not named_in(resolution, RESOLUTIONS):
        raise UserError(f"Unknown resolution {resolution!r}; choose one of {', '.join(RESOLUTIONS)}.")
    return AnalyseRequest(open_image(upload, max_pixels), resolution, session)


def view_request(key: str, analysis: Analysis, block: Any, fusion: Any, scale: Any, colormap: Any, opacity: Any,
                 token: Any = 0, point: Any = None, stage_token: Any = None) -> ViewRequest:
    block_ref = parse_block(analysis, block)
    choices = trace_maths.fusion_choices(analysis.trace, block_ref.stage)
    if fusion not in choices:
        raise UserError(f"Heads must be one of {', '.join(choices)} (those of {block_ref.label}), not {fusion!r}.")
    stage_token = None if stage_token in (None, "", MEAN_OF_TOKENS) else parse_token(analysis, stage_token)
    return ViewRequest(key, analysis, block_ref, fusion, parse_style(scale, colormap, opacity),
                       parse_token(analysis, token), parse_point(point), stage_token)


def atlas_request(blocks: list[str], tokens: int, block: Any, token: Any, style: render.Style) -> AtlasRequest:
    """A token of an atlas holding ``blocks`` of ``tokens`` tokens each."""
    if block not in blocks:
        raise UserError(f"The atlas has no block {block!r}: it holds {', '.join(blocks)}.")
    try:
        number = float(token)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(token, bool) or not number.is_integer() or not 0 <= number < tokens:
        raise UserError(f"Token must be a whole number from 0 to {tokens - 1}.")
    return AtlasRequest(block, int(number), style)


def selection_of(controls: Any) -> dict:
    """What the page's live controls hold: their selection (block, heads, drawing, token, point)."""
    selection = controls.get("selection") if isinstance(controls, dict) else None
    if not isinstance(selection, dict):
        raise UserError("No analysed image in this session (or it expired): analyse an image first.")
    return selection


def named_in(value: Any, names) -> bool:
    """Whether ``value`` is one of ``names`` (a value a client sent may be any JSON, a dict or a list too)."""
    return isinstance(value, str) and value in names


def parse_block(analysis: Analysis, label: Any) -> trace_maths.BlockRef:
    refs = trace_maths.blocks(analysis.trace)
    for ref in refs:
        if ref.label == label:
            return ref
    raise UserError(f"Unknown block {label!r}; choose one of: " + ", ".join(ref.label for ref in refs))


def parse_style(scale: Any, colormap: Any, opacity: Any) -> render.Style:
    if not named_in(scale, render.SCALES):
        raise UserError(f"Colour scale must be one of {', '.join(render.SCALES)}, not {scale!r}.")
    if not named_in(colormap, overlay.COLORMAPS):
        raise UserError(f"Colormap must be one of {', '.join(overlay.COLORMAPS)}, not {colormap!r}.")
    return render.Style(colormap, parse_number(opacity, "Opacity", 0.0, 1.0), scale)


def parse_number(value: Any, name: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not low <= number <= high:
        raise UserError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}.")
    return number


def parse_token(analysis: Analysis, token: Any) -> int:
    count = analysis.trace.num_semantic
    try:
        number = float(token)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(token, bool) or not number.is_integer():
        raise UserError(f"Token must be a whole number from 0 to {count - 1}.")
    if not 0 <= number < count:
        raise UserError(f"Token {int(number)} does not exist: this image has tokens 0 to {count - 1}.")
    return int(number)


def parse_point(point: Any) -> tuple[float, float] | None:
    if point is None:
        return None
    try:
        x, y = (float(value) for value in point)
    except (TypeError, ValueError):
        raise UserError(f"A point is two numbers (x, y) in the picture's pixels, not {point!r}.") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UserError(f"A point's coordinates must be finite numbers, not {point!r}.")
    return x, y


def explain_request(key: str, analysis: Analysis, bundle: ModelBundle, method: Any, class_name: Any, stage: Any,
                    style: render.Style) -> ExplainRequest:
    """The checked request for the weights of ``bundle``."""
    chosen = parse_method(method)
    refusal = chosen.unavailable(bundle.network)
    if refusal:
        raise UserError(f"{chosen.title} cannot explain these weights: {refusal}.")
    class_names = bundle.class_names
    target = None
    if chosen.needs_class:
        if class_name not in class_names:
            raise UserError(f"Unknown class {class_name!r} for these weights.")
        target = class_names.index(class_name)
    return ExplainRequest(key, analysis, chosen, target, parse_stage(stage) if chosen.needs_stage else None, style)


def parse_method(method: Any) -> ExplanationMethod:
    if not named_in(method, METHODS):
        raise UserError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    return METHODS[method]


def parse_stage(stage: Any) -> int:
    try:
        number = float(stage)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(stage, bool) or not number.is_integer() or int(number) not in STAGES:
        raise UserError(f"Stage must be one of {', '.join(map(str, STAGES))}, not {stage!r}.")
    return int(number)
