"""Render the example scenes of the app (``assets/examples/scene_*.png``) from held-out seeds.

    python -m training.examples

Each file is ``scene_<i>_<classes>.png`` for ``heldout_seed(i)`` (``none`` when the scene holds no
class), so its masks can be regenerated exactly with ``make_scene(heldout_seed(i))``. The indices
were picked by eye for teaching: several objects with distractors beside them, a ring alone, a ring
beside an oval ring (a distractor: ring-like, not a ring), and a scene with none of the classes
but two distractors.
"""
from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from training.scenes import CLASSES, Scene, heldout_seed, make_scene

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
HELDOUT_INDICES = (4, 7, 10, 11, 19)
NAME = re.compile(r"scene_(\d+)_.*\.png")


def file_name(index: int, scene: Scene) -> str:
    return f"scene_{index}_{'_'.join(CLASSES[c] for c in scene.classes) or 'none'}.png"


def heldout_index(path: Path) -> int:
    """The held-out index an example scene was rendered from, read from its name."""
    match = NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not named like an example scene (scene_<index>_<classes>.png)")
    return int(match.group(1))


def main() -> None:
    for old in EXAMPLES.glob("scene_*.png"):
        old.unlink()
    for index in HELDOUT_INDICES:
        scene = make_scene(heldout_seed(index))
        Image.fromarray(scene.image).save(EXAMPLES / file_name(index, scene), optimize=True)
        print(file_name(index, scene))


if __name__ == "__main__":
    main()
