"""Peak resident memory of the server's heaviest work, step by step, for the memory budget (docs/memory-and-limits.md).

    python -m bench.memory [--model dualvit_s] [--resolution 384] [--megapixels 40]

Without --model it measures the shipped model; a named architecture runs randomly initialised
(its memory is the trained one's). Each step reports the process's peak resident memory while it
ran and what stays resident after it, with the server's allocator settings and limits. The budget
line adds what the limits allow at once: the largest explanation (they run one at a time, under the
model's lock) while as many uploads are decoded and analysed as may run at once.
"""
from __future__ import annotations

import argparse
import io
import time

import numpy as np
from PIL import Image

from analysis.explanations import METHODS
from model.allocator import keep_freed_memory
from model.bundle import open_model
from viewer.inputs import open_image
from viewer.limits import Limits
from viewer.service import Explorer


def status_gib(field: str) -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2 ** 20
    raise LookupError(field)


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # resets VmHWM to the current resident size (Linux 4.0 and later)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="architecture; default the shipped model")
    parser.add_argument("--resolution", default="384", choices=["224", "384", "aspect"])
    parser.add_argument("--megapixels", type=float, default=Limits.max_pixels / 1e6)
    arguments = parser.parse_args()
    keep_freed_memory()
    limits = Limits()
    explorer = Explorer(open_model(None, arguments.model, device="cpu"), limits)
    width = int((arguments.megapixels * 1e6 * 4 / 3) ** 0.5)
    height = int(arguments.megapixels * 1e6 / width)
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=90)
    upload = buffer.getvalue()
    del noise
    print(f"{explorer.bundle.architecture}, {width}×{height} upload, {arguments.resolution}; "
          f"start {status_gib('VmRSS'):.2f} GiB resident")
    print("| step | peak GiB | after GiB | seconds |\n| --- | --- | --- | --- |")
    steps: dict[str, float] = {}

    def step(name: str, work) -> object:
        reset_peak()
        start = time.perf_counter()
        result = work()
        steps[name] = status_gib("VmHWM")
        print(f"| {name} | {steps[name]:.2f} | {status_gib('VmRSS'):.2f} | {time.perf_counter() - start:.1f} |",
              flush=True)
        return result

    before_upload = status_gib("VmRSS")
    loaded = step("decode", lambda: open_image(upload, limits.max_pixels))
    key = step("analyse", lambda: explorer.analyse(loaded.image, arguments.resolution))
    upload_extra = max(steps["decode"], steps["analyse"]) - before_upload
    del loaded
    target = explorer.get(key).trace.top_classes(1)[0][0]
    for method in METHODS:
        step(method, lambda: explorer.explain(explorer.explain_request(key, method, target, 2)))
    largest = max(steps[method] for method in METHODS)
    budget = largest + limits.concurrent_analyses * upload_extra
    print(f"largest explanation {largest:.2f} GiB; with {limits.concurrent_analyses} analyses beside it "
          f"(+{upload_extra:.2f} GiB each): {budget:.2f} GiB")


if __name__ == "__main__":
    main()
