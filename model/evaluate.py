"""Held-out metrics of scene weights, printed as JSON.

    python -m model.evaluate [--weights PATH] [--scenes 1000]

Classification: multi-label mAP and exact-match accuracy (sigmoid > 0.5) over held-out scenes
(``model.scenes.HELDOUT_SEEDS``, never used in training). Token localisation, on the head-mean
``semantic_to_pixel`` map of the last Dual block of stage 2: for every object, the semantic token
whose map puts the most mass inside the object's mask; reported are that mass (mean over
objects) and the pointing game (share of objects for which that token's peak cell lies inside
the mask, i.e. is at least half covered by it), beside the same figures for the untrained model
and the mean object area (the mass a uniform map would put inside).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import numpy as np
import timm
import torch

import model  # noqa: F401
from model.bundle import DEFAULT_WEIGHTS, open_model
from model.capture import capture
from model.dualvit import DualViT
from model.scenes import HELDOUT_SEEDS, SceneDataset


@dataclass(frozen=True)
class Localisation:
    mass_in_mask: float
    pointing_game: float
    objects: int


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the precision-recall curve, as the mean precision at each positive's rank."""
    order = np.argsort(-scores, kind="stable")
    hits = positives[order].astype(bool)
    if not hits.any():
        return float("nan")
    precision_at_hits = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hits.mean())


def mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over classes that have at least one positive."""
    values = [average_precision(scores[:, c], labels[:, c]) for c in range(labels.shape[1]) if labels[:, c].any()]
    return float(np.mean(values))


def exact_match(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    return float(((probabilities > threshold) == labels.astype(bool)).all(axis=1).mean())


def token_localisation(maps: np.ndarray, coverage: np.ndarray) -> Localisation:
    """``maps`` (B, M, N) token-over-pixel distributions; ``coverage`` (B, objects, N) cell fractions."""
    mass = np.einsum("bmn,bon->bom", maps, coverage)  # (B, objects, M)
    best_token = mass.argmax(axis=-1)  # (B, objects)
    present = coverage.sum(axis=-1) > 0
    batch_index = np.arange(maps.shape[0])[:, None]
    peaks = maps[batch_index, best_token].argmax(axis=-1)  # (B, objects): peak cell of that token
    peak_coverage = np.take_along_axis(coverage, peaks[..., None], axis=-1)[..., 0]
    return Localisation(
        mass_in_mask=float(mass.max(axis=-1)[present].mean()),
        pointing_game=float((peak_coverage[present] >= 0.5).mean()),
        objects=int(present.sum()),
    )


def last_dual_map(network: DualViT) -> str:
    return f"stage2.block{len(network.stages[1].blocks) - 1}.semantic_to_pixel"


def evaluate_network(network: DualViT, scenes: int, batch_size: int, with_classification: bool = True) -> dict:
    name = last_dual_map(network)
    grid = None
    scores, labels, maps, coverage = [], [], [], []
    dataset = SceneDataset(HELDOUT_SEEDS[:scenes])
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    device = next(network.parameters()).device
    for images, batch_labels, _, objects in loader:
        with torch.inference_mode():
            logits, trace = capture(network, images.to(device), include=(name,), dtype=torch.float32, multi_label=True)
        grid = trace.grid(2)
        if objects.shape[-1] != grid.height:
            objects = torch.nn.functional.interpolate(objects, size=tuple(grid), mode="area")
        scores.append(trace.probabilities.numpy())
        labels.append(batch_labels.numpy())
        maps.append(trace.maps[name].mean(dim=1).numpy())
        coverage.append(objects.flatten(2).numpy())
    coverage_all = np.concatenate(coverage)
    result = {"map": name, "localisation": asdict(token_localisation(np.concatenate(maps), coverage_all))}
    present = coverage_all.sum(-1) > 0
    result["mean_object_area"] = float((coverage_all.sum(-1) / coverage_all.shape[-1])[present].mean())
    if with_classification:
        probabilities, targets = np.concatenate(scores), np.concatenate(labels)
        result["mAP"] = mean_average_precision(probabilities, targets)
        result["exact_match"] = exact_match(probabilities, targets)
    return result


def evaluate(weights: str | None, scenes: int, batch_size: int = 50) -> dict:
    bundle = open_model(weights, device="cpu")
    trained = evaluate_network(bundle.network, scenes, batch_size)
    torch.manual_seed(0)
    untrained = timm.create_model(bundle.architecture, num_classes=bundle.network.num_classes).eval()
    baseline = evaluate_network(untrained, scenes, batch_size, with_classification=False)
    return {
        "weights": bundle.weights,
        "scenes": scenes,
        "heldout_seeds": f"{HELDOUT_SEEDS.start}..{HELDOUT_SEEDS.start + scenes - 1}",
        "mAP": trained["mAP"],
        "exact_match": trained["exact_match"],
        "token_map": trained["map"],
        "mass_in_mask": trained["localisation"]["mass_in_mask"],
        "pointing_game": trained["localisation"]["pointing_game"],
        "objects": trained["localisation"]["objects"],
        "untrained_mass_in_mask": baseline["localisation"]["mass_in_mask"],
        "untrained_pointing_game": baseline["localisation"]["pointing_game"],
        "mean_object_area": trained["mean_object_area"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m model.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help=f"weights to evaluate (default: {DEFAULT_WEIGHTS.name})")
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=50)
    arguments = parser.parse_args(argv)
    print(json.dumps(evaluate(arguments.weights, arguments.scenes, arguments.batch_size), indent=2))


if __name__ == "__main__":
    main()
