"""Explanation time against the model passes each method needs.

    python -m bench.explanation_time [--repeats 3] [--resolutions 224 384]

Each method runs as the page runs it (dualvit_s, randomly initialised, one image), while a hook
records every forward pass it makes (batch size, and whether gradients were on). The same passes
are then replayed plainly: a forward of that batch, and, where gradients were on, a backward to
the input. The figure is the method's time over the replay's time (target <= 1.5): what the method
adds beyond the passes it cannot avoid. Grad-CAM's backward stops at the stage-4 tokens, so its
replay (a backward to the input) is an upper bound and its ratio a lower one. The rollout makes no
pass: its time is printed alone.
"""
from __future__ import annotations

import argparse

import torch
from PIL import Image

import model  # noqa: F401
from analysis import attribution
from analysis.explanations import METHODS
from bench.timing import Figure, median_seconds, parse_bench_arguments, print_table, random_dualvit_s_explorer
from model.bundle import ASSETS
from viewer.service import Explorer, run_explanation

EXAMPLE = ASSETS / "examples" / "coffee.jpg"
TARGET = "≤ 1.5"


def replay(network: torch.nn.Module, images: torch.Tensor, passes: list[attribution.Pass]) -> None:
    """The recorded passes, done plainly on copies of ``images``."""
    for evaluation in passes:
        batch = images.expand(evaluation.batch, -1, -1, -1).clone()
        if evaluation.with_grad:
            batch.requires_grad_(True)
            with torch.enable_grad():
                torch.autograd.grad(network(batch)[:, 0].sum(), batch)
        else:
            with torch.inference_mode():
                network(batch)


def measure(repeats: int = 3, resolutions: tuple[str, ...] = ("224",),
            explorer: Explorer | None = None) -> list[Figure]:
    """``explorer``: the model to time (default: a randomly initialised dualvit_s)."""
    explorer = explorer or random_dualvit_s_explorer()
    bundle, network = explorer.bundle, explorer.bundle.network
    architecture = bundle.architecture
    figures = []
    for resolution in resolutions:
        key = explorer.analyse(Image.open(EXAMPLE).convert("RGB"), resolution)
        images = explorer.get(key).inputs.to(bundle.device)
        for name, method in METHODS.items():
            request = explorer.explain_request(key, name, bundle.class_names[0], 2)
            passes: list[attribution.Pass] = []
            with attribution.recording_passes(network, lambda evaluation, _count: passes.append(evaluation)):
                run_explanation(bundle, request)
            seconds = median_seconds(lambda: run_explanation(bundle, request), repeats, warmup=0)
            figure = f"explanation, {architecture} {resolution}, {method.title}"
            if not passes:
                figures.append(Figure(f"{figure}: time (no model pass)", seconds * 1000, "ms"))
                continue
            reference = median_seconds(lambda: replay(network, images, passes), repeats, warmup=0)
            figures.append(Figure(f"{figure}: time / its {len(passes)} pass(es) replayed ({seconds:.2f} s / "
                                  f"{reference:.2f} s)", seconds / reference, "×", TARGET))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resolutions", nargs="+", default=["224"], choices=["224", "384"])
    arguments = parse_bench_arguments(parser)
    print_table("explanation time", measure(arguments.repeats, tuple(arguments.resolutions)))


if __name__ == "__main__":
    main()
