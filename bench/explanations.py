"""Localisation and faithfulness of every explanation method, on held-out scenes with exact masks.

    python -m bench.explanations [--scenes 100] [--weights PATH] [--images DIR] [--threads N] [--out PATH]

Every map explains the predicted (top) class. Localisation (scenes only; the target objects are
those of the predicted class, or all objects when it is absent): pointing game (the map's peak
lies in the union of their masks) and mass in mask (share of the map's positive mass inside it),
with every map resized to the model input bilinearly. Faithfulness: deletion and insertion AUC of
the predicted class's probability (sigmoid for multi-label weights, softmax otherwise), pixels
removed / added in order of the map's value in 16 steps, removed pixels set to 0 (the mean colour
once normalised). ``--images DIR`` explains any images (no masks): faithfulness only.

Step counts are cut so that 100 scenes take a few minutes on two CPU cores with dualvit_nano:
IG 8 steps, SmoothGrad 4 samples x 4 steps, occlusion windows of 64 px at stride 32. Prints a
markdown table and writes it to ``assets/EXPLANATIONS.md`` (``--out``).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch
from PIL import Image

import model  # noqa: F401
from analysis import attribution, trace_maths
from bench.timing import machine
from model.bundle import ASSETS, DEFAULT_WEIGHTS, ModelBundle, open_model
from model.capture import capture, probabilities_of
from model.preprocess import preprocess
from training.scenes import HELDOUT_SEEDS, heldout_seed, make_scene, normalise_image

DEFAULT_OUT = ASSETS / "EXPLANATIONS.md"
CURVE_STEPS = 16
IG_STEPS = 8
SMOOTH_SAMPLES, SMOOTH_STEPS = 4, 4
OCCLUSION_WINDOW, OCCLUSION_STRIDE = 64, 32
SCORE_BATCH = 16  # one curve's worth of images per forward
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
DASH = "—"


@dataclass(frozen=True)
class Sample:
    """``images`` (1, 3, H, W) to explain for class ``target``; ``objects``: (K, H, W) target masks, or None."""

    images: torch.Tensor
    target: int
    objects: np.ndarray | None
    index: int


@dataclass(frozen=True)
class Method:
    name: str
    explain: Callable[[torch.nn.Module, Sample], np.ndarray]
    needs_masks: bool = False


@dataclass
class Scores:
    pointing: list[float] = field(default_factory=list)
    mass: list[float] = field(default_factory=list)
    deletion: list[float] = field(default_factory=list)
    insertion: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


# ----------------------------------------------------------------------------- maps


def semantic_token_map(network: torch.nn.Module, sample: Sample) -> np.ndarray:
    """(H2, W2): for each target object, the token whose head-mean map puts most mass in it (as in
    training/evaluate.py, last Dual block of stage 2); the mean of those tokens' maps. Chosen with the masks."""
    block = len(network.stages[1].blocks) - 1
    name = f"stage2.block{block}.semantic_to_pixel"
    _, trace = capture(network, sample.images, include=(name,), dtype=torch.float32)
    maps = trace_maths.token_maps(trace, 2, block)
    grid = trace.grid(2)
    coverage = np.stack([cv2.resize(mask.astype(np.float32), (grid.width, grid.height), interpolation=cv2.INTER_AREA)
                         for mask in sample.objects])
    best_tokens = (coverage.reshape(len(coverage), -1) @ maps.reshape(len(maps), -1).T).argmax(axis=1)
    return maps[best_tokens].mean(axis=0)


def class_attention(network: torch.nn.Module, sample: Sample) -> np.ndarray:
    _, trace = capture(network, sample.images, include=(trace_maths.CLASS_ATTENTION,), dtype=torch.float32)
    return trace_maths.class_attention_map(trace)


def dual_rollout(network: torch.nn.Module, sample: Sample) -> np.ndarray:
    _, trace = capture(network, sample.images, dtype=torch.float32)
    return attribution.dual_rollout(trace)


def random_map(_network: torch.nn.Module, sample: Sample) -> np.ndarray:
    return np.random.default_rng(sample.index).random(sample.images.shape[-2:]).astype(np.float32)


def methods(with_aux_head: bool) -> list[Method]:
    chosen = [
        Method(f"Integrated gradients ({IG_STEPS} steps)",
               lambda net, s: attribution.integrated_gradients(net, s.images, s.target, steps=IG_STEPS)),
        Method(f"SmoothGrad IG ({SMOOTH_SAMPLES} samples × {SMOOTH_STEPS} steps)",
               lambda net, s: attribution.integrated_gradients(net, s.images, s.target, steps=SMOOTH_STEPS, smooth=True,
                                                           samples=SMOOTH_SAMPLES, seed=s.index)),
        Method("Grad-CAM (stage-4 pixel tokens)", lambda net, s: attribution.grad_cam(net, s.images, s.target)),
        Method(f"Occlusion ({OCCLUSION_WINDOW} px, stride {OCCLUSION_STRIDE})",
               lambda net, s: attribution.occlusion(net, s.images, s.target, OCCLUSION_WINDOW, OCCLUSION_STRIDE)),
    ]
    if with_aux_head:
        chosen.append(Method("Aux head class map", lambda net, s: attribution.aux_class_map(net, s.images, s.target)))
    return chosen + [
        Method("Dual rollout", dual_rollout),
        Method("Semantic tokens (best per object, chosen with the masks)", semantic_token_map, needs_masks=True),
        Method("Class attention (stage-4 pixels)", class_attention),
        Method("Random", random_map),
    ]


# ----------------------------------------------------------------------------- scoring


