"""Attribution maps for Dual-ViT: which parts of an image drive a class, by the model's own passes or its trace.

Methods that run the network (Captum where it has the method):

* :func:`integrated_gradients` (optionally SmoothGrad) and :func:`occlusion`: (H, W) on the model input;
* :func:`grad_cam` and :func:`aux_class_map`: (H4, W4) on the stage-4 grid;
* :func:`token_importance`: (M,) one score per semantic token, by ablation.

:func:`dual_rollout` needs no model: it reads a full :class:`~model.trace.Trace` and returns an
(H1, W1) map on the stage-1 grid. The metrics that judge any map are in :mod:`analysis.metrics`.

Every function that runs the network takes ``images`` (1, 3, H, W) on the network's device, puts
the network in eval mode for the call and restores its mode afterwards, removes every hook it
adds (in ``finally``), and returns a finite float32 numpy array. Class indices and stages are
checked where a request enters the explorer (``viewer.requests``), not again here.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Occlusion

from analysis.trace_maths import blocks, fused, to_numpy
from model.capture import stage_grids
from model.dualvit import POOL_SIZE, DualViT, Grid, StageFeatures, pooled_grid
from model.map_names import CLASS_ATTENTION, MERGE_PART, SEMANTIC_INIT, STAGES
from model.trace import Trace

# Copies of the image run in one pass: at most this many, and as many as fit in BATCH_MEMORY.
MOST_PER_BATCH = 16
BATCH_MEMORY = 1536 << 20
# What one copy holds at its peak, per activation unit (a token's channel in one block, summed over
# the stages at the input's size): measured with bench.memory at 384 on dualvit_nano and dualvit_s,
# whose estimates agreed within 5%. Batches of 16 took dualvit_s at 384 to 10 GiB under Integrated
# Gradients; sized by memory they take it to under 3.
GRADIENT_BYTES_PER_UNIT = 150  # a backward pass keeps every activation
FORWARD_BYTES_PER_UNIT = 85  # a pass without gradients frees them as it goes


# ----------------------------------------------------------------------------- shared


@contextmanager
def evaluating(network: torch.nn.Module) -> Iterator[None]:
    """Eval mode inside, the caller's mode restored on the way out."""
    was_training = network.training
    network.eval()
    try:
        yield
    finally:
        network.train(was_training)


@dataclass(frozen=True)
class Pass:
    """One evaluation of the network: its batch size and whether gradients were recorded."""

    batch: int
    with_grad: bool


@contextmanager
def recording_passes(network: DualViT, on_pass: Callable[[Pass, int], None]) -> Iterator[None]:
    """Inside, ``on_pass(pass, count)`` is called as each pass of ``network`` starts.

    The hook sits on the first stage, which every pass runs (a plain call, ``forward_dense``, a
    captured forward), with the image batch as its first input.
    """
    count = 0

    def record(_module: torch.nn.Module, inputs: tuple) -> None:
        nonlocal count
        count += 1
        on_pass(Pass(int(inputs[0].shape[0]), torch.is_grad_enabled()), count)

    handle = network.stages[0].register_forward_pre_hook(record)
    try:
        yield
    finally:
        handle.remove()


def activation_units(network: DualViT, size: tuple[int, int]) -> int:
    """Tokens × channels × blocks over the four stages, for an input of ``size`` (height, width)."""
    grids = stage_grids(network, torch.empty(1, 3, *size, device="meta"))
    return sum(grid.size * width * depth for grid, width, depth in zip(grids, network.embed_dims, network.depths))


