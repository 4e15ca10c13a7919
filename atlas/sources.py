"""What an atlas is built over: a folder of images (classes from subfolders or a labels file) or the first N
held-out generated scenes (classes and object masks known). Items are numbered 0..count-1 in a fixed order, so
a build can stop and resume, and a worker can read any item by its number."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from viewer.errors import UserError
from viewer.inputs import IMAGE_SUFFIXES, images_in, open_image

SCENES_PREFIX = "scenes:"


@dataclass(frozen=True)
class Item:
    """One image of a source: RGB, its classes (indices into the source's class names; empty when unknown) and,
    for scenes, each object's visible pixels with its class."""

    number: int
    image: Image.Image
    classes: tuple[int, ...] = ()
    masks: np.ndarray | None = None  # (K, H, W) bool, the image's own size
    mask_classes: tuple[int, ...] = ()


class SceneSource:
    """The first ``count`` held-out scenes of ``training.scenes``: seeds never seen in training."""

    def __init__(self, count: int):
        from training.scenes import CLASSES, HELDOUT_SEEDS

        if not 1 <= count <= len(HELDOUT_SEEDS):
            raise UserError(f"scenes:N takes N from 1 to {len(HELDOUT_SEEDS):,}, not {count}.")
        self.count = count
        self.class_names = tuple(CLASSES)
        self.description = f"{SCENES_PREFIX}{count} (held-out generated scenes, seeds from {HELDOUT_SEEDS.start})"
        self.has_masks = True

    def item(self, number: int) -> Item:
        from training.scenes import heldout_seed, make_scene

        scene = make_scene(heldout_seed(number))
        return Item(number, Image.fromarray(scene.image), tuple(sorted(set(scene.classes))), scene.masks,
                    tuple(scene.classes))

    def name(self, number: int) -> str:
        from training.scenes import heldout_seed

        return f"scene {heldout_seed(number)}"


class FolderSource:
    """Every image below ``folder``, in sorted order. Classes: a labels file (CSV: path relative to the folder,
    class name), else the first subfolder of each image (ImageNet-val's usual layout), else none."""

    def __init__(self, folder: Path, labels: Path | None = None):
        if not folder.is_dir():
            raise UserError(f"{folder} is not a folder of images.")
        self.folder = folder
        self.paths = images_in(folder)
        if not self.paths:
            raise UserError(f"No images in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))}).")
        self.count = len(self.paths)
        named = self.labels_file(labels) if labels else {
            path: path.relative_to(folder).parts[0] for path in self.paths if len(path.relative_to(folder).parts) > 1}
        self.class_names = tuple(sorted(set(named.values())))
        index = {name: position for position, name in enumerate(self.class_names)}
        self.labels = [index[named[path]] if path in named else None for path in self.paths]
        self.description = f"{folder} ({self.count:,} images, {len(self.class_names)} classes)"
        self.has_masks = False

    def labels_file(self, labels: Path) -> dict[Path, str]:
        try:
            with labels.open(newline="", encoding="utf-8") as handle:
                rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
        except OSError as error:
            raise UserError(f"The labels file cannot be read: {error}.") from None
        if any(len(row) < 2 for row in rows):
            raise UserError("A labels file holds lines of 'path,class name'.")
        return {(self.folder / row[0]).resolve(): row[1].strip() for row in rows} | {
            self.folder / row[0]: row[1].strip() for row in rows}

    def item(self, number: int) -> Item:
        label = self.labels[number]
        return Item(number, open_image(self.paths[number]).image, () if label is None else (label,))

    def name(self, number: int) -> str:
        return str(self.paths[number].relative_to(self.folder))


Source = SceneSource | FolderSource


def open_source(text: str, labels: Path | None = None) -> Source:
    """``scenes:N`` or a folder."""
    if text.startswith(SCENES_PREFIX):
        count = text[len(SCENES_PREFIX):]
        if not count.isdigit():
            raise UserError(f"scenes:N takes a whole number of scenes, not {count!r}.")
        return SceneSource(int(count))
    return FolderSource(Path(text), labels)
