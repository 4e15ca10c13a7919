"""What the token atlas costs: its throughput against plain captures, Ray against one machine, and its memory.

    python -m bench.atlas [--images 256] [--memory 2000 20000]

On this machine's CPUs, for the shipped model and for dualvit_s at 224 on held-out scenes: images a second of the
atlas build against plain batched captures of the same batches (the same images read and cut the same way; target:
ratio at least 0.8, the atlas's own bookkeeping at most a quarter), and of the build on a local Ray of two CPUs
against the build here (target at least 0.7). Then the peak resident memory of whole builds of scenes:N for each N
of ``--memory``, each in a process of its own (target: within 10% of each other).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from atlas import build as atlas_build
from atlas.build import BatchTallier, Spec, batches, model_input
from bench.timing import Figure, parse_bench_arguments, print_table
from model.capture import capture

MODELS = {"shipped model": (None, None), "dualvit_s": (None, "dualvit_s")}
BATCH = 32


def plain_captures(plan, count: int) -> float:
    """Seconds for the plain batched captures of ``count`` images: read, cut, captured, nothing kept."""
    started = time.perf_counter()
    for numbers in batches(count, plan.batch):
        items = [plan.source.item(number) for number in numbers]
        images = torch.cat([model_input(item, plan.bundle, plan.resolution)[0] for item in items])
        with torch.inference_mode():
            capture(plan.bundle.network, images)
    return time.perf_counter() - started


def tallied(plan, count: int) -> float:
    tallier = BatchTallier(plan)
    started = time.perf_counter()
    for numbers in batches(count, plan.batch):
        tallier(numbers)
    return time.perf_counter() - started


def measure(images: int = 256, memory: tuple[int, ...] = ()) -> list[Figure]:
    figures = []
    for name, (weights, architecture) in MODELS.items():
        spec = Spec(f"scenes:{images}", weights, architecture, 224, BATCH, device="cpu")
        plan = spec.open()
        tallied(plan, BATCH)  # warm up
        plain, atlas = plain_captures(plan, images), tallied(plan, images)
        figures.append(Figure(f"atlas build / plain captures, {name} 224, {images} scenes, batch {BATCH} "
                              f"({images / atlas:.1f} / {images / plain:.1f} images/s)", plain / atlas, "×", "≥ 0.8"))
        if name == "shipped model":
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                atlas_build.build(plan, Path(folder) / "here")
                here = time.perf_counter() - started
                import ray

                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
                try:
                    started = time.perf_counter()
                    atlas_build.build(plan, Path(folder) / "ray", ray_address="auto")
                    on_ray = time.perf_counter() - started
                finally:
                    ray.shutdown()
            figures.append(Figure(f"atlas build on a local Ray of 2 CPUs / here, {name} 224, {images} scenes "
                                  f"({images / on_ray:.1f} / {images / here:.1f} images/s, whole builds)",
                                  here / on_ray, "×", "≥ 0.7"))
    peaks = {count: peak_memory(count) for count in memory}
    for count, peak in peaks.items():
        figures.append(Figure(f"peak resident memory, atlas build of scenes:{count:,} (shipped model)", peak, "MiB",
                              "within 10% across N"))
    return figures


def peak_memory(count: int) -> float:
    """MiB at most resident in a process that builds the atlas of scenes:``count``."""
    with tempfile.TemporaryDirectory() as folder:
        script = ("import resource, sys; from pathlib import Path; from atlas.build import Spec, build; "
                  f"build(Spec('scenes:{count}', batch={BATCH}, device='cpu').open(), Path(sys.argv[1])); "
                  "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        result = subprocess.run([sys.executable, "-c", script, folder], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parents[1])
    return int(result.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--memory", type=int, nargs="*", default=[2000, 20000])
    arguments = parse_bench_arguments(parser)
    print_table("token atlas", measure(arguments.images, tuple(arguments.memory)))


if __name__ == "__main__":
    main()
