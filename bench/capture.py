"""Cost of capturing every attention map: dualvit_s (batch 1) at 224 and 384.

    python -m bench.capture [--repeats 10]

Prints the median plain forward, the median full-capture forward, their ratio (target <= 1.10)
and the trace size in MB (float16 storage; target at 224 <= 32 MB).
"""
from __future__ import annotations

import argparse

import timm
import torch

import model  # noqa: F401
from bench.timing import devices, machine, median_seconds
from model.capture import capture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    arguments = parser.parse_args()
    print(f"# capture overhead, dualvit_s, batch 1 — {machine()}")
    network = timm.create_model("dualvit_s").eval()
    for device in devices():
        network.to(device)
        for size in (224, 384):
            images = torch.randn(1, 3, size, size, device=device)
            with torch.inference_mode():
                plain = median_seconds(lambda: network(images), arguments.repeats)
                captured = median_seconds(lambda: capture(network, images), arguments.repeats)
                _, trace = capture(network, images)
            print(f"{device.type:5s} {size}: plain {plain * 1000:7.1f} ms   capture {captured * 1000:7.1f} ms   "
                  f"ratio {captured / plain:.2f}   trace {trace.nbytes() / 1e6:6.1f} MB")


if __name__ == "__main__":
    main()
