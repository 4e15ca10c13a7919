"""Natural photographs nobody trained on, to check that the scene model says "none of my classes".

The set: scikit-image's bundled colour photographs (``skimage.data``; files shipped with the
package, so no download) and the photos among the app's examples. scikit-image's colour
*graphics* (``colorwheel``, ``logo``) are left out: they are drawings, not photographs, and a
colour wheel is a disc. ``stereo_motorcycle`` gives its left view only (the right one is the same
scene). Each photo goes through the app's own preprocessing (``model.preprocess``, the weights'
data config), so the figure is what a user of the page sees.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from model.bundle import ModelBundle
from model.capture import probabilities_of
from model.preprocess import preprocess

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
SKIMAGE_COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry",
                         "retina", "rocket", "stereo_motorcycle")
PRESENT = 0.5  # a class counts as answered above this probability (the page's own threshold)


@dataclass(frozen=True)
class PhotoAnswer:
    photo: str
    top_class: str
    top_probability: float

    @property
    def says_none(self) -> bool:
        return self.top_probability <= PRESENT


def skimage_photos() -> dict[str, Callable[[], Image.Image]]:
    import skimage.data  # a development dependency: only this check needs it

    def loader(name: str) -> Callable[[], Image.Image]:
        def load() -> Image.Image:
            pixels = getattr(skimage.data, name)()
            return Image.fromarray(pixels[0] if isinstance(pixels, tuple) else pixels)
        return load

    return {f"skimage.{name}": loader(name) for name in SKIMAGE_COLOUR_PHOTOS}


def example_photos() -> dict[str, Callable[[], Image.Image]]:
    return {f"examples/{path.name}": (lambda path=path: Image.open(path))
            for path in sorted(EXAMPLES.glob("*.jpg"))}


def answers(bundle: ModelBundle, photos: dict[str, Callable[[], Image.Image]]) -> list[PhotoAnswer]:
    results = []
    for name, load in photos.items():
        images, _ = preprocess(load(), bundle.data_config)
        with torch.inference_mode():
            logits = bundle.network(images.to(bundle.device))
        probabilities = probabilities_of(logits, bundle.multi_label)[0].cpu().numpy()
        top = int(np.argmax(probabilities))
        results.append(PhotoAnswer(name, bundle.class_names[top], float(probabilities[top])))
    return results


def share_saying_none(results: list[PhotoAnswer]) -> float:
    return float(np.mean([result.says_none for result in results]))
