"""Cost of capturing every attention map: dualvit_s (batch 1) at 224 and 384.

    python -m bench.capture [--repeats 10] [--system-allocator]

Prints the median plain forward, the median full-capture forward in both capture modes, their
ratios to the plain forward (target <= 1.10), the largest logit change each mode makes (random
weights; the tests check the fixture's) and the trace size in MB (float16 storage; target at
224 <= 32 MB); where CUDA is present, also the GPU throughput at batch 32. It also times forming
every map alone (q k^T, softmax, float16, on random q and k of the trace's shapes): the ``fused``
mode pays that on top of a plain forward, so it bounds that mode's ratio from below.

The modes: ``fused`` (the default of ``model.capture.capture``) leaves every output to the fused
kernel, so the logits are exactly a plain forward's, and forms each map a second time; ``shared``
(``fused=False``, what the app uses) computes each output from the map it records.
"""
from __future__ import annotations

from typing import Callable

import torch

import model  # noqa: F401
# Built through our builder, not by name: the official file, when timed, registers the same name.
from model.registry import dualvit_s
from bench.timing import Figure, devices, paired_median_seconds, run_bench
from model.capture import capture
from model.dualvit import DualViT, attention_probabilities
from model.trace import Trace

GPU_BATCH = 32
MODES = {"fused": True, "shared": False}


def timed_runs(network: torch.nn.Module, images: torch.Tensor) -> dict[str, Callable[[], object]]:
    runs = {"plain": lambda: network(images)}
    for mode, fused in MODES.items():
        runs[mode] = lambda fused=fused: capture(network, images, fused=fused)
    return runs


def stage_width(network: DualViT, map_name: str) -> int:
    """Channels of the tokens an attention map was formed from."""
    if map_name.startswith("stage"):
        return network.embed_dims[int(map_name[len("stage")]) - 1]
    return network.embed_dims[0 if map_name == "semantic_init" else -1]


def map_formation(network: DualViT, trace: Trace, device: torch.device) -> Callable[[], object]:
    """Forms every map of ``trace`` once more, from random queries and keys of the same shapes."""
    operands = []
    for name, probs in trace.maps.items():
        batch, heads, queries, keys = probs.shape
        head_dim = stage_width(network, name) // heads
        operands.append((torch.randn(batch, heads, queries, head_dim, device=device),
                         torch.randn(batch, heads, keys, head_dim, device=device), head_dim ** -0.5))
    return lambda: [attention_probabilities(q, k, scale).to(torch.float16) for q, k, scale in operands]


def measure(repeats: int = 10) -> list[Figure]:
    network = dualvit_s().eval()
    figures = []
    for device in devices():
        network.to(device)
        for size in (224, 384):
            images = torch.randn(1, 3, size, size, device=device)
            with torch.inference_mode():
                _, trace = capture(network, images)
                runs = {**timed_runs(network, images), "maps alone": map_formation(network, trace, device)}
                seconds = paired_median_seconds(runs, repeats)
                plain = network(images).float().cpu()
                logit_change = {mode: (capture(network, images, fused=fused)[0] - plain).abs().max().item()
                                for mode, fused in MODES.items()}
            tag = f"dualvit_s {size}, {device.type}"
            figures.append(Figure(f"plain forward, {tag}", seconds["plain"] * 1000, "ms"))
            for mode in MODES:
                figures += [Figure(f"full capture ({mode}), {tag}", seconds[mode] * 1000, "ms"),
                            Figure(f"capture ({mode}) / plain, {tag}", seconds[mode] / seconds["plain"], "×", "≤ 1.10"),
                            Figure(f"largest logit change, capture ({mode}), {tag}", logit_change[mode], "", "≤ 1e-6")]
            figures.append(Figure(f"forming every map alone / plain, {tag}", seconds["maps alone"] / seconds["plain"], "×"))
            figures.append(Figure(f"trace size, {tag}", trace.nbytes() / 1e6, "MB", "≤ 32 MB at 224"))
        if device.type == "cuda":
            images = torch.randn(GPU_BATCH, 3, 224, 224, device=device)
            with torch.inference_mode():
                seconds = paired_median_seconds(timed_runs(network, images), repeats)
            figures.append(Figure(f"GPU throughput, batch {GPU_BATCH}, plain", GPU_BATCH / seconds["plain"], "images/s"))
            figures += [Figure(f"GPU throughput, batch {GPU_BATCH}, full capture ({mode})", GPU_BATCH / seconds[mode],
                               "images/s") for mode in MODES]
    return figures


def main() -> None:
    run_bench(__doc__, "attention capture", measure, repeats=10)


if __name__ == "__main__":
    main()
