"""The metrics that judge a map, on constructed maps and masks whose scores are known by construction."""
from __future__ import annotations

from typing import Callable

import numpy as np
import pytest

from analysis import metrics


def square_mask(shape: tuple[int, int] = (16, 16)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[4:10, 6:12] = True
    return mask


def test_a_perfect_map_scores_one_and_a_reversed_map_zero():
    mask = square_mask()
    perfect = mask.astype(np.float32)
    reversed_map = 1.0 - perfect
    assert metrics.pointing_game(perfect, mask) == 1.0
    assert metrics.mass_in_mask(perfect, mask) == 1.0
    assert metrics.pointing_game(reversed_map, mask) == 0.0
    assert metrics.mass_in_mask(reversed_map, mask) == 0.0
    assert metrics.mass_in_mask(-perfect, mask) == 0.0  # no positive mass at all


def test_mass_in_mask_counts_only_positive_mass():
    mask = square_mask()
    values = np.where(mask, 1.0, -5.0).astype(np.float32)
    values[0, 0] = 1.0
    assert metrics.mass_in_mask(values, mask) == pytest.approx(36 / 37)


def mask_share_score(mask: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A model that is exactly as confident as the share of the masked pixels it can see (1 = image, 0 = removed)."""
    def score(batch: np.ndarray) -> np.ndarray:
        return batch[:, 0][:, mask].mean(axis=1)
    return score


def test_deletion_and_insertion_rank_a_perfect_map_above_a_reversed_one():
    mask = square_mask()
    image = np.ones((3, 16, 16), np.float32)
    perfect = mask.astype(np.float32) + np.linspace(0, 0.1, mask.size).reshape(mask.shape)
    reversed_map = -perfect
    score = mask_share_score(mask)
    perfect_deletion, perfect_insertion = metrics.deletion_insertion_auc(score, image, perfect, steps=16)
    reversed_deletion, reversed_insertion = metrics.deletion_insertion_auc(score, image, reversed_map, steps=16)
    assert perfect_deletion < reversed_deletion
    assert perfect_insertion > reversed_insertion
    assert perfect_deletion < 0.2 and perfect_insertion > 0.8


def test_a_constant_score_has_that_area():
    image = np.random.default_rng(0).normal(size=(3, 8, 8)).astype(np.float32)
    saliency = np.random.default_rng(1).random((8, 8))
    deletion, insertion = metrics.deletion_insertion_auc(lambda batch: np.full(len(batch), 0.37), image, saliency)
    assert deletion == pytest.approx(0.37) and insertion == pytest.approx(0.37)


def test_perturbed_images_start_and_end_at_the_image_and_the_baseline():
    image = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4) + 1
    deletion, insertion = metrics.perturbed_images(image, np.arange(16.0).reshape(4, 4), steps=4, baseline=0.0)
    assert deletion.shape == insertion.shape == (5, 2, 4, 4)
    np.testing.assert_array_equal(deletion[0], image)
    np.testing.assert_array_equal(insertion[-1], image)
    assert not deletion[-1].any() and not insertion[0].any()
    assert (deletion[1][:, 3] == 0).all() and (deletion[1][:, :3] != 0).all()  # the highest values go first


def test_resize_map_is_bilinear_to_the_asked_size():
    resized = metrics.resize_map(np.array([[0.0, 1.0]], np.float32), (2, 4))
    assert resized.shape == (2, 4)
    np.testing.assert_allclose(resized[0], [0.0, 0.25, 0.75, 1.0])


def test_auc_scores_every_point_of_both_curves():
    rng = np.random.default_rng(2)
    image, saliency = rng.normal(size=(3, 8, 8)).astype(np.float32), rng.random((8, 8))
    def score(batch: np.ndarray) -> np.ndarray:
        return batch.reshape(len(batch), -1).mean(axis=1)
    deletion, insertion = metrics.perturbed_images(image, saliency, steps=5, baseline=0.0)
    expected = metrics.curve_area(score(deletion)), metrics.curve_area(score(insertion))
    assert metrics.deletion_insertion_auc(score, image, saliency, steps=5) == pytest.approx(expected)
