"""Seconds per training step of the default model, and what the two-hour budget buys at that pace.

    python -m bench.training [--repeats 20] [--system-allocator]

A step is what ``python -m training.train`` repeats: a batch of 32 fresh scenes, the forward pass
with the grounded maps captured, the losses, the backward pass and the optimiser's update. It is
timed with the scenes made in the main process between steps (the default on the CPU) and with
one worker process making them alongside, which on two CPU cores takes a core from torch's threads.
"""
from __future__ import annotations

import torch

from bench.timing import Figure, median_seconds, run_bench
from model.bundle import pick_device
from training.train import (Recipe, batches, default_workers, optimiser_for, optimiser_step, trainable_network,
                            uses_bfloat16)

BUDGET_MINUTES = 120  # the model card's training budget


def seconds_per_step(device: torch.device, workers: int, repeats: int) -> float:
    """Median seconds from asking for a batch to the optimiser's update, over ``repeats`` steps."""
    recipe = Recipe(bfloat16=uses_bfloat16("auto", device))
    torch.manual_seed(recipe.seed)
    network = trainable_network(recipe, device)
    optimizer = optimiser_for(network, recipe)
    loader = batches(0, recipe.batch_size, None, workers)
    return median_seconds(lambda: optimiser_step(network, optimizer, next(loader), recipe), repeats, warmup=3)


def measure(repeats: int = 20) -> list[Figure]:
    device = pick_device("auto")
    default = default_workers(device)
    figures = []
    for workers in sorted({default, 1}):
        seconds = seconds_per_step(device, workers, repeats)
        where = "scenes made between steps" if workers == 0 else f"{workers} scene worker{'s' * (workers > 1)}"
        chosen = " (the default)" if workers == default else ""
        figures.append(Figure(f"training step of 32, {where}{chosen}, {device.type}", seconds, "s"))
        if workers == default:
            steps = BUDGET_MINUTES * 60 / seconds
            figures.append(Figure(f"steps in {BUDGET_MINUTES} minutes at that pace", steps, "steps"))
    return figures


def main() -> None:
    run_bench(__doc__, "Training speed of dualvit_nano on generated scenes", measure, 20)


if __name__ == "__main__":
    main()
