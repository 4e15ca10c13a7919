"""Attribution methods on the tiny nano model and Dual rollout on a hand-built trace."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import model  # noqa: F401  (registers dualvit_nano)
from analysis import attribution
from model.capture import capture
from model.dualvit import POOL_SIZE, DualViT, Grid
from model.trace import Trace

# A 72x88 input as the network would grid it: odd stage-2/3 sides exercise the clamped 2x2 split,
# and floor pooling leaves stage-1 pixels outside the 2x3 pooled cells (M = 6 tokens).
GRIDS = ((18, 22), (9, 11), (5, 6), (3, 3))
SEMANTIC = (2, 3)
M = 6
BLOCKS = {1: 1, 2: 2, 3: 2, 4: 1}
CLASS = 3


@pytest.fixture(scope="module")
def nano() -> DualViT:
    torch.manual_seed(0)
    return timm.create_model("dualvit_nano", num_classes=12).eval()


def random_images(height: int, width: int) -> torch.Tensor:
    return torch.randn(1, 3, height, width, generator=torch.Generator().manual_seed(height * 1000 + width))


# ----------------------------------------------------------------------------- methods on the model


def assert_map(values: np.ndarray, shape: tuple[int, ...]) -> None:
    assert values.shape == shape and values.dtype == np.float32
    assert np.isfinite(values).all()


@pytest.mark.parametrize("size", [(224, 224), (160, 224)])
def test_input_maps_have_the_input_size(nano, size):
    images = random_images(*size)
    assert_map(attribution.integrated_gradients(nano, images, CLASS, steps=4), size)
    assert_map(attribution.occlusion(nano, images, CLASS, window=56, stride=56), size)
    _, trace = capture(nano, images, dtype=torch.float32)
    rollout = attribution.dual_rollout(trace)
    assert_map(rollout, tuple(trace.grid(1)))
    assert rollout.min() >= 0 and rollout.sum() == pytest.approx(1.0, abs=1e-5)


def test_smoothgrad_is_reproducible_and_leaves_the_global_rng(nano):
    images = random_images(224, 224)
    state = torch.get_rng_state()
    first = attribution.integrated_gradients(nano, images, CLASS, steps=2, smooth=True, samples=2)
    assert torch.equal(torch.get_rng_state(), state)
    second = attribution.integrated_gradients(nano, images, CLASS, steps=2, smooth=True, samples=2)
    assert_map(first, (224, 224))
    np.testing.assert_array_equal(first, second)


def test_stage4_maps_have_the_stage4_grid(nano):
    images = random_images(224, 224)
    assert_map(attribution.grad_cam(nano, images, CLASS), (7, 7))
    assert attribution.grad_cam(nano, images, CLASS).min() >= 0
    assert_map(attribution.aux_class_map(nano, images, CLASS), (7, 7))


def test_aux_class_map_needs_the_aux_head():
    network = timm.create_model("dualvit_nano", num_classes=12, token_label=False).eval()
    with pytest.raises(ValueError, match="token-labeling"):
        attribution.aux_class_map(network, random_images(64, 64), CLASS)


def test_methods_leave_no_hooks_and_restore_the_mode(nano):
    images = random_images(64, 64)
    nano.train()
    try:
        attribution.grad_cam(nano, images, CLASS)
        attribution.token_importance(nano, images, CLASS, stage=1)
        assert nano.training
    finally:
        nano.eval()
    assert not any(module._forward_hooks for module in nano.modules())


def test_an_unused_token_scores_exactly_zero(nano):
    """Token 5 is zeroed where stage 2's tokens enter its blocks, so ablating it there changes nothing."""
    unused = 5

    def zero_token(_module, _inputs, semantics):
        semantics = semantics.clone()
        semantics[:, unused] = 0
        return semantics

    handle = nano.stages[1].semantic_embed.register_forward_hook(zero_token)
    try:
        importance = attribution.token_importance(nano, random_images(224, 224), CLASS, stage=2)
    finally:
        handle.remove()
    assert_map(importance, (64,))
    assert importance[unused] == 0.0
    assert np.abs(np.delete(importance, unused)).max() > 0
    assert unused not in attribution.rank_tokens(np.abs(importance), 10)


def test_rank_tokens_orders_by_importance():
    np.testing.assert_array_equal(attribution.rank_tokens(np.array([0.1, 0.9, -0.3, 0.5]), 3), [1, 3, 0])


# ----------------------------------------------------------------------------- Dual rollout


def size(stage: int) -> int:
    return GRIDS[stage - 1][0] * GRIDS[stage - 1][1]


