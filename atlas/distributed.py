"""The atlas's batches on Ray Data: each actor opens the source and loads the model once, tallies whole batches
(the same batches as a build on one machine), and the tallies come back through Ray in order.

Ray is imported here alone: a build on one machine never needs it installed.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from atlas.build import BatchTallier, Plan, Spec, batches
from atlas.statistics import Tally
from viewer.errors import UserError

LOCAL = "local"  # start a Ray of this machine's CPUs rather than join a cluster


class RayTallier:
    """One Ray actor: the model loaded once, a batch's tally returned as one row of arrays."""

    def __init__(self, spec: Spec, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.tallier = BatchTallier(spec.open())

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tallies = [self.tallier(list(range(int(first), int(last)))) for first, last in zip(rows["first"], rows["last"])]
        named = [tally.arrays() for tally in tallies]
        return {name: np.stack([one[name] for one in named]) for name in named[0]}


def tallies(plan: Plan, start: int, address: str, cpus_per_worker: int = 1) -> Iterator[tuple[int, Tally]]:
    """Each batch's tally, in the batches' order, from actors on the Ray cluster at ``address`` ("auto", an
    address, or "local")."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray Data: pip install 'ray[data]'.") from None
    if not ray.is_initialized():
        ray.init(address=None if address == LOCAL else address, log_to_driver=False,
                 include_dashboard=False)
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the driver merges in the batches' order: the same sums
    context.enable_progress_bars = False
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    # One actor a GPU where the cluster has them (each batch on its GPU), else one a CPU (or cpus_per_worker).
    workers = gpus or max(1, int(resources.get("CPU", 1)) // cpus_per_worker)
    spans = [{"first": numbers[0], "last": numbers[-1] + 1} for numbers in batches(plan.source.count, plan.batch, start)]
    dataset = ray.data.from_items(spans, override_num_blocks=len(spans)).map_batches(
        RayTallier, fn_constructor_kwargs={"spec": plan.spec, "threads": cpus_per_worker}, batch_size=1,
        concurrency=workers, num_cpus=cpus_per_worker, num_gpus=1 if gpus else 0, batch_format="numpy")
    for row in dataset.iter_rows():
        tally = Tally.from_arrays({name: np.asarray(value) for name, value in row.items()})
        yield tally.images, tally
