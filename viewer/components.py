"""Gradio components of the page that check their own API values: a bad value gets a sentence saying what
is accepted, where the stock component would give the client a bare "Error"."""
from __future__ import annotations

import base64
import math
from typing import Any

import gradio as gr
from gradio.components.label import LabelData
from gradio.data_classes import ImageData
from pydantic import model_validator


class UploadData(ImageData):
    """An upload as sent through the API. A value that is not a file at all (a word, a number) becomes an
    empty one here, so that the component's ``preprocess`` answers it with a sentence: Gradio reports a
    failure of this validation only as a bare error."""

    @model_validator(mode="before")
    @classmethod
    def not_a_file_is_empty(cls, value: Any) -> Any:
        return value if isinstance(value, (dict, ImageData)) else {}


class UploadedImage(gr.Image):
    """gr.Image that hands the upload over undecoded: decoding and its error messages are ours."""

    is_template = True  # rendered by the ordinary Image front end
    data_model = UploadData

    def preprocess(self, payload):  # noqa: D102
        if payload is None:
            return None
        if payload.url and payload.url.startswith("data:"):
            return base64.b64decode(payload.url.split(",", 1)[1])
        if not payload.path:
            raise gr.Error("The image must be sent as a file (upload it first; see the API page), "
                           "not as a bare value.", print_exception=False)
        return payload.path


class CheckedSlider(gr.Slider):
    """gr.Slider whose bad API values (None, "", words, NaN, out of range) get a sentence, not a bare error."""

    is_template = True

    def preprocess(self, payload: Any) -> float:  # noqa: D102
        try:
            value = float(payload)
        except (TypeError, ValueError):
            value = math.nan
        if not self.minimum <= value <= self.maximum:
            raise gr.Error(f"{self.label} must be a number from {self.minimum:g} to {self.maximum:g}, "
                           f"not {payload!r}.", print_exception=False)
        return value


class TokenNumber(gr.Number):
    """gr.Number that hands any value to the page, which says what a token number must be (Page.token)."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:  # noqa: D102
        return payload


class PredictionLabel(gr.Label):
    """gr.Label whose heading is given, not taken from the top class: its value is
    ``{"heading": ..., "confidences": {class: probability}}``. The stock heading is always the top class,
    which on a photo with none of the model's classes reads as the answer the page denies."""

    is_template = True

    def postprocess(self, value: dict[str, Any] | None) -> LabelData | dict:  # noqa: D102
        if not value:
            return {}
        ranked = super().postprocess(value["confidences"])
        return LabelData(label=value["heading"], confidences=ranked.confidences)
