"""Median wall-clock timing and the figure rows shared by the bench scripts."""
from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from model.allocator import freed_memory_kept, keep_freed_memory

DECIMALS = {"ms": 1, "MB": 2, "steps": 0, "requests": 0}  # decimals a figure is printed with, by unit (else 2)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""

    def line(self) -> str:
        value = f"{self.value:.1e}" if not self.unit else f"{self.value:.{DECIMALS.get(self.unit, 2)}f}"
        return f"| {self.name} | {value} {self.unit}".rstrip() + f" | {self.target} |"


def median_seconds(function: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    return paired_median_seconds({"only": function}, repeats, warmup)["only"]


def paired_median_seconds(functions: dict[str, Callable[[], object]], repeats: int,
                          warmup: int = 2) -> dict[str, float]:
    """Median seconds of each function, run in turn within every repeat so that a slow spell of a
    shared machine weighs on all of them alike (their ratio is what the targets are about)."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            synchronize()
            start = time.perf_counter()
            function()
            synchronize()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


@dataclass(frozen=True)
class ProcessState:
    """What a bench could change for the rest of the process: ``python -m bench`` runs every bench in one
    process, so each must leave these as it found them (tests/test_bench.py checks it)."""

    grad_enabled: bool
    inference_mode: bool
    threads: int
    interop_threads: int
    default_dtype: torch.dtype
    freed_memory_kept: bool

    @classmethod
    def now(cls) -> "ProcessState":
        return cls(torch.is_grad_enabled(), torch.is_inference_mode_enabled(), torch.get_num_threads(),
                   torch.get_num_interop_threads(), torch.get_default_dtype(), freed_memory_kept())


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def devices() -> list[torch.device]:
    return [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])


def parse_bench_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse a bench's options plus the shared ones, and set the process up as the app does."""
    parser.add_argument("--system-allocator", action="store_true",
                        help="leave glibc handing freed memory back to the OS (the app keeps it)")
    arguments = parser.parse_args()
    if not arguments.system_allocator:
        keep_freed_memory()
    return arguments


def machine() -> str:
    cpu = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} CPU threads"
    gpu = f"; {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "; no CUDA device"
    allocator = "freed memory kept, as in the app" if freed_memory_kept() else "system allocator defaults"
    return f"torch {torch.__version__} on {cpu}{gpu}; {allocator}"


def print_table(title: str, figures: list[Figure]) -> None:
    print(f"# {title} — {machine()}\n")
    print("| figure | value | target |\n| --- | --- | --- |")
    for figure in figures:
        print(figure.line())


def random_dualvit_s_explorer():
    """An explorer over a randomly initialised dualvit_s, loaded through the same code as a user's file."""
    import tempfile
    from pathlib import Path

    from model.bundle import open_model

    # Built through our builder, not by name: the official file, when timed, registers the same name.
    from model.registry import dualvit_s
    from model.weights import convert
    from viewer.service import Explorer

    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "dualvit_s_random.safetensors"
        convert(dualvit_s(num_classes=1000).state_dict(), weights)
        return Explorer(open_model(weights, device="cpu"))


def run_bench(description: str, title: str, measure: Callable[[int], list[Figure]], repeats: int) -> None:
    """The command line of a bench whose only option is ``--repeats``."""
    parser = argparse.ArgumentParser(description=description.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=repeats)
    print_table(title, measure(parse_bench_arguments(parser).repeats))
