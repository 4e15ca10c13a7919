"""Metrics that judge any attribution or attention map against true masks or against the model.

Pure numpy: :func:`pointing_game` and :func:`mass_in_mask` against a boolean mask,
:func:`deletion_insertion_auc` against a scoring function as the map's pixels are removed or added.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np


def resize_map(saliency: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) -> ``size`` (H, W) float32 with bilinear interpolation (cv2, half-pixel centres)."""
    values = np.asarray(saliency, np.float32)
    if values.shape == tuple(size):
        return values
    return cv2.resize(values, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def check_same_shape(saliency: np.ndarray, mask: np.ndarray) -> None:
    if np.shape(saliency) != np.shape(mask):
        raise ValueError(f"map {np.shape(saliency)} and mask {np.shape(mask)} differ: resize the map first")


def pointing_game(saliency: np.ndarray, mask: np.ndarray) -> float:
    """1.0 if the map's peak (first one in raster order on ties) lies inside the boolean mask, else 0.0."""
    check_same_shape(saliency, mask)
    peak = int(np.argmax(saliency))
    return float(np.asarray(mask, bool).ravel()[peak])


def mass_in_mask(saliency: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's positive mass inside the boolean mask; 0.0 for a map with none."""
    check_same_shape(saliency, mask)
    positive = np.clip(np.asarray(saliency, np.float64), 0, None)
    total = positive.sum()
    return float(positive[np.asarray(mask, bool)].sum() / total) if total > 0 else 0.0


def pixel_order(saliency: np.ndarray) -> np.ndarray:
    """Flat pixel indices by decreasing value; ties keep raster order."""
    return np.argsort(-np.asarray(saliency, np.float64).ravel(), kind="stable")


def perturbed_images(image: np.ndarray, saliency: np.ndarray, steps: int,
                     baseline: float) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion sequences, each (steps + 1, C, H, W).

    Entry k has the top k / steps of the pixels (by ``saliency``) set to ``baseline`` (deletion),
    or only those pixels kept over a ``baseline`` image (insertion).
    """
    channels, height, width = image.shape
    order = pixel_order(saliency)
    counts = np.round(np.linspace(0, height * width, steps + 1)).astype(int)
    flat = image.reshape(channels, -1)
    deletion = np.repeat(flat[None], steps + 1, axis=0)
    insertion = np.full_like(deletion, baseline)
    for k, count in enumerate(counts):
        chosen = order[:count]
        deletion[k][:, chosen] = baseline
        insertion[k][:, chosen] = flat[:, chosen]
    return deletion.reshape(-1, channels, height, width), insertion.reshape(-1, channels, height, width)


def curve_area(values: np.ndarray) -> float:
    """Trapezoidal area under equally spaced values over [0, 1]."""
    values = np.asarray(values, np.float64)
    return float((values[:-1] + values[1:]).sum() / (2 * (len(values) - 1)))


def deletion_insertion_auc(score: Callable[[np.ndarray], np.ndarray], image: np.ndarray, saliency: np.ndarray,
                           steps: int = 16, baseline: float = 0.0) -> tuple[float, float]:
    """(deletion AUC, insertion AUC) of ``score`` as the map's pixels are removed / added, most salient first.

    ``image`` (C, H, W); ``saliency`` (H, W), already at the image's size; ``score`` maps a batch
    (K, C, H, W) float32 to (K,) (e.g. the probability of the predicted class). Removed pixels
    become ``baseline`` (0 = the mean colour once normalised). A faithful map gives a low
    deletion and a high insertion area; a constant score gives both equal to it.
    """
    image = np.asarray(image, np.float32)
    if np.shape(saliency) != image.shape[1:]:
        raise ValueError(f"map {np.shape(saliency)} must match the image's (H, W) {image.shape[1:]}")
    deletion, insertion = perturbed_images(image, saliency, steps, baseline)
    # Both curves meet at their ends (the whole image, the all-baseline image): score those once.
    scores = np.asarray(score(np.concatenate([deletion, insertion[1:steps]])), np.float64)
    deletion_scores = scores[:steps + 1]
    insertion_scores = np.concatenate([deletion_scores[-1:], scores[steps + 1:], deletion_scores[:1]])
    return curve_area(deletion_scores), curve_area(insertion_scores)
