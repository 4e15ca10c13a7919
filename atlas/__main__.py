"""``python -m atlas build SOURCE --out DIR [--weights W] [--model M] [--resolution 224] [--batch 32]
[--labels FILE] [--ray auto|ADDRESS|local]``

SOURCE: a folder of images (read recursively; classes from its subfolders or from ``--labels``, a CSV of
``path,class``) or ``scenes:N``, the first N held-out generated scenes. Started again on the same DIR, an
interrupted build resumes. ``--ray`` runs the batches on Ray Data: ``auto`` joins the running cluster, an address
joins that one, ``local`` starts Ray on this machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from atlas.build import Spec, build
from model.weights import CheckpointError
from viewer.errors import UserError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m atlas", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    building = commands.add_parser("build", help="build (or resume) an atlas")
    building.add_argument("source", help="a folder of images, or scenes:N")
    building.add_argument("--out", type=Path, required=True)
    building.add_argument("--weights", help="checkpoint, name or hf:// reference (default: the shipped scene model)")
    building.add_argument("--model", help="architecture, when the weights do not say")
    building.add_argument("--resolution", type=int, default=224)
    building.add_argument("--batch", type=int, default=32)
    building.add_argument("--labels", help="CSV of path,class for a folder without class subfolders")
    building.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    building.add_argument("--ray", metavar="auto|ADDRESS|local", help="run the batches on Ray Data")
    arguments = parser.parse_args(argv)
    spec = Spec(arguments.source, arguments.weights, arguments.model, arguments.resolution, arguments.batch,
                arguments.labels, arguments.device)
    try:
        plan = spec.open()
        folder = build(plan, arguments.out, arguments.ray, say=lambda text: print(text, end="", file=sys.stderr,
                                                                                  flush=True))
    except (UserError, CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote the atlas of {plan.source.count:,} images to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