def random_attention(rng: np.random.Generator, queries: int, keys: int, heads: int = 2) -> np.ndarray:
    """(1, heads, queries, keys), peaked rows that sum to one."""
    logits = rng.normal(scale=3.0, size=(1, heads, queries, keys))
    values = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return values / values.sum(axis=-1, keepdims=True)


def rollout_trace(seed: int = 0, semantic_init: np.ndarray | None = None) -> Trace:
    """Every map of a 72x88 capture (1, 2, 2, 1 blocks), random attention, stored in float16 as capture may."""
    rng = np.random.default_rng(seed)
    maps = {"semantic_init": random_attention(rng, M, M, heads=1) if semantic_init is None else semantic_init}
    for stage, count in BLOCKS.items():
        for block in range(count):
            prefix = f"stage{stage}.block{block}."
            if stage <= 2:
                maps[prefix + "semantic_self"] = random_attention(rng, M, M)
                maps[prefix + "semantic_to_pixel"] = random_attention(rng, M, size(stage))
                maps[prefix + "pixel_to_semantic"] = random_attention(rng, size(stage), M)
            else:
                maps[prefix + "merged"] = random_attention(rng, size(stage) + M, size(stage) + M)
    maps["head.class_attention"] = random_attention(rng, 1, 1 + size(4) + M)
    tensors = {name: torch.as_tensor(values, dtype=torch.float32).to(torch.float16) for name, values in maps.items()}
    return Trace(maps=tensors, stage_grids=tuple(Grid(*grid) for grid in GRIDS), semantic_grid=Grid(*SEMANTIC),
                 logits=torch.zeros(1, 3), probabilities=torch.full((1, 3), 1 / 3), class_names=("a", "b", "c"))


def test_every_rollout_step_is_row_stochastic():
    steps = attribution.rollout_steps(rollout_trace())
    # head (2), Merge blocks (3), downsamples (3), Dual blocks (3 x 3), semantic init (1)
    assert len(steps) == 2 + 3 + 3 + 9 + 1
    for step in steps:
        sums = step.row_sums()
        np.testing.assert_allclose(sums, 1.0, atol=1e-12, err_msg=step.name)
        assert (step.matrix.values() >= 0).all(), step.name
    assert steps[0].matrix.shape == (1, 1 + size(4) + M)
    assert steps[-1].matrix.shape == (size(1) + M, size(1))
    for before, after in zip(steps, steps[1:]):
        assert before.matrix.shape[1] == after.matrix.shape[0], (before.name, after.name)


def head_mean(trace: Trace, name: str) -> np.ndarray:
    """The head mean with rows summing to one again (the trace stores float16, which rounds them)."""
    values = trace.maps[name][0].double().numpy().mean(axis=0)
    return values / values.sum(axis=1, keepdims=True)


def brute_force_rollout(trace: Trace) -> np.ndarray:
    """The rollout written out from its definition (the docstring of ``dual_rollout``) with dense
    matrices and loops over cells, sharing no code with the module: the relevance r over one
    layer's [pixels, tokens] becomes r @ S, S the step's (outputs x inputs) matrix."""
    def mix(size: int, rows: slice, attention: np.ndarray, columns: slice) -> np.ndarray:
        step = np.eye(size)  # rows not named pass through unchanged
        step[rows] = 0
        step[rows, rows] += 0.5 * np.eye(rows.stop - rows.start)  # the residual: keep half
        step[rows, columns] += 0.5 * attention  # give half through the attention
        return step

    def pixels(stage: int) -> int:
        return GRIDS[stage - 1][0] * GRIDS[stage - 1][1]

    four = pixels(4)
    head = head_mean(trace, "head.class_attention")[0]  # over [class, stage-4 pixels, tokens]
    relevance = 0.5 * head + 0.5 * np.eye(1 + four + M)[0]
    relevance = relevance[1:] + relevance[0] / (four + M)  # the class token was the mean of them all
    for stage in (4, 3, 2, 1):
        n = pixels(stage)
        everything, pixel_rows, token_rows = slice(0, n + M), slice(0, n), slice(n, n + M)
        for block in reversed(range(BLOCKS[stage])):
            prefix = f"stage{stage}.block{block}."
            if stage >= 3:
                relevance = relevance @ mix(n + M, everything, head_mean(trace, prefix + "merged"), everything)
                continue
            relevance = relevance @ mix(n + M, pixel_rows, head_mean(trace, prefix + "pixel_to_semantic"), token_rows)
            relevance = relevance @ mix(n + M, token_rows, head_mean(trace, prefix + "semantic_to_pixel"), pixel_rows)
            relevance = relevance @ mix(n + M, token_rows, head_mean(trace, prefix + "semantic_self"), token_rows)
        if stage > 1:  # each coarse pixel back to the fine pixels its strided convolution centres on
            (fine_h, fine_w), (coarse_h, coarse_w) = GRIDS[stage - 2], GRIDS[stage - 1]
            step = np.zeros((n + M, pixels(stage - 1) + M))
            for row in range(coarse_h):
                for col in range(coarse_w):
                    covered = {(min(2 * row + a, fine_h - 1), min(2 * col + b, fine_w - 1))
                               for a in (0, 1) for b in (0, 1)}
                    for fine_row, fine_col in covered:
                        step[row * coarse_w + col, fine_row * fine_w + fine_col] = 1 / len(covered)
            step[n:, pixels(stage - 1):] = np.eye(M)  # token j stays token j
            relevance = relevance @ step
    # The semantic init: token j gives half to its home cell, half over the cells by its attention;
    # a cell spreads evenly over its POOL_SIZE x POOL_SIZE stage-1 pixels.
    height, width = GRIDS[0]
    step = np.zeros((height * width + M, height * width))
    step[:height * width] = np.eye(height * width)
    init = head_mean(trace, "semantic_init")
    for token in range(M):
        for cell in range(M):
            share = 0.5 * init[token, cell] + (0.5 if cell == token else 0.0)
            top, left = divmod(cell, SEMANTIC[1])
            for row in range(top * POOL_SIZE, (top + 1) * POOL_SIZE):
                for col in range(left * POOL_SIZE, (left + 1) * POOL_SIZE):
                    step[height * width + token, row * width + col] += share / POOL_SIZE ** 2
    return (relevance @ step).reshape(height, width)


