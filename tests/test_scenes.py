import numpy as np
import pytest
import torch

from training.scenes import (
    CLASSES,
    HELDOUT_SEEDS,
    MEAN,
    STD,
    TRAIN_SEEDS,
    Scene,
    SceneDataset,
    object_coverage,
    heldout_seed,
    make_scene,
    patch_coverage,
    patch_targets,
)

MANY_SEEDS = range(200)


@pytest.fixture(scope="module")
def many_scenes() -> list[Scene]:
    return [make_scene(seed) for seed in MANY_SEEDS]


def scene_from_masks(masks: list[np.ndarray], classes: list[int]) -> Scene:
    """A hand-built scene: only masks and classes matter for patch targets."""
    height, width = masks[0].shape
    labels = np.zeros(len(CLASSES), np.float32)
    labels[classes] = 1.0
    return Scene(
        image=np.zeros((height, width, 3), np.uint8),
        labels=labels,
        masks=np.stack(masks).astype(bool),
        classes=tuple(classes),
        seed=-1,
    )


def block_mean(mask: np.ndarray, grid: int) -> np.ndarray:
    """Exact per-patch coverage, row-major.

    If the side is not divisible by grid, repeating every pixel grid times makes
    it divisible while preserving each patch's (fractional) covered area.
    """
    values = mask.astype(np.float64)
    if values.shape[0] % grid:
        values = np.repeat(np.repeat(values, grid, 0), grid, 1)
    patch = values.shape[0] // grid
    return values.reshape(grid, patch, grid, patch).mean(axis=(1, 3)).reshape(-1)


# --- determinism ------------------------------------------------------------


def test_same_seed_gives_identical_scene():
    first, second = make_scene(1234), make_scene(1234)
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.labels, second.labels)
    np.testing.assert_array_equal(first.masks, second.masks)
    assert first.classes == second.classes
    assert first.seed == second.seed == 1234


def test_different_seeds_give_different_images():
    images = [make_scene(seed).image for seed in range(5)]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert not np.array_equal(images[i], images[j])


def test_generation_does_not_touch_global_rng():
    np.random.seed(0)
    expected = np.random.random()
    np.random.seed(0)
    make_scene(7)
    assert np.random.random() == expected


# --- scene invariants -------------------------------------------------------


def test_image_shape_and_dtype(many_scenes):
    for scene in many_scenes:
        assert scene.image.shape == (224, 224, 3)
        assert scene.image.dtype == np.uint8
        assert scene.labels.dtype == np.float32
        assert scene.labels.shape == (len(CLASSES),)
        assert scene.masks.dtype == np.bool_
        assert scene.masks.shape[1:] == (224, 224)


def test_object_count_between_zero_and_four_with_about_a_quarter_empty(many_scenes):
    for scene in many_scenes:
        assert 0 <= len(scene.classes) <= 4
        assert len(scene.masks) == len(scene.classes)
    empty = [scene for scene in many_scenes if not scene.classes]
    # 200 draws at 0.25: the binomial's 99.9% interval is about 30..72.
    assert 30 <= len(empty) <= 72
    for scene in empty:
        assert scene.masks.shape == (0, 224, 224) and not scene.labels.any()
        assert not patch_targets(scene).any() and not object_coverage(scene, 28).any()


def test_empty_scenes_are_backgrounds_alone_or_with_distractors(many_scenes):
    """Both kinds of "nothing I know" occur, and distractors leave no label, mask or target."""
    empty = [scene for scene in many_scenes if not scene.classes]
    assert any(scene.distractors == 0 for scene in empty) and any(scene.distractors > 0 for scene in empty)
    with_distractors = [scene for scene in many_scenes if scene.classes and scene.distractors]
    assert with_distractors
    for scene in with_distractors:
        assert len(scene.masks) == len(scene.classes) and scene.labels.sum() == len(set(scene.classes))


def test_distractors_are_none_of_the_class_templates():
    """One shape: not a near-copy of any class. Several (a bullseye): each lies inside the last and
    is painted afresh, so the whole is a disc holding discs of other paint, which no class is."""
    from training.scenes import class_template, distractor_layers

    rng = np.random.default_rng(0)
    classes = [class_template(index) > 127 for index in range(len(CLASSES))]
    layered = 0
    for _ in range(80):
        layers = [layer > 127 for layer in distractor_layers(rng)]
        if len(layers) == 1:
            for template in classes:  # same placement and scale as a class: no distractor is a near-copy
                overlap = np.count_nonzero(layers[0] & template) / np.count_nonzero(layers[0] | template)
                assert overlap < 0.9
            continue
        layered += 1
        for outer, inner in zip(layers, layers[1:]):
            assert not (inner & ~outer).any() and 0 < np.count_nonzero(inner) < 0.6 * np.count_nonzero(outer)
    assert layered > 0


def test_labels_agree_with_masks(many_scenes):
    for scene in many_scenes:
        present = {c for c, m in zip(scene.classes, scene.masks) if m.any()}
        expected = np.array([c in present for c in range(len(CLASSES))], np.float32)
        np.testing.assert_array_equal(scene.labels, expected)


def test_every_mask_keeps_enough_visible_pixels(many_scenes):
    for scene in many_scenes:
        assert all(np.count_nonzero(mask) >= 300 for mask in scene.masks)


