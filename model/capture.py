"""Record every attention map of one forward pass as a :class:`~model.trace.Trace`.

Each attention in :mod:`model.dualvit` passes its probabilities through an ``AttentionProbe``;
capture registers forward hooks on the probes it wants. A hooked attention takes its output from
the map it records (each map is formed once): the logits differ from a plain forward's by float32
rounding only, and in float64 they equal it (and the official code's) to 1e-9.
"""
from __future__ import annotations

import fnmatch
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch

from model.dualvit import DualViT, Grid, pooled_grid
from model.preprocess import Geometry
from model.trace import Trace


def select_probes(network: DualViT, include: Sequence[str] = ("*",)) -> dict[str, torch.nn.Module]:
    """Probes whose canonical name matches any of the glob patterns (e.g. ``stage2.*``)."""
    probes = network.attention_probes()
    chosen = {name: probe for name, probe in probes.items()
              if any(fnmatch.fnmatchcase(name, pattern) for pattern in include)}
    if not chosen:
        raise ValueError(f"no attention map matches {list(include)}; names look like {next(iter(probes))}")
    return chosen


@contextmanager
def listening(probes: dict[str, torch.nn.Module], record: Callable[[str, torch.Tensor], None]) -> Iterator[None]:
    """While inside, every listed probe hands its probabilities to ``record(name, probs)``."""
    handles = [probe.register_forward_hook(lambda _module, _inputs, probs, name=name: record(name, probs))
               for name, probe in probes.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def explicit_attention(network: DualViT, include: Sequence[str] = ("*",)) -> Iterator[None]:
    """Compute the chosen attentions as explicit softmax(q k^T) v, as a capture does, without keeping
    the maps (FLOP counters cannot see into the fused kernel)."""
    with listening(select_probes(network, include), lambda _name, _probs: None):
        yield


def stage_grids(network: DualViT, images: torch.Tensor) -> tuple[Grid, ...]:
    """Pixel grid of each stage for an input of this size, without running the network."""
    height, width = images.shape[-2:]
    grids = []
    for stage in network.stages:
        strides = 2 if stage is network.stages[0] else 1  # the stem halves twice before its projection
        for _ in range(strides):
            height, width = (height + 1) // 2, (width + 1) // 2
        grids.append(Grid(height, width))
    return tuple(grids)


def probabilities_of(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    return logits.float().sigmoid() if multi_label else logits.float().softmax(dim=-1)


def capture(
    network: DualViT,
    images: torch.Tensor,
    *,
    include: Sequence[str] = ("*",),
    dtype: torch.dtype = torch.float16,
    class_names: Sequence[str] | None = None,
    multi_label: bool = False,
    geometries: Sequence[Geometry] = (),
) -> tuple[torch.Tensor, Trace]:
    """One forward pass of ``images`` (B, 3, H, W) that records the chosen attention maps.

    Maps are stored in ``dtype`` on the images' device during the pass and copied to CPU memory
    once at the end. Works under ``torch.inference_mode``. Returns the logits in the network's
    precision, on the CPU, and the trace (whose logits are float32).
    """
    recorded: dict[str, torch.Tensor] = {}

    def record(name: str, probs: torch.Tensor) -> None:
        recorded[name] = probs.detach().to(dtype)

    probes = select_probes(network, include)
    with listening(probes, record):
        logits = network(images)
    grids = stage_grids(network, images)
    logits = logits.detach().cpu()  # in the network's precision; the trace keeps float32
    num_classes = logits.shape[-1]
    trace = Trace(
        maps={name: probs.cpu() for name, probs in recorded.items()},
        stage_grids=grids,
        semantic_grid=pooled_grid(grids[0]),
        logits=logits.float(),
        probabilities=probabilities_of(logits, multi_label),
        class_names=tuple(class_names) if class_names is not None else tuple(f"class {i}" for i in range(num_classes)),
        multi_label=multi_label,
        geometries=tuple(geometries),
    )
    return logits, trace
