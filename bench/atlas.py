"""What the token atlas costs: its throughput against plain captures, Ray against one machine, and its memory.

    python -m bench.atlas [--images 256] [--ray-images 1024] [--memory 2000 20000]

On this machine's CPUs, for the shipped model and for dualvit_s at 224 on held-out scenes: images a second of the
atlas build against plain batched captures of the same batches (the same images read and cut the same way; medians
of 3 paired runs; target: ratio at least 0.8, the atlas's own bookkeeping at most a quarter), and of whole builds
on a local Ray of two CPUs against whole builds here (target at least 0.7). Then the peak resident memory of whole builds of scenes:N for each N
of ``--memory``, each in a process of its own (target: within 10% of each other).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from atlas import build as atlas_build
from atlas.build import BatchTallier, Spec, batches, model_input
from atlas.sources import SceneSource
from bench.timing import Figure, paired_median_seconds, parse_bench_arguments, print_table
from model.capture import capture

MODELS = {"shipped model": (None, None), "dualvit_s": (None, "dualvit_s")}
BATCH = 32
REPEATS = 3  # medians of paired runs: a slow spell of the machine weighs on both alike


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


def measure(images: int = 256, memory: tuple[int, ...] = (), ray_images: int = 1024) -> list[Figure]:
    figures = []
    for name, (weights, architecture) in MODELS.items():
        spec = Spec(f"scenes:{images}", weights, architecture, 224, BATCH, device="cpu")
        plan = spec.open()
        timed = paired_median_seconds({"plain": lambda: plain_captures(plan, images),
                                       "atlas": lambda: tallied(plan, images)}, REPEATS, warmup=0)
        plain, atlas = timed["plain"], timed["atlas"]
        figures.append(Figure(f"atlas build / plain captures, {name} 224, {images} scenes, batch {BATCH} "
                              f"({images / atlas:.1f} / {images / plain:.1f} images/s)", plain / atlas, "×", "≥ 0.8"))
        if name == "shipped model":
            figures.append(ray_figure(plan, ray_images))
    peaks = {count: peak_memory(count) for count in memory}
    for count, peak in peaks.items():
        figures.append(Figure(f"peak resident memory, atlas build of scenes:{count:,} (shipped model)", peak, "MiB",
                              "within 10% across N"))
    return figures


def ray_figure(plan, images: int) -> Figure:
    """Whole builds of ``images`` scenes here and on a local Ray of two CPUs (actors start, load the model and
    send their tallies back: a few seconds that a larger build spreads thin)."""
    plan = replace(plan, source=SceneSource(images))
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
    return Figure(f"atlas build on a local Ray of 2 CPUs / here, shipped model 224, {images} scenes "
                  f"({images / on_ray:.1f} / {images / here:.1f} images/s, whole builds)", here / on_ray, "×", "≥ 0.7")


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
    parser.add_argument("--ray-images", type=int, default=1024, help="scenes of the whole builds here and on Ray")
    parser.add_argument("--memory", type=int, nargs="*", default=[2000, 20000])
    arguments = parse_bench_arguments(parser)
    print_table("token atlas", measure(arguments.images, tuple(arguments.memory), arguments.ray_images))


if __name__ == "__main__":
    main()
