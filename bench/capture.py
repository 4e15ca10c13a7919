"""Cost of capturing every attention map: dualvit_s (batch 1) at 224 and 384.

    python -m bench.capture [--repeats 10] [--system-allocator]

Prints the median plain forward and the median full-capture forward (paired), their ratio (targets
<= 1.10 at 224 and <= 1.20 at 384), the largest logit change a capture makes (random weights; float32
rounding only, the tests check the fixture's in float64) and the trace size in MB (float16 storage;
target at 224 <= 32 MB); where CUDA is present, also the GPU throughput at batch 32.
"""
from __future__ import annotations

from typing import Callable

import torch

import model  # noqa: F401
# Built through our builder, not by name: the official file, when timed, registers the same name.
from model.registry import dualvit_s
from bench.timing import Figure, devices, paired_median_seconds, run_bench
from model.capture import capture

GPU_BATCH = 32
RATIO_TARGETS = {224: "≤ 1.10", 384: "≤ 1.20"}


def timed_runs(network: torch.nn.Module, images: torch.Tensor) -> dict[str, Callable[[], object]]:
    return {"plain": lambda: network(images), "capture": lambda: capture(network, images)}


def measure(repeats: int = 10) -> list[Figure]:
    network = dualvit_s().eval()
    figures = []
    for device in devices():
        network.to(device)
        for size in (224, 384):
            images = torch.randn(1, 3, size, size, device=device)
            with torch.inference_mode():
                seconds = paired_median_seconds(timed_runs(network, images), repeats)
                plain = network(images).float().cpu()
                logits, trace = capture(network, images)
            tag = f"dualvit_s {size}, {device.type}"
            figures += [Figure(f"plain forward, {tag}", seconds["plain"] * 1000, "ms"),
                        Figure(f"full capture, {tag}", seconds["capture"] * 1000, "ms"),
                        Figure(f"capture / plain, {tag}", seconds["capture"] / seconds["plain"], "×", RATIO_TARGETS[size]),
                        Figure(f"largest logit change, capture, {tag}", (logits - plain).abs().max().item(), "",
                               "float32 rounding"),
                        Figure(f"trace size, {tag}", trace.nbytes() / 1e6, "MB", "≤ 32 MB at 224")]
        if device.type == "cuda":
            images = torch.randn(GPU_BATCH, 3, 224, 224, device=device)
            with torch.inference_mode():
                seconds = paired_median_seconds(timed_runs(network, images), repeats)
            figures += [Figure(f"GPU throughput, batch {GPU_BATCH}, {run}", GPU_BATCH / seconds[run], "images/s")
                        for run in ("plain", "capture")]
    return figures


def main() -> None:
    run_bench(__doc__, "attention capture", measure, repeats=10)


if __name__ == "__main__":
    main()