def test_rollout_map_equals_a_brute_force_rollout_from_the_raw_maps():
    trace = rollout_trace()
    rollout = attribution.dual_rollout(trace)
    assert rollout.shape == GRIDS[0] and rollout.dtype == np.float32
    assert rollout.min() >= 0
    assert rollout.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(rollout, brute_force_rollout(trace), rtol=1e-5, atol=1e-9)


def test_downsample_splits_over_the_covered_pixels_clamped_at_odd_edges():
    step = attribution.downsample_step(Grid(5, 6), Grid(3, 3), tokens=2, stage=4)
    matrix = step.matrix.to_dense().numpy()
    corner = 2 * 3 + 2  # coarse (2, 2) covers fine rows 4..5 (5 clamped to 4), columns 4..5
    expected = np.zeros(5 * 6 + 2)
    expected[[4 * 6 + 4, 4 * 6 + 5]] = 0.5
    np.testing.assert_allclose(matrix[corner], expected)
    np.testing.assert_allclose(matrix[9:, 30:], np.eye(2))  # token j stays token j


def test_semantic_init_sends_each_token_to_its_home_cell():
    """With semantic_init reading only its own cell, token j's relevance lands evenly on cell j's 7x7 pixels."""
    trace = rollout_trace(semantic_init=np.eye(M)[None, None])
    matrix = attribution.semantic_init_step(trace, 0).matrix.to_dense().numpy()
    token_rows = matrix[size(1):].reshape(M, *GRIDS[0])
    home = np.zeros(GRIDS[0])
    home[POOL_SIZE:2 * POOL_SIZE, 2 * POOL_SIZE:3 * POOL_SIZE] = 1 / POOL_SIZE ** 2  # token 5: cell (1, 2)
    np.testing.assert_allclose(token_rows[5], home)
    assert token_rows[:, 2 * POOL_SIZE:, :].sum() == 0  # pixels past the pooled cells get nothing
    assert token_rows[:, :, 3 * POOL_SIZE:].sum() == 0


# ----------------------------------------------------------------------------- the page's progress bar


@pytest.mark.slow
def test_the_progress_bar_counts_the_passes_each_method_makes():
    from PIL import Image

    from analysis.explanations import METHODS
    from model.bundle import ASSETS, open_model
    from viewer.service import Explorer

    explorer = Explorer(open_model(None, device="cpu"))
    key = explorer.analyse(Image.open(ASSETS / "examples" / "coffee.jpg").convert("RGB"), "aspect")
    analysis = explorer.get(key)
    for name, method in METHODS.items():
        reports: list[tuple[int, int]] = []
        request = explorer.explain_request(key, name, explorer.bundle.class_names[0], 2)
        explorer.explain(request, on_pass=lambda done, expected: reports.append((done, expected)))
        expected = method.passes(explorer.bundle.network, tuple(analysis.inputs.shape[-2:]), analysis.trace)
        assert [done for done, _ in reports] == list(range(1, expected + 1)), name
        assert all(total == expected for _, total in reports), name