def class_probability(network: torch.nn.Module, target: int, multi_label: bool) -> Callable[[np.ndarray], np.ndarray]:
    """(K, C, H, W) -> (K,) the target's probability, in forwards of SCORE_BATCH images."""
    def score(batch: np.ndarray) -> np.ndarray:
        values = []
        with torch.inference_mode():
            for start in range(0, len(batch), SCORE_BATCH):
                logits = network(torch.from_numpy(batch[start:start + SCORE_BATCH]))
                values.append(probabilities_of(logits, multi_label)[:, target].numpy())
        return np.concatenate(values)
    return score


def evaluate_sample(network: torch.nn.Module, method: Method, sample: Sample, multi_label: bool,
                    scores: Scores) -> None:
    """Time the method's map on ``sample`` and add its localisation and faithfulness to ``scores``."""
    start = time.perf_counter()
    saliency = method.explain(network, sample)
    scores.seconds.append(time.perf_counter() - start)
    image = sample.images[0].numpy()
    saliency = attribution.resize_map(saliency, image.shape[1:])
    if sample.objects is not None:
        union = sample.objects.any(axis=0)
        scores.pointing.append(attribution.pointing_game(saliency, union))
        scores.mass.append(attribution.mass_in_mask(saliency, union))
    deletion, insertion = attribution.deletion_insertion_auc(
        class_probability(network, sample.target, multi_label), image, saliency, steps=CURVE_STEPS)
    scores.deletion.append(deletion)
    scores.insertion.append(insertion)


def predicted_class(network: torch.nn.Module, images: torch.Tensor) -> int:
    with torch.inference_mode():
        return int(network(images)[0].argmax())


# ----------------------------------------------------------------------------- inputs


def scene_samples(network: torch.nn.Module, count: int) -> list[Sample]:
    """The first ``count`` held-out scenes that hold objects (a scene of none of the classes has no mask)."""
    samples = []
    for index in range(len(HELDOUT_SEEDS)):
        if len(samples) == count:
            break
        scene = make_scene(heldout_seed(index))
        if not scene.classes:
            continue
        images = normalise_image(scene.image).unsqueeze(0)
        target = predicted_class(network, images)
        of_class = [mask for mask, cls in zip(scene.masks, scene.classes) if cls == target]
        objects = np.stack(of_class) if of_class else scene.masks
        samples.append(Sample(images, target, objects, index))
    return samples


def folder_samples(bundle: ModelBundle, folder: Path) -> list[Sample]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    samples = []
    for index, path in enumerate(paths):
        images, _ = preprocess(Image.open(path), bundle.data_config)
        samples.append(Sample(images, predicted_class(bundle.network, images), None, index))
    return samples


# ----------------------------------------------------------------------------- report


def mean_or_dash(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" if values else DASH


def table(rows: dict[str, Scores]) -> str:
    lines = ["| method | pointing | mass in mask | deletion AUC (lower is better) | insertion AUC (higher is better) "
             "| seconds per image |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, scores in rows.items():
        cells = [name, *(mean_or_dash(values) for values in (scores.pointing, scores.mass, scores.deletion,
                                                             scores.insertion)), f"{np.mean(scores.seconds):.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(with_masks: bool, with_aux_head: bool) -> list[str]:
    lines = ["Maps are resized to the model input with bilinear interpolation (cv2.INTER_LINEAR) before scoring; "
             f"deletion/insertion use {CURVE_STEPS} steps with removed pixels set to 0 (the normalised mean colour)."]
    if with_masks:
        lines.append("Localisation targets: the objects of the predicted class (all objects when it is absent). "
                     "The semantic-token row picks its tokens with those masks, so its localisation is an upper bound.")
    else:
        lines.append("No masks: localisation is not measured; the semantic-token row (which needs masks) is left out.")
    if not with_aux_head:
        lines.append("These weights have no token-labeling head: no aux-head row.")
    return [f"_{line}_" for line in lines]


def run(arguments: argparse.Namespace) -> str:
    bundle = open_model(arguments.weights, device="cpu")
    network = bundle.network.eval()
    started = time.perf_counter()
    if arguments.images:
        samples, source = folder_samples(bundle, Path(arguments.images)), f"{arguments.images} (no masks)"
    else:
        samples = scene_samples(network, arguments.scenes)
        source = (f"the first {len(samples)} held-out scenes with objects (seeds {HELDOUT_SEEDS.start}.."
                  f"{heldout_seed(samples[-1].index)})")
    with_masks = samples[0].objects is not None
    with_aux_head = bool(network.token_label)
    rows: dict[str, Scores] = {}
    for method in methods(with_aux_head):
        if method.needs_masks and not with_masks:
            continue
        rows[method.name] = Scores()
        for sample in samples:
            evaluate_sample(network, method, sample, bundle.multi_label, rows[method.name])
    total = time.perf_counter() - started
    command = " ".join(["python -m bench.explanations", *sys.argv[1:]])
    header = [f"`{command}`",
              f"weights {bundle.weights}; {len(samples)} images from {source}; {total:.0f} s in all on {machine()}."]
    return "\n".join([*header, "", table(rows), "", *notes(with_masks, with_aux_head), ""])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.explanations", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help=f"weights to explain (default: {DEFAULT_WEIGHTS.name})")
    parser.add_argument("--scenes", type=int, default=100, help="held-out scenes (default 100)")
    parser.add_argument("--images", help="a folder of images to explain instead (faithfulness only)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"markdown output (default {DEFAULT_OUT})")
    arguments = parser.parse_args()
    if arguments.threads:
        torch.set_num_threads(arguments.threads)
    report = run(arguments)
    print(report)
    arguments.out.write_text(report)


if __name__ == "__main__":
    main()
