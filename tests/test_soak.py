"""Memory levels off under explanations: 8 clients, mixed analyses and every explanation method, 400 requests.

Loopback only and bounded (about seven minutes on two CPU cores). Resident memory is read from
/proc/self/statm: the server runs in this process. Under load it is read at every request (the
budget); at rest after the first 150 and after all 400 requests (the growth).
"""
from __future__ import annotations

import os
import random
import threading

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

from analysis.explanations import METHODS
from model.allocator import release_freed_memory

pytestmark = [pytest.mark.slow, pytest.mark.soak]

CLIENTS = 8
WARM_UP = 150  # requests before the first reading at rest
REQUESTS = 400  # in all; an analysis and an explanation are one request each
MEMORY_BUDGET_GIB = 4.0  # what docs/memory-and-limits.md states for the shipped model
# What the last 250 requests may add to the memory held at rest. Their 125 analyses are 4.2 MB apiece
# on the shipped model at 224 (Analysis.nbytes): a cache that kept every one would add 0.51 GiB. A
# healthy server's resident memory at rest still creeps early on, the allocator's fragmentation,
# and levels off (this server alone, after 100, 200, 300, 400 and 500 requests: 1.084, 1.108, 1.142,
# 1.157 and 1.155 GiB, Python's own allocations flat); inside the whole suite it creeps more.
LEAK_ALLOWANCE_GIB = 0.25
SIDES = (224, 480, 800, 1600, 3000)


def resident_gib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30


def test_resident_memory_levels_off_over_400_requests(shipped_app, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = []
    for side in SIDES:  # noise photos of varied sizes, up to 3000 x 3900
        path = tmp_path / f"noise_{side}.jpg"
        Image.fromarray(rng.integers(0, 256, (side, int(side * 1.3), 3), dtype=np.uint8)).save(path)
        images.append(path)
    methods = list(METHODS)
    sessions = [shipped_app.client() for _ in range(CLIENTS)]  # the same 8 sessions in both rounds
    sent, lock, readings, errors = [0], threading.Lock(), {}, []

    def count(last: int) -> int | None:
        with lock:
            if sent[0] >= last:
                return None
            sent[0] += 1
            return sent[0]

    def note(request: int) -> None:
        readings[request] = resident_gib()

    def client(session, seed: int, last: int) -> None:
        choose = random.Random(seed)
        try:
            while (request := count(last)) is not None:
                prediction = session.predict(handle_file(choose.choice(images)), "224", api_name="/analyse")[0]
                note(request)
                if (request := count(last)) is None:
                    return
                top_class = prediction["confidences"][0]["label"]
                session.predict(methods[request % len(methods)], top_class, 2, "per map", "inferno", 0.6,
                                api_name="/explain")
                note(request)
        except Exception as error:  # a failed request fails the test, after the others finish
            errors.append(repr(error))

    def run_until(last: int) -> float:
        """Requests from every client until ``last`` are sent, then the memory the server holds at rest."""
        threads = [threading.Thread(target=client, args=(session, seed * 1000 + last, last))
                   for seed, session in enumerate(sessions)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # At rest, with the free pages every arena keeps by design handed back: what stays is memory
        # still held (where a leak shows) and fragmentation (which levels off).
        release_freed_memory()
        return resident_gib()

    held_after_first = run_until(WARM_UP)
    held_after_last = run_until(REQUESTS)
    assert not errors, errors[:3]  # first: a failed client leaves readings missing
    assert sorted(readings) == list(range(1, REQUESTS + 1))
    with capsys.disabled():  # the figures belong in the test run's output
        print("\nresident GiB by request:", {k: round(v, 3) for k, v in sorted(readings.items()) if k % 50 == 0},
              f"held at rest after the first {WARM_UP}: {held_after_first:.3f}, after all {REQUESTS}: "
              f"{held_after_last:.3f}, peak under load: {max(readings.values()):.3f}")
    assert held_after_last <= held_after_first + LEAK_ALLOWANCE_GIB, (held_after_first, held_after_last)
    assert max(readings.values()) <= MEMORY_BUDGET_GIB, readings  # at every request
