"""Cost of capturing every attention map: dualvit_s (batch 1) at 224 and 384.

    python -m bench.capture [--repeats 10]

Prints the median plain forward, the median full-capture forward, their ratio (target <= 1.10)
and the trace size in MB (float16 storage; target at 224 <= 32 MB); where CUDA is present, also
the GPU throughput at batch 32 with and without capture.
"""
from __future__ import annotations

import argparse

import torch

import model  # noqa: F401
# Built through our builder, not by name: the official file, when timed, registers the same name.
from model.registry import dualvit_s
from bench.timing import Figure, devices, paired_median_seconds, print_table
from model.capture import capture

GPU_BATCH = 32


def measure(repeats: int = 10) -> list[Figure]:
    network = dualvit_s().eval()
    figures = []
    for device in devices():
        network.to(device)
        for size in (224, 384):
            images = torch.randn(1, 3, size, size, device=device)
            with torch.inference_mode():
                seconds = paired_median_seconds({"plain": lambda: network(images),
                                                 "capture": lambda: capture(network, images)}, repeats)
                plain, captured = seconds["plain"], seconds["capture"]
                _, trace = capture(network, images)
            tag = f"dualvit_s {size}, {device.type}"
            figures += [Figure(f"plain forward, {tag}", plain * 1000, "ms"),
                        Figure(f"full-capture forward, {tag}", captured * 1000, "ms"),
                        Figure(f"capture / plain, {tag}", captured / plain, "×", "≤ 1.10"),
                        Figure(f"trace size, {tag}", trace.nbytes() / 1e6, "MB", "≤ 32 MB at 224")]
        if device.type == "cuda":
            images = torch.randn(GPU_BATCH, 3, 224, 224, device=device)
            with torch.inference_mode():
                seconds = paired_median_seconds({"plain": lambda: network(images),
                                                 "capture": lambda: capture(network, images)}, repeats)
                plain, captured = seconds["plain"], seconds["capture"]
            figures += [Figure(f"GPU throughput, batch {GPU_BATCH}, plain", GPU_BATCH / plain, "images/s"),
                        Figure(f"GPU throughput, batch {GPU_BATCH}, full capture", GPU_BATCH / captured, "images/s")]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    print_table("attention capture", measure(parser.parse_args().repeats))


if __name__ == "__main__":
    main()
