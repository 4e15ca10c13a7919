"""Held-out figures of scene weights, beside an untrained model's: what the pictures show, measured.

    python -m training.evaluate [--weights PATH] [--scenes 1000] [--json]

Classification: multi-label mAP and exact match (every class on the right side of 0.5) over
held-out scenes (``training.scenes.HELDOUT_SEEDS``, never trained on), and the share of natural
photographs (``training.photos``) on which no class passes 0.5.

Token maps: for every captured Dual block (``semantic_to_pixel``) and Merge block (``merged``,
the token rows over the pixel columns, renormalised), head mean, and for every object the token
that puts the most mass inside the object's mask:

* **mass in mask**: that mass (a uniform map scores the object's area);
* **IoU 50% / 80%**: intersection over union of the token's 50%- and 80%-mass regions (the
  fewest cells holding that share of its mass, as the page draws them) with the mask;
* **mask cells above uniform**: the share of the mask's cells where the token's attention
  exceeds 1/N;
* **effective support**: exp(entropy) / N, the share of the grid the map is spread over;
* **pointing**: the token's peak cell lies in the mask.

The mask, on each stage's grid, is the cells at least half covered by the object; the mass in
mask weighs every cell by the share of it that the object covers.

Where the misses lie: per class, its AP and how many present ones stay at or under 0.5 and
absent ones pass it; per object count, the share of scenes not matched exactly.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, fields

import numpy as np
import timm
import torch
import torch.nn.functional as F

import model  # noqa: F401
from analysis.trace_maths import mass_region
from model.bundle import DEFAULT_WEIGHTS, ModelBundle, open_model
from model.capture import capture
from model.dualvit import DualViT
from model.map_names import MERGE_PART, MapName
from training.photos import answers, share_saying_none, skimage_photos
from training.scenes import HELDOUT_SEEDS, SceneDataset
from training.train import token_distributions

MASK_COVER = 0.5  # a cell belongs to an object's mask when the object covers at least this much of it


@dataclass(frozen=True)
class MapFigures:
    map: str
    mass_in_mask: float
    iou_50: float
    iou_80: float
    mask_cells_above_uniform: float
    effective_support: float
    pointing: float
    mean_object_area: float
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


def matched(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per scene: every class on the right side of ``threshold``."""
    return ((probabilities > threshold) == labels.astype(bool)).all(axis=1)


