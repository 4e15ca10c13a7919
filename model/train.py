"""Train the default model: ``dualvit_nano`` on generated scenes (``model/scenes.py``).

    python -m model.train --out runs/nano --minutes 100          # the shipped weights' command
    python -m model.train --out runs/smoke --steps 8 --batch-size 4 --scenes 4 --warmup-steps 1  # CI

The recipe (why each part is there):

* **multi-label BCE** on the eval logits (class head + 0.5 x max of the per-pixel aux head),
  the very output the app shows;
* **token labeling**: BCE of the aux head on every stage-4 pixel against the classes that cover
  more than 30% of its patch (exact targets, from the scene masks) - dense supervision, as the
  official checkpoints were trained with;
* **grounding**: for every object, the semantic token whose head-mean ``semantic_to_pixel`` map
  already puts the most mass inside the object's mask is asked to put more there
  (``-log`` of that mass), at the last Dual block of stages 1 and 2. Measured before this
  recipe, classification alone left that mass at 0.14-0.22, so the tokens drew noise; this term
  makes them object-centric by training, and ``python -m model.evaluate`` measures how well it
  holds on held-out scenes (next to the untrained model);
* AdamW with warm-up and cosine decay, layer-scale gammas started at 0.1 (1e-6 trains too
  slowly on this budget), gradient clipping.

Checkpoints (``OUT/last.pt``, tensors and plain numbers only) are written every
``--save-every`` steps and resumed from automatically; ``OUT/dualvit_nano_scenes.safetensors``
is the exported model with its metadata. Uses CUDA when present.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import safetensors.torch
import timm
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

import model  # noqa: F401
from model.capture import listening
from model.dualvit import DualViT
from model.scenes import CLASSES, TRAIN_SEEDS, SceneDataset

ARCHITECTURE = "dualvit_nano"
DOMAIN = ("generated scenes: 1-4 shapes and a glyph (10 classes) on procedural clutter, 224x224 "
          "(model/scenes.py); multi-label")
GROUNDED_MAPS = {  # canonical map -> the object-coverage grid it is compared on
    "stage1.block0.semantic_to_pixel": 56,
    "stage2.block0.semantic_to_pixel": 28,
}


@dataclass
class Recipe:
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    layer_scale_init: float = 0.1
    # Grounding is learned quickly; a larger weight (1.0, with clipping at 1.0) starved the
    # classification of gradient: mAP 0.31 after 12.8 k scenes.
    grounding_weight: float = 0.3
    clip_norm: float = 5.0
    seed: int = 0


def build_network(recipe: Recipe) -> DualViT:
    return timm.create_model(ARCHITECTURE, num_classes=len(CLASSES), layer_scale_init=recipe.layer_scale_init)


def grounding_loss(semantic_to_pixel: torch.Tensor, coverage: torch.Tensor) -> torch.Tensor:
    """Mean over objects of -log(mass inside the object of the token that holds the most).

    ``semantic_to_pixel``: (B, heads, M, N); ``coverage``: (B, objects, N) cell fractions (zero
    rows are absent objects and count for nothing).
    """
    maps = semantic_to_pixel.mean(dim=1)  # (B, M, N)
    mass = torch.einsum("bmn,bon->bom", maps, coverage)  # (B, objects, M)
    best = mass.amax(dim=-1)
    present = coverage.sum(dim=-1) > 0
    return -(best[present].clamp_min(1e-6).log()).mean()


def coverage_on(objects: torch.Tensor, grid: int) -> torch.Tensor:
    """Object coverage (B, objects, g, g) at 28x28 resampled to ``grid`` and flattened."""
    if objects.shape[-1] != grid:
        objects = F.interpolate(objects, size=(grid, grid), mode="bilinear", align_corners=False)
    return objects.flatten(2)


def training_step(network: DualViT, batch: tuple[torch.Tensor, ...], recipe: Recipe) -> dict[str, torch.Tensor]:
    images, labels, patch_targets, objects = batch
    maps: dict[str, torch.Tensor] = {}
    probes = {name: probe for name, probe in network.attention_probes().items() if name in GROUNDED_MAPS}
    with listening(probes, lambda name, probs: maps.__setitem__(name, probs)):
        class_logits, pixel_logits, _ = network.forward_dense(images)
    eval_logits = class_logits + 0.5 * pixel_logits.amax(dim=1)
    losses = {
        "classes": F.binary_cross_entropy_with_logits(eval_logits, labels),
        "tokens": F.binary_cross_entropy_with_logits(pixel_logits, patch_targets),
        "grounding": sum(grounding_loss(maps[name], coverage_on(objects, grid))
                         for name, grid in GROUNDED_MAPS.items()) / len(GROUNDED_MAPS),
    }
    losses["total"] = losses["classes"] + losses["tokens"] + recipe.grounding_weight * losses["grounding"]
    return losses


def learning_rate(step: int, total_steps: int, recipe: Recipe) -> float:
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    progress = (step - recipe.warmup_steps) / max(1, total_steps - recipe.warmup_steps)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def export(network: DualViT, path: Path, extra: dict[str, str] | None = None) -> None:
    """Safetensors with the metadata the app reads (architecture, classes, domain)."""
    metadata = {"format": "pt", "architecture": ARCHITECTURE, "class_names": json.dumps(list(CLASSES)),
                "multi_label": "true", "domain": DOMAIN, **(extra or {})}
    state_dict = {key: value.detach().cpu().contiguous() for key, value in network.state_dict().items()}
    safetensors.torch.save_file(state_dict, str(path), metadata=metadata)


def save_checkpoint(path: Path, network: DualViT, optimizer: torch.optim.Optimizer, step: int, seconds: float) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save({"model": network.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "seconds": seconds}, temporary)
    temporary.replace(path)  # never leave a half-written checkpoint behind


def batches(step: int, batch_size: int, scenes: int | None, workers: int) -> Iterator[list[torch.Tensor]]:
    """Training batches from ``step`` on: fresh scenes, or the first ``scenes`` ones over and over.

    Batch b always holds the same scenes, so a resumed run sees exactly what it would have.
    """
    if scenes is None:
        seeds = TRAIN_SEEDS[step * batch_size:]
    else:
        seeds = TRAIN_SEEDS[:scenes]
    loader = DataLoader(SceneDataset(seeds), batch_size=batch_size, num_workers=workers, shuffle=False,
                        persistent_workers=workers > 0)
    while True:
        yield from loader


def train(out: Path, recipe: Recipe, steps: int | None, minutes: float | None, save_every: int,
          device: torch.device, workers: int, scenes: int | None = None) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(recipe.seed)
    network = build_network(recipe).to(device).train()
    optimizer = torch.optim.AdamW(network.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    checkpoint_path = out / "last.pt"
    step, seconds = 0, 0.0
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, seconds = state["step"], state["seconds"]
    # The schedule needs a length: a time budget is turned into steps at the measured pace.
    total_steps = steps or int(1e9)
    history: list[float] = []
    progress = tqdm(total=steps, initial=step, desc="training", unit="step", dynamic_ncols=True)
    started = time.perf_counter() - seconds
    for batch in batches(step, recipe.batch_size, scenes, workers):
        if steps is not None and step >= steps:
            break
        elapsed = time.perf_counter() - started
        if minutes is not None and elapsed >= minutes * 60:
            break
        if minutes is not None and step >= 20:
            total_steps = int(step * minutes * 60 / elapsed)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total_steps, recipe)
        batch = tuple(tensor.to(device, non_blocking=True) for tensor in batch)
        losses = training_step(network, batch, recipe)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(network.parameters(), recipe.clip_norm)
        optimizer.step()
        step += 1
        history.append(losses["total"].item())
        progress.update(1)
        progress.set_postfix({key: f"{value.item():.3f}" for key, value in losses.items()})
        if step % save_every == 0:
            save_checkpoint(checkpoint_path, network, optimizer, step, time.perf_counter() - started)
    progress.close()
    seconds = time.perf_counter() - started
    save_checkpoint(checkpoint_path, network, optimizer, step, seconds)
    export(network.eval(), out / "dualvit_nano_scenes.safetensors",
           {"training_steps": str(step), "training_scenes": str(step * recipe.batch_size),
            "training_minutes": f"{seconds / 60:.1f}", "device": str(device)})
    return {"steps": step, "first_loss": history[0] if history else float("nan"),
            "last_loss": history[-1] if history else float("nan"), "minutes": seconds / 60}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model.train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="run folder (checkpoints, exported weights)")
    parser.add_argument("--steps", type=int, help="stop after this many optimiser steps")
    parser.add_argument("--minutes", type=float, help="stop after this much training time")
    parser.add_argument("--batch-size", type=int, default=Recipe.batch_size)
    parser.add_argument("--lr", type=float, default=Recipe.lr)
    parser.add_argument("--warmup-steps", type=int, default=Recipe.warmup_steps)
    parser.add_argument("--scenes", type=int, help="train on only the first N scenes, repeated (smoke tests)")
    parser.add_argument("--save-every", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="data-loading processes (0: in the main one)")
    parser.add_argument("--device", default="auto")
    arguments = parser.parse_args(argv)
    if arguments.steps is None and arguments.minutes is None:
        parser.error("give --steps or --minutes")
    device = torch.device("cuda" if arguments.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if arguments.device == "auto" else arguments.device))
    recipe = Recipe(batch_size=arguments.batch_size, lr=arguments.lr, warmup_steps=arguments.warmup_steps)
    summary = train(arguments.out, recipe, arguments.steps, arguments.minutes, arguments.save_every,
                    device, arguments.workers, arguments.scenes)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
