"""Building an atlas: a source's images streamed through the model in batches, one capture each, tallied
(:mod:`atlas.statistics`) and written as Parquet files with thumbnails.

On one machine the batches run here; with Ray, on Ray Data (``map_batches`` over actors that each load the model
once), and their tallies come back through Ray and are merged here in the same order, so both give the same
files. A build checkpoints its tally as it goes and, started again on the same folder, resumes after the last
checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image

from atlas import statistics
from atlas.sources import Item, Source, open_source
from atlas.statistics import BlockLayout, Tally
from model.bundle import ModelBundle
from model.capture import capture
from model.preprocess import preprocess
from viewer.errors import UserError

STATE = "state.npz"  # the tally so far, and the images it holds
THUMBNAIL_SIDE = 112
CHECKPOINT_SECONDS = 30.0


@dataclass(frozen=True)
class Spec:
    """What is asked for, in words that travel (to a Ray worker): the source, the weights, the resolution, the
    batch size."""

    source: str
    weights: str | None = None
    architecture: str | None = None
    resolution: int = 224
    batch: int = 32
    labels: str | None = None
    device: str = "auto"

    def open(self) -> "Plan":
        """The source and the model, opened (a bad value is a UserError, or the loader's CheckpointError)."""
        from model.bundle import open_model

        if self.resolution < 32 or self.batch < 1:
            raise UserError("--resolution takes a side of at least 32 pixels, --batch at least 1 image.")
        return Plan(open_source(self.source, Path(self.labels) if self.labels else None),
                    open_model(self.weights, self.architecture, self.device), self.resolution, self.batch, self)


@dataclass(frozen=True)
class Plan:
    """What is built: from which source, with which model, at which resolution, in batches of ``batch``."""

    source: Source
    bundle: ModelBundle
    resolution: int
    batch: int
    spec: Spec

    def meta(self) -> dict:
        return {"source": self.source.description, "images": self.source.count,
                "classes": list(self.source.class_names), "architecture": self.bundle.architecture,
                "weights": self.bundle.weights, "weights_sha256": weights_hash(self.bundle.network),
                "resolution": self.resolution, "batch": self.batch, "top_k": statistics.TOP_K,
                "crop_share": statistics.CROP_SHARE}


def weights_hash(network: torch.nn.Module) -> str:
    """SHA-256 of the network's parameters and buffers, by name: the weights an atlas was built with."""
    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def batches(count: int, size: int, start: int = 0) -> Iterator[list[int]]:
    for first in range(start, count, size):
        yield list(range(first, min(count, first + size)))


def model_input(item: Item, bundle: ModelBundle, resolution: int) -> tuple[torch.Tensor, np.ndarray | None]:
    """The image as the model sees it, and its objects' masks cut the same way (scenes)."""
    tensor, geometry = preprocess(item.image, bundle.data_config, size=resolution)
    masks = None
    if item.masks is not None and geometry.resized_size == item.image.size and \
            geometry.crop_box == (0, 0, *item.image.size):
        masks = np.asarray(item.masks, bool)  # the model sees the scene as it is
    elif item.masks is not None:
        width, height = geometry.input_size
        masks = np.zeros((len(item.masks), height, width), bool)  # a scene may hold no object at all
        for index, mask in enumerate(item.masks):
            masks[index] = np.asarray(Image.fromarray(mask).resize(geometry.resized_size, Image.NEAREST)
                                      .crop(geometry.crop_box))
    return tensor, masks


class BatchTallier:
    """Captures a batch of a source's images and tallies it: what the local build and each Ray actor run."""

    def __init__(self, plan: Plan):
        self.plan = plan
        self.layouts: list[BlockLayout] | None = None

    def __call__(self, numbers: list[int]) -> Tally:
        plan = self.plan
        items = [plan.source.item(number) for number in numbers]
        inputs = [model_input(item, plan.bundle, plan.resolution) for item in items]
        images = torch.cat([tensor for tensor, _ in inputs]).to(plan.bundle.device)
        with torch.inference_mode():
            _, trace = capture(plan.bundle.network, images, class_names=plan.bundle.class_names,
                               multi_label=plan.bundle.multi_label)
        if self.layouts is None:
            self.layouts = statistics.layouts(trace)
        classes = len(plan.source.class_names)
        masks = [masks for _, masks in inputs]
        scenes = plan.source.has_masks
        coverages = statistics.coverage(masks, [item.mask_classes for item in items], classes,
                                        [layout.grid for layout in self.layouts]) if scenes else None
        object_areas = [float(objects.any(axis=0).mean()) for objects in masks] if scenes else []
        return statistics.tally_batch(trace, self.layouts, numbers, [item.classes for item in items], coverages,
                                      object_areas, classes)


def saved_state(folder: Path, meta: dict) -> tuple[Tally | None, int]:
    """The checkpointed tally of an interrupted build of the same plan, and how many images it holds."""
    path = folder / STATE
    if not path.exists():
        return None, 0
    with np.load(path, allow_pickle=False) as stored:
        named = dict(stored)
    if json.loads(str(named.pop("meta"))) != meta:
        raise UserError(f"{folder} holds another atlas's unfinished build (other source, weights, resolution or "
                        "batch): choose another --out, or empty it.")
    tally = Tally.from_arrays(named)
    return tally, tally.images


def save_state(folder: Path, tally: Tally, meta: dict) -> None:
    """The tally so far, written whole before it replaces the last checkpoint."""
    partial = folder / f".{STATE}.partial"
    with partial.open("wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **tally.arrays())
    os.replace(partial, folder / STATE)


class Progress:
    """A progress line with images a second, on standard error."""

    def __init__(self, total: int, done: int, say: Callable[[str], None]):
        self.total, self.done, self.started, self.first, self.say = total, done, time.perf_counter(), done, say

    def advance(self, count: int) -> None:
        self.done += count
        rate = (self.done - self.first) / max(time.perf_counter() - self.started, 1e-9)
        self.say(f"\r{self.done:,} / {self.total:,} images · {rate:.1f} images/s")


def tallies_locally(plan: Plan, start: int) -> Iterator[tuple[int, Tally]]:
    tallier = BatchTallier(plan)
    for numbers in batches(plan.source.count, plan.batch, start):
        yield len(numbers), tallier(numbers)


def build(plan: Plan, folder: Path, ray_address: str | None = None,
          say: Callable[[str], None] = lambda text: None, stop_after: int | None = None) -> Path:
    """Build (or resume) the atlas of ``plan`` in ``folder``; ``ray_address`` ("auto" or an address) runs the
    batches on Ray Data. ``stop_after``: stop once this many images are tallied and checkpointed, as an interrupted
    build would (for tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = plan.meta()
    tally, done = saved_state(folder, meta)
    progress = Progress(plan.source.count, done, say)
    if ray_address is not None:
        from atlas import distributed

        tallies = distributed.tallies(plan, done, ray_address)
    else:
        tallies = tallies_locally(plan, done)
    last_checkpoint = time.perf_counter()
    for count, batch_tally in tallies:
        if tally is None:
            tally = batch_tally
        else:
            tally.merge(batch_tally)
        progress.advance(count)
        stopping = stop_after is not None and tally.images >= stop_after
        if stopping or time.perf_counter() - last_checkpoint > CHECKPOINT_SECONDS:
            save_state(folder, tally, meta)
            last_checkpoint = time.perf_counter()
        if stopping:
            return folder
    say("\n")
    from atlas import files

    files.write(folder, plan, tally, meta)
    (folder / STATE).unlink(missing_ok=True)
    return folder