def batch_size(network: DualViT, size: tuple[int, int], with_grad: bool) -> int:
    """How many copies of an input of ``size`` one pass takes, so that a pass stays within BATCH_MEMORY."""
    per_copy = activation_units(network, size) * (GRADIENT_BYTES_PER_UNIT if with_grad else FORWARD_BYTES_PER_UNIT)
    return max(1, min(MOST_PER_BATCH, BATCH_MEMORY // per_copy))


def check_single_image(images: torch.Tensor) -> None:
    if images.ndim != 4 or images.shape[0] != 1:
        raise ValueError(f"expected one image of shape (1, C, H, W), got {tuple(images.shape)}")


def channel_magnitude(attributions: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) attributions -> (H, W): sum of |attribution| over channels."""
    return to_numpy(attributions[0].abs().sum(dim=0))


# ----------------------------------------------------------------------------- input attributions


def integrated_gradients(network: DualViT, images: torch.Tensor, target: int, steps: int = 32,
                         smooth: bool = False, samples: int = 8, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    """(H, W): Captum ``IntegratedGradients`` of logit ``target``, summed |attribution| over channels.

    The baseline is the zero input, i.e. the mean colour once normalised. With ``smooth``, Captum's
    ``NoiseTunnel`` averages IG over ``samples`` copies with Gaussian noise of std ``noise`` (in
    normalised units; SmoothGrad). The noise is drawn from a forked RNG seeded with ``seed``, so the
    map is reproducible and the global RNG is left as it was.
    """
    check_single_image(images)
    method = IntegratedGradients(network)
    # SmoothGrad's noisy copies go through together: Captum takes at least that many per pass.
    options = dict(baselines=0.0, target=target, n_steps=steps,
                   internal_batch_size=gradient_batch(network, images.shape[-2:], samples if smooth else 1))
    with evaluating(network):
        if not smooth:
            return channel_magnitude(method.attribute(images, **options))
        with torch.random.fork_rng(devices=[images.device] if images.is_cuda else []):
            torch.manual_seed(seed)
            attributions = NoiseTunnel(method).attribute(
                images, nt_type="smoothgrad", nt_samples=samples, stdevs=noise, **options)
    return channel_magnitude(attributions)


def gradient_batch(network: DualViT, size: tuple[int, int], copies: int = 1) -> int:
    """Interpolation steps (times ``copies`` of the image) per backward pass of Integrated Gradients."""
    return max(copies, batch_size(network, size, with_grad=True) // copies * copies)


OCCLUSION_WINDOW, OCCLUSION_STRIDE = 32, 16


def occlusion_windows(size: tuple[int, int], window: int = OCCLUSION_WINDOW, stride: int = OCCLUSION_STRIDE) -> int:
    """How many window positions :func:`occlusion` tries on an input of ``size`` (height, width)."""
    return ((size[0] - window) // stride + 1) * ((size[1] - window) // stride + 1)


def occlusion(network: DualViT, images: torch.Tensor, target: int, window: int = OCCLUSION_WINDOW,
              stride: int = OCCLUSION_STRIDE) -> np.ndarray:
    """(H, W): Captum ``Occlusion``: logit ``target`` of the image minus that with a window set to 0.

    A ``window`` x ``window`` square (all channels) slides by ``stride``; each pixel gets the mean
    drop over the windows covering it (positive: the region supports the class; pixels that no
    window covers, at most ``stride`` - 1 at the right and bottom edges, get 0).
    """
    check_single_image(images)
    channels = images.shape[1]
    with evaluating(network), torch.no_grad():
        attributions = Occlusion(network).attribute(
            images, sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
            baselines=0.0, target=target, perturbations_per_eval=batch_size(network, images.shape[-2:], False))
    # The window spans every channel, so all channels carry the same value.
    return to_numpy(attributions[0, 0])


# ----------------------------------------------------------------------------- stage-4 maps


def grad_cam(network: DualViT, images: torch.Tensor, target: int) -> np.ndarray:
    """(H4, W4): Grad-CAM on the stage-4 pixel tokens, reshaped to their grid. Hand-written.

    Captum's ``LayerGradCam`` wants a layer whose output is (B, C, H, W); the last stage returns a
    :class:`StageFeatures` whose pixels are (B, N4, C) tokens, so, as pytorch-grad-cam's
    ``reshape_transform`` does, the tokens are read as N4 = H4 x W4 positions of C channels. A
    forward hook on ``network.stages[-1]`` swaps the pixel tokens for a detached copy that requires
    grad (same values, so the logits are unchanged), which gives their gradient without a backward
    pass through the earlier stages. Channel weights are the gradient's mean over pixels; the map
    is the ReLU of the weighted channel sum.
    """
    check_single_image(images)
    kept: dict[str, StageFeatures] = {}

    def keep_pixels(_module: torch.nn.Module, _inputs: object, output: StageFeatures) -> StageFeatures:
        kept["features"] = output._replace(pixels=output.pixels.detach().requires_grad_(True))
        return kept["features"]

    handle = network.stages[-1].register_forward_hook(keep_pixels)
    try:
        with evaluating(network), torch.enable_grad():
            logits = network(images)
            pixels = kept["features"].pixels
            (gradient,) = torch.autograd.grad(logits[0, target], pixels)
    finally:
        handle.remove()
    weights = gradient[0].mean(dim=0)  # (C,)
    cam = torch.relu(pixels[0].detach() @ weights)  # (N4,)
    grid = kept["features"].grid
    return to_numpy(cam.reshape(grid.height, grid.width))


def aux_class_map(network: DualViT, images: torch.Tensor, class_index: int) -> np.ndarray:
    """(H4, W4): the token-labeling head's logit of ``class_index`` at every stage-4 pixel."""
    check_single_image(images)
    if not network.token_label:
        raise ValueError("this model has no token-labeling (aux) head: it was built with token_label=False")
    with evaluating(network), torch.inference_mode():
        _, pixel_logits, grid = network.forward_dense(images)
    return to_numpy(pixel_logits[0, :, class_index].reshape(grid.height, grid.width))


# ----------------------------------------------------------------------------- semantic tokens


def token_importance(network: DualViT, images: torch.Tensor, target: int, stage: int) -> np.ndarray:
    """(M,): logit ``target`` of the image minus that with semantic token j zeroed as it enters ``stage``.

    Positive: the token supports the class. The token is ablated at the output of
    ``network.stages[stage - 1].semantic_embed`` (where the stage's tokens enter its blocks) by a
    forward hook. Hand-written rather than Captum's ``LayerFeatureAblation``: each batch carries its
    own clean copy of the image, so a token the model provably ignores scores exactly 0 (batches of
    different sizes round differently on CPU, by ~1e-7).
    """
    check_single_image(images)
    num_tokens = pooled_grid(stage_grids(network, images)[0]).size
    importance = np.zeros(num_tokens, np.float32)
    keep: dict[str, torch.Tensor] = {}

    def ablate(_module: torch.nn.Module, _inputs: object, semantics: torch.Tensor) -> torch.Tensor:
        return semantics * keep["mask"]

    handle = network.stages[stage - 1].semantic_embed.register_forward_hook(ablate)
    try:
        with evaluating(network), torch.inference_mode():
            for tokens in token_batches(num_tokens, batch_size(network, images.shape[-2:], with_grad=False)):
                keep["mask"] = ablation_mask(tokens, num_tokens, images)
                logits = network(images.repeat(len(tokens) + 1, 1, 1, 1))[:, target]
                importance[tokens] = to_numpy(logits[0] - logits[1:])
    finally:
        handle.remove()
    return importance


def token_batches(num_tokens: int, copies_per_pass: int) -> list[np.ndarray]:
    """Token indices in groups that fit one forward beside the clean copy."""
    per_batch = max(1, copies_per_pass - 1)
    return np.array_split(np.arange(num_tokens), -(-num_tokens // per_batch))


def ablation_mask(tokens: np.ndarray, num_tokens: int, images: torch.Tensor) -> torch.Tensor:
    """(1 + len(tokens), M, 1): row 0 keeps every token (the clean copy); row 1 + k zeroes ``tokens[k]``."""
    mask = torch.ones(len(tokens) + 1, num_tokens, 1, dtype=images.dtype, device=images.device)
    mask[torch.arange(1, len(tokens) + 1), torch.as_tensor(tokens, dtype=torch.long)] = 0
    return mask


def rank_tokens(importance: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` most important token indices, most important first (ties: lower index first)."""
    order = np.argsort(-np.asarray(importance, np.float64), kind="stable")
    return order[:k]


# ----------------------------------------------------------------------------- Dual rollout


@dataclass(frozen=True)
class RolloutStep:
    """One backward step of the rollout: relevance over a layer's inputs = relevance over its outputs @ ``matrix``.

    ``matrix`` is a sparse (outputs, inputs) float64 tensor whose rows each sum to one, so every
    step keeps the total relevance. Sparse, because the Dual steps of stage 1 hold an N1 x N1
    identity that must never be formed densely (N1 = 3136 at 224).
    """

    name: str
    matrix: torch.Tensor

    def propagate(self, relevance: np.ndarray) -> np.ndarray:
        """(outputs,) -> (inputs,)."""
        column = torch.from_numpy(np.asarray(relevance, np.float64)).unsqueeze(1)
        return torch.sparse.mm(self.matrix.t(), column).squeeze(1).numpy()

    def row_sums(self) -> np.ndarray:
        return torch.sparse.sum(self.matrix, dim=1).to_dense().numpy()


Entries = tuple[np.ndarray, np.ndarray, np.ndarray]  # rows, columns, values


def identity_entries(size: int, row_start: int, column_start: int, weight: float) -> Entries:
    index = np.arange(size)
    return index + row_start, index + column_start, np.full(size, weight)


def dense_entries(block: np.ndarray, row_start: int, column_start: int, weight: float) -> Entries:
    rows, columns = np.nonzero(block)
    return rows + row_start, columns + column_start, weight * block[rows, columns]


def sparse_matrix(shape: tuple[int, int], *entries: Entries) -> torch.Tensor:
    """Sum of the entries as a coalesced sparse (rows, columns) float64 tensor."""
    rows = np.concatenate([e[0] for e in entries])
    columns = np.concatenate([e[1] for e in entries])
    values = np.concatenate([e[2] for e in entries]).astype(np.float64)
    indices = torch.from_numpy(np.stack([rows, columns]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(values), shape, check_invariants=True).coalesce()


def head_mean(trace: Trace, name: str, item: int) -> np.ndarray:
    """(queries, keys) head-mean attention in float64, rows renormalised (float16 storage rounds them)."""
    values = fused(trace, name, "mean", item).astype(np.float64)
    return values / values.sum(axis=1, keepdims=True)


def class_attention_step(trace: Trace, item: int) -> RolloutStep:
    """(1, 1 + N4 + M): the class row of (A + I) / 2 over [class, stage-4 pixels, tokens]."""
    row = head_mean(trace, CLASS_ATTENTION, item)[0]
    residual = np.zeros_like(row)
    residual[0] = 1.0
    class_row = (row + residual)[None] / 2
    return RolloutStep(CLASS_ATTENTION, sparse_matrix(class_row.shape, dense_entries(class_row, 0, 0, 1.0)))


def class_token_step(pixels: int, tokens: int) -> RolloutStep:
    """(1 + N4 + M, N4 + M): the class token entered the head as the mean of all tokens."""
    size = pixels + tokens
    return RolloutStep("head.class_token_is_mean", sparse_matrix(
        (1 + size, size), dense_entries(np.ones((1, size)), 0, 0, 1.0 / size), identity_entries(size, 1, 0, 1.0)))


def merge_step(trace: Trace, name: str, item: int) -> RolloutStep:
    """(N + M, N + M): (A + I) / 2 of the joint attention."""
    attention = head_mean(trace, name, item)
    size = attention.shape[0]
    return RolloutStep(name, sparse_matrix((size, size), dense_entries(attention, 0, 0, 0.5),
                                           identity_entries(size, 0, 0, 0.5)))


def downsample_step(fine: Grid, coarse: Grid, tokens: int, stage: int) -> RolloutStep:
    """(Nc + M, Nf + M): a coarse pixel's relevance split over the 2x2 fine pixels its strided conv covers.

    Indices past an odd edge are clamped, so an edge pixel gives its whole share to the last row
    or column. Token j passes to token j (tokens cross stages by a per-token linear projection).
    """
    rows, columns = np.divmod(np.arange(coarse.size), coarse.width)
    parents, children = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            child_rows = np.minimum(2 * rows + dy, fine.height - 1)
            child_columns = np.minimum(2 * columns + dx, fine.width - 1)
            parents.append(np.arange(coarse.size))
            children.append(child_rows * fine.width + child_columns)
    pixel_entries = (np.concatenate(parents), np.concatenate(children), np.full(4 * coarse.size, 0.25))
    return RolloutStep(f"stage{stage}.downsample", sparse_matrix(
        (coarse.size + tokens, fine.size + tokens), pixel_entries,
        identity_entries(tokens, coarse.size, fine.size, 1.0)))


def dual_steps(trace: Trace, stage: int, block: int, item: int) -> list[RolloutStep]:
    """The three attentions of a Dual block on [pixels (N), tokens (M)], in reverse order of execution.

    The pixel update read the tokens (``pixel_to_semantic``, N x M); before it, the token update
    read the pixels (``semantic_to_pixel``, M x N) after reading the tokens (``semantic_self``,
    M x M). Each step keeps a residual half on the updated token itself; the rows it does not
    update are identity.
    """
    prefix = f"stage{stage}.block{block}."
    pixels = trace.grid(stage).size
    tokens = trace.num_semantic
    shape = (pixels + tokens, pixels + tokens)
    pixel_reads = head_mean(trace, prefix + "pixel_to_semantic", item)
    token_reads_pixels = head_mean(trace, prefix + "semantic_to_pixel", item)
    token_reads_tokens = head_mean(trace, prefix + "semantic_self", item)
    return [
        RolloutStep(prefix + "pixel_to_semantic", sparse_matrix(
            shape, identity_entries(pixels, 0, 0, 0.5), dense_entries(pixel_reads, 0, pixels, 0.5),
            identity_entries(tokens, pixels, pixels, 1.0))),
        RolloutStep(prefix + "semantic_to_pixel", sparse_matrix(
            shape, identity_entries(pixels, 0, 0, 1.0), identity_entries(tokens, pixels, pixels, 0.5),
            dense_entries(token_reads_pixels, pixels, 0, 0.5))),
        RolloutStep(prefix + "semantic_self", sparse_matrix(
            shape, identity_entries(pixels, 0, 0, 1.0), identity_entries(tokens, pixels, pixels, 0.5),
            dense_entries(token_reads_tokens, pixels, pixels, 0.5))),
    ]


def cell_of_pixels(grid: Grid, cells: Grid) -> np.ndarray:
    """(N1,) the pooled cell (row-major) holding each stage-1 pixel; -1 past the pooled area (floor pooling)."""
    rows, columns = np.divmod(np.arange(grid.size), grid.width)
    cell_rows, cell_columns = rows // POOL_SIZE, columns // POOL_SIZE
    inside = (cell_rows < cells.height) & (cell_columns < cells.width)
    return np.where(inside, cell_rows * cells.width + cell_columns, -1)


def semantic_init_step(trace: Trace, item: int) -> RolloutStep:
    """(N1 + M, N1): stage-1 tokens back to the stage-1 pixels they were made from.

    Rollout's residual convention: token j counts as half its own pooled cell j and half
    ``semantic_init``'s reading of the pooled cells, W = (I + A) / 2 over cells. (The model mixes the
    two with the SE gate, a learned softmax per channel, which no one weight per token describes.)
    Each cell is the average of its 7 x 7 pixels, so it spreads equally over them. Pixel rows are
    identity.
    """
    grid = trace.grid(1)
    tokens = trace.num_semantic
    cell_weights = (np.eye(tokens) + head_mean(trace, SEMANTIC_INIT, item)) / 2  # (M, cells)
    cells = cell_of_pixels(grid, trace.semantic_grid)
    inside = np.flatnonzero(cells >= 0)
    token_to_pixels = np.zeros((tokens, grid.size))
    token_to_pixels[:, inside] = cell_weights[:, cells[inside]] / POOL_SIZE ** 2
    return RolloutStep(SEMANTIC_INIT, sparse_matrix(
        (grid.size + tokens, grid.size), identity_entries(grid.size, 0, 0, 1.0),
        dense_entries(token_to_pixels, grid.size, 0, 1.0)))


def rollout_steps(trace: Trace, item: int = 0) -> list[RolloutStep]:
    """Every step of :func:`dual_rollout`, from the class logit back to the stage-1 pixels.

    The first step maps the logit (one entry) to [class, stage-4 pixels, tokens]; the last one
    maps [stage-1 pixels, tokens] to the stage-1 pixels. Needs every map of a full capture.
    """
    tokens = trace.num_semantic
    steps = [class_attention_step(trace, item), class_token_step(trace.grid(STAGES[-1]).size, tokens)]
    refs = blocks(trace)
    for stage in reversed(STAGES):
        for ref in reversed([ref for ref in refs if ref.stage == stage]):
            steps += [merge_step(trace, ref.map_name(MERGE_PART), item)] if ref.kind == "merge" \
                else dual_steps(trace, stage, ref.block, item)
        if stage > STAGES[0]:
            steps.append(downsample_step(trace.grid(stage - 1), trace.grid(stage), tokens, stage))
    steps.append(semantic_init_step(trace, item))
    return steps


def dual_rollout(trace: Trace, item: int = 0) -> np.ndarray:
    """(H1, W1) on the stage-1 grid: attention rollout adapted to Dual-ViT; non-negative, sums to one.

    Rollout (Abnar & Zuidema 2020) follows relevance backwards through every attention, each
    replaced by (A + I) / 2 for the residual connection, with A the head mean. Here relevance is a
    vector r over one layer's tokens, and each step is a row-stochastic matrix S (outputs x inputs)
    with r_in = r_out S, so the total stays 1 (MLPs and norms mix no tokens and are skipped):

    1. head: r = the class token's row of (A + I) / 2 over [class, stage-4 pixels, tokens]
       (``head.class_attention``); the class token was the mean of all N4 + M tokens, so its own
       share is spread equally over them.
    2. Merge block (stages 4, 3; last block first): r <- r (A + I) / 2, A the joint (N + M)^2
       attention over [pixels, tokens].
    3. stage s -> s - 1: a stage-s pixel is a strided 3x3 convolution centred on stage-(s - 1)
       pixel (2i, 2j); its relevance is split equally over (2i..2i+1, 2j..2j+1), clamped at odd
       edges. Token j's relevance passes to token j (tokens are carried by linear projections).
    4. Dual block (stages 2, 1; last block first), its attentions in reverse order of execution:
       the pixel update (pixel p keeps 1/2, gives 1/2 over the tokens by ``pixel_to_semantic``),
       then the token update (token j keeps 1/2, gives 1/2 over the pixels by
       ``semantic_to_pixel``), then the token self-attention (token j keeps 1/2, gives 1/2 over the
       tokens by ``semantic_self``).
    5. semantic init: token j gives 1/2 to its home cell j (SE-gated mix with its pooled cell) and
       1/2 over the cells by ``semantic_init``; a cell spreads equally over its 7 x 7 pixels.

    Pixels past the pooled cells (floor pooling) get only what reaches them through pixel paths.
    Only vectors and sparse matrices are formed, never a dense (N1 + M)^2 one.
    """
    relevance = np.ones(1)
    for step in rollout_steps(trace, item):
        relevance = step.propagate(relevance)
    grid = trace.grid(1)
    return relevance.reshape(grid.height, grid.width).astype(np.float32)
