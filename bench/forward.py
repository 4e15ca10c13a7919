"""Plain-forward latency of dualvit_s (batch 1) at 224 and 384, on CPU and, when present, CUDA.

    python -m bench.forward [--repeats 10] [--official path/to/official/dualvit.py]

With ``--official``, the official implementation (a file from the paper's repository, not part of
this project) is timed on the same machine and the ratio printed (target: at most 0.8).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys

import timm
import torch

import model  # noqa: F401
# Built through our builder, not by name: the official file, when timed, registers the same name.
from model.registry import dualvit_s
from bench.timing import Figure, devices, paired_median_seconds, parse_bench_arguments, print_table


def official_dualvit_s(path: str) -> torch.nn.Module:
    """The official dualvit_s, without letting its file take over timm's dualvit_* names."""
    entrypoints = timm.models._registry._model_entrypoints
    ours = {name: entrypoints[name] for name in timm.list_models("dualvit_*")}
    spec = importlib.util.spec_from_file_location("official_dualvit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its timm @register_model looks itself up there
    try:
        spec.loader.exec_module(module)
    finally:
        entrypoints.update(ours)
    return module.dualvit_s()


def measure(repeats: int = 10, official: str | None = None) -> list[Figure]:
    networks = {"ours": dualvit_s().eval()}
    if official:
        networks["official"] = official_dualvit_s(official).eval()
    figures = []
    for device in devices():
        for size in (224, 384):
            images = torch.randn(1, 3, size, size, device=device)
            for network in networks.values():
                network.to(device)
            with torch.inference_mode():
                seconds = paired_median_seconds(
                    {name: (lambda network=network: network(images)) for name, network in networks.items()}, repeats)
            figures.append(Figure(f"plain forward, dualvit_s {size}, {device.type}", seconds["ours"] * 1000, "ms"))
            if "official" in seconds:
                figures.append(Figure(f"official eager forward, {size}, {device.type}", seconds["official"] * 1000, "ms"))
                figures.append(Figure(f"ours / official, {size}, {device.type}", seconds["ours"] / seconds["official"],
                                      "×", "≤ 0.8"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--official", help="path of the official classification/dualvit.py")
    arguments = parse_bench_arguments(parser)
    print_table("plain forward, batch 1", measure(arguments.repeats, arguments.official))


if __name__ == "__main__":
    main()
