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
from bench.timing import devices, machine, median_seconds


def official_dualvit_s(path: str) -> torch.nn.Module:
    spec = importlib.util.spec_from_file_location("official_dualvit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its timm @register_model looks itself up there
    spec.loader.exec_module(module)
    return module.dualvit_s()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--official", help="path of the official classification/dualvit.py")
    arguments = parser.parse_args()
    print(f"# plain forward, dualvit_s, batch 1 — {machine()}")
    networks = {"ours": timm.create_model("dualvit_s").eval()}  # before the official file re-registers the name
    if arguments.official:
        networks["official"] = official_dualvit_s(arguments.official).eval()
    for device in devices():
        for size in (224, 384):
            images = torch.randn(1, 3, size, size, device=device)
            seconds = {}
            for name, network in networks.items():
                network.to(device)
                with torch.inference_mode():
                    seconds[name] = median_seconds(lambda: network(images), arguments.repeats)
            line = f"{device.type:5s} {size}: ours {seconds['ours'] * 1000:7.1f} ms"
            if "official" in seconds:
                line += f"   official {seconds['official'] * 1000:7.1f} ms   ratio {seconds['ours'] / seconds['official']:.2f}"
            print(line)


if __name__ == "__main__":
    main()