def test_visible_masks_are_disjoint(many_scenes):
    for scene in many_scenes:
        overlap_count = scene.masks.sum(axis=0)
        assert overlap_count.max() <= 1


def test_all_classes_appear_over_many_seeds(many_scenes):
    seen = {c for scene in many_scenes for c in scene.classes}
    assert seen == set(range(len(CLASSES)))


def test_scene_scales_with_size():
    scene = make_scene(3, size=112)
    assert scene.image.shape == (112, 112, 3)
    assert scene.masks.shape[1:] == (112, 112)


# --- patch targets ----------------------------------------------------------


def test_top_left_quadrant_covers_only_patch_zero():
    mask = np.zeros((224, 224), bool)
    mask[:112, :112] = True
    scene = scene_from_masks([mask], [3])
    coverage = patch_coverage(scene, grid=2)
    expected = np.zeros((4, len(CLASSES)), np.float32)
    expected[0, 3] = 1.0
    np.testing.assert_allclose(coverage, expected, atol=1e-6)
    np.testing.assert_array_equal(patch_targets(scene, grid=2), expected)


def test_threshold_is_strict_and_configurable():
    mask = np.zeros((224, 224), bool)
    mask[:112, :56] = True  # half of patch 0 at grid=2
    scene = scene_from_masks([mask], [0])
    assert patch_coverage(scene, grid=2)[0, 0] == pytest.approx(0.5)
    assert patch_targets(scene, grid=2, threshold=0.49)[0, 0] == 1.0
    assert patch_targets(scene, grid=2, threshold=0.5)[0, 0] == 0.0
    assert patch_targets(scene, grid=2, threshold=0.3).sum() == 1.0


def test_same_class_masks_are_combined():
    left, right = np.zeros((224, 224), bool), np.zeros((224, 224), bool)
    left[:112, :56] = True
    right[:112, 56:112] = True
    scene = scene_from_masks([left, right], [5, 5])
    assert patch_coverage(scene, grid=2)[0, 5] == pytest.approx(1.0)


def test_coverage_matches_direct_block_mean_on_generated_scenes(many_scenes):
    for scene in many_scenes[:30]:
        coverage = patch_coverage(scene, grid=7)
        for c in range(len(CLASSES)):
            union = np.zeros((224, 224), bool)
            for mask, mask_class in zip(scene.masks, scene.classes):
                if mask_class == c:
                    union |= mask
            np.testing.assert_allclose(coverage[:, c], block_mean(union, 7), atol=1e-5)


def test_coverage_handles_side_not_divisible_by_grid():
    rng = np.random.default_rng(0)
    mask = rng.random((10, 10)) > 0.5
    scene = scene_from_masks([mask], [1])
    np.testing.assert_allclose(patch_coverage(scene, grid=3)[:, 1], block_mean(mask, 3), atol=1e-5)


def test_patch_target_shape_and_dtype(many_scenes):
    targets = patch_targets(many_scenes[0])
    assert targets.shape == (49, len(CLASSES))
    assert targets.dtype == np.float32


# --- seed ranges ------------------------------------------------------------


def test_train_and_heldout_seeds_are_disjoint():
    assert TRAIN_SEEDS.step == HELDOUT_SEEDS.step == 1
    assert TRAIN_SEEDS.stop <= HELDOUT_SEEDS.start or HELDOUT_SEEDS.stop <= TRAIN_SEEDS.start


def test_heldout_seed_indexes_heldout_range():
    assert heldout_seed(0) == HELDOUT_SEEDS.start
    assert heldout_seed(5) in HELDOUT_SEEDS
    assert heldout_seed(5) not in TRAIN_SEEDS


# --- dataset ----------------------------------------------------------------


def test_dataset_shapes_dtypes_and_normalisation():
    dataset = SceneDataset(range(10, 13))
    assert len(dataset) == 3
    image, labels, targets, objects = dataset[1]
    assert objects.shape == (4, 56, 56) and objects.dtype == torch.float32
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert labels.shape == (len(CLASSES),) and labels.dtype == torch.float32
    assert targets.shape == (49, len(CLASSES)) and targets.dtype == torch.float32

    scene = make_scene(11)
    restored = image * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    expected = torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255
    np.testing.assert_allclose(restored.numpy(), expected.numpy(), atol=1e-5)
    np.testing.assert_array_equal(labels.numpy(), scene.labels)
    np.testing.assert_array_equal(targets.numpy(), patch_targets(scene))
    np.testing.assert_allclose(objects.numpy(), object_coverage(scene, 56))


def test_object_coverage_of_a_constructed_scene():
    mask = np.zeros((224, 224), bool)
    mask[:112, :56] = True  # the top-left quarter of the left half of a 2x2 grid cell 0
    scene = Scene(image=np.zeros((224, 224, 3), np.uint8), labels=np.eye(len(CLASSES), dtype=np.float32)[0],
                  masks=mask[None], classes=(0,), seed=0)
    coverage = object_coverage(scene, 2)
    np.testing.assert_allclose(coverage[0], [[0.5, 0.0], [0.0, 0.0]])
    assert not coverage[1:].any()


def test_dataset_applies_transform_and_grid():
    dataset = SceneDataset(range(3), transform=lambda x: x * 0, grid=4)
    image, _, targets, _ = dataset[0]
    assert torch.count_nonzero(image) == 0
    assert targets.shape == (16, len(CLASSES))