def exact_match(probabilities: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    return float(matched(probabilities, labels, threshold).mean())


def class_misses(probabilities: np.ndarray, labels: np.ndarray, class_names: list[str],
                 threshold: float = 0.5) -> list[dict]:
    """Per class: AP, present classes at or under ``threshold`` (missed) and absent ones over it (false)."""
    present = labels.astype(bool)
    above = probabilities > threshold
    return [{"class": name, "AP": average_precision(probabilities[:, c], present[:, c]),
             "missed": int((present[:, c] & ~above[:, c]).sum()), "false": int((~present[:, c] & above[:, c]).sum())}
            for c, name in enumerate(class_names)]


def wrong_by_object_count(probabilities: np.ndarray, labels: np.ndarray, counts: np.ndarray,
                          threshold: float = 0.5) -> list[dict]:
    """For each object count: how many scenes have it, and the share not matched exactly."""
    wrong = ~matched(probabilities, labels, threshold)
    return [{"objects": int(count), "scenes": int((counts == count).sum()), "wrong": float(wrong[counts == count].mean())}
            for count in np.unique(counts)]


def iou(region: np.ndarray, mask: np.ndarray) -> float:
    union = np.count_nonzero(region | mask)
    return np.count_nonzero(region & mask) / union if union else float("nan")


def object_figures(token_maps: np.ndarray, coverage: np.ndarray) -> dict[str, float]:
    """Figures of one object: ``token_maps`` (M, N) distributions, ``coverage`` (N,) cell fractions."""
    mass = token_maps @ coverage
    token_map = token_maps[int(mass.argmax())]
    mask = coverage >= MASK_COVER
    cells = token_map.size
    entropy = -(token_map * np.log(np.clip(token_map, 1e-30, None))).sum()
    return {
        "mass_in_mask": float(mass.max()),
        "iou_50": iou(mass_region(token_map, 0.5), mask),
        "iou_80": iou(mass_region(token_map, 0.8), mask),
        "mask_cells_above_uniform": float((token_map[mask] > 1.0 / cells).mean()) if mask.any() else float("nan"),
        "effective_support": float(np.exp(entropy) / cells),
        "pointing": float(mask[int(token_map.argmax())]),
        "area": float(coverage.sum() / cells),
    }


def token_map_names(network: DualViT) -> list[str]:
    """Every Dual and Merge map the network captures, in order."""
    return [name for name in network.attention_probes() if MapName.parse(name).part in ("semantic_to_pixel", MERGE_PART)]


def evaluate_network(bundle: ModelBundle, scenes: int, batch_size: int) -> dict:
    """mAP, exact match, where the misses lie and per-map token figures of the bundle's network on
    the first ``scenes`` held-out scenes."""
    network = bundle.network
    names = token_map_names(network)
    per_map: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    scores, labels, counts = [], [], []
    loader = torch.utils.data.DataLoader(SceneDataset(HELDOUT_SEEDS[:scenes]), batch_size=batch_size)
    device = next(network.parameters()).device
    for images, batch_labels, _, objects in loader:
        with torch.inference_mode():
            _, trace = capture(network, images.to(device), include=tuple(names), dtype=torch.float32,
                               multi_label=bundle.multi_label)
        scores.append(trace.probabilities.numpy())
        labels.append(batch_labels.numpy())
        counts.append((objects.flatten(2).sum(dim=-1) > 0).sum(dim=-1).numpy())
        for name in names:
            grid = trace.grid(MapName.parse(name).stage)
            coverage = F.adaptive_avg_pool2d(objects, tuple(grid)).flatten(2).numpy()  # (B, objects, N)
            token_maps = token_distributions(name, trace.maps[name], grid.size).numpy()  # (B, M, N)
            for item, item_coverage in enumerate(coverage):
                per_map[name] += [object_figures(token_maps[item], object_coverage)
                                  for object_coverage in item_coverage if object_coverage.sum() > 0]
    probabilities, targets = np.concatenate(scores), np.concatenate(labels)
    maps = []
    for name, figures in per_map.items():
        mean = {key: float(np.nanmean([figure[key] for figure in figures])) for key in figures[0]}
        maps.append(MapFigures(name, mean["mass_in_mask"], mean["iou_50"], mean["iou_80"],
                               mean["mask_cells_above_uniform"], mean["effective_support"], mean["pointing"],
                               mean["area"], len(figures)))
    return {"mAP": mean_average_precision(probabilities, targets),
            "exact_match": exact_match(probabilities, targets), "maps": maps,
            "classes": class_misses(probabilities, targets, list(bundle.class_names)),
            "by_object_count": wrong_by_object_count(probabilities, targets, np.concatenate(counts))}


def untrained_like(bundle: ModelBundle) -> ModelBundle:
    """The same architecture and heads, randomly initialised (seed 0)."""
    torch.manual_seed(0)
    network = timm.create_model(bundle.architecture, num_classes=bundle.network.num_classes).eval()
    return ModelBundle(network, bundle.architecture, "random initialisation", bundle.domain, bundle.class_names,
                       bundle.multi_label, bundle.data_config, torch.device("cpu"), trained=False)


def evaluate(weights: str | None, scenes: int, batch_size: int = 50) -> dict:
    bundle = open_model(weights, device="cpu")
    report = {"weights": bundle.weights, "scenes": scenes,
              "heldout_seeds": f"{HELDOUT_SEEDS.start}..{HELDOUT_SEEDS.start + scenes - 1}"}
    for label, subject in (("trained", bundle), ("untrained", untrained_like(bundle))):
        figures = evaluate_network(subject, scenes, batch_size)
        photos = answers(subject, skimage_photos())
        report[label] = {**figures, "maps": [asdict(row) for row in figures["maps"]],
                         "photos_saying_none": share_saying_none(photos),
                         "photos": [asdict(answer) for answer in photos]}
    return report


TARGET_MAP = "stage2.block0.semantic_to_pixel"  # the last Dual block of stage 2 in dualvit_nano
TARGETS = (  # (figure, where, at least)
    ("mAP", None, 0.95), ("exact_match", None, 0.85), ("photos_saying_none", None, 0.9),
    ("mass_in_mask", TARGET_MAP, 0.8), ("mask_cells_above_uniform", TARGET_MAP, 0.8),
    ("iou_80", TARGET_MAP, 0.5), ("pointing", TARGET_MAP, 0.95),
)


def targets_met(figures: dict) -> list[tuple[str, float, float, bool]]:
    rows = []
    for figure, where, least in TARGETS:
        value = figures[figure] if where is None else next(row[figure] for row in figures["maps"] if row["map"] == where)
        rows.append((figure if where is None else f"{where}: {figure}", value, least, value >= least))
    return rows


def markdown(report: dict) -> str:
    columns = [field.name for field in fields(MapFigures)][1:]
    lines = [f"Weights: {report['weights']}; {report['scenes']} held-out scenes (seeds {report['heldout_seeds']}).", ""]
    for label in ("trained", "untrained"):
        figures = report[label]
        lines += [f"### {label}: mAP {figures['mAP']:.3f}, exact match {figures['exact_match']:.3f}, "
                  f"photos with no class above 0.5: {figures['photos_saying_none']:.0%} "
                  f"({sum(p['top_probability'] <= 0.5 for p in figures['photos'])} of {len(figures['photos'])})", "",
                  "| map | " + " | ".join(columns) + " |", "|" + " --- |" * (len(columns) + 1)]
        for row in figures["maps"]:
            lines.append(f"| {row['map']} | " + " | ".join(
                str(row[c]) if c == "objects" else f"{row[c]:.3f}" for c in columns) + " |")
        lines += ["", "| class | AP | present, at or under 0.5 | absent, over 0.5 |", "| --- | --- | --- | --- |"]
        lines += [f"| {row['class']} | {row['AP']:.3f} | {row['missed']} | {row['false']} |" for row in figures["classes"]]
        lines += ["", "| objects in the scene | scenes | not matched exactly |", "| --- | --- | --- |"]
        lines += [f"| {row['objects']} | {row['scenes']} | {row['wrong']:.1%} |" for row in figures["by_object_count"]]
        lines += ["", "| photo | top class | probability |", "| --- | --- | --- |"]
        lines += [f"| {p['photo']} | {p['top_class']} | {p['top_probability']:.3f} |" for p in figures["photos"]]
        lines.append("")
    lines += ["### targets (trained)", "", "| figure | value | target | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {value:.3f} | ≥ {least} | {'yes' if met else 'no'} |"
              for name, value, least, met in targets_met(report["trained"])]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help=f"weights to evaluate (default: {DEFAULT_WEIGHTS.name})")
    parser.add_argument("--scenes", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    arguments = parser.parse_args(argv)
    report = evaluate(arguments.weights, arguments.scenes, arguments.batch_size)
    print(json.dumps(report, indent=2) if arguments.json else markdown(report))


if __name__ == "__main__":
    main()
