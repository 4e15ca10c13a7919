"""Memory levels off under explanations: 8 clients, mixed analyses and every explanation method, 300 requests.

Loopback only and bounded (about three minutes on two CPU cores). Resident memory is read from
/proc/self/statm: the server runs in this process.
"""
from __future__ import annotations

import os
import random
import threading

import numpy as np
from gradio_client import handle_file
from PIL import Image

from viewer.service import EXPLANATION_METHODS

CLIENTS = 8
REQUESTS = 300  # an analysis and an explanation are one request each
MEMORY_BUDGET_GIB = 4.0  # what the README states for the shipped model
SIDES = (224, 480, 800, 1600, 3000)


def resident_gib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30


def test_resident_memory_levels_off_over_300_requests(shipped_app, tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = []
    for side in SIDES:  # noise photos of varied sizes, up to 3000 x 3900
        path = tmp_path / f"noise_{side}.jpg"
        Image.fromarray(rng.integers(0, 256, (side, int(side * 1.3), 3), dtype=np.uint8)).save(path)
        images.append(path)
    methods = list(EXPLANATION_METHODS)
    sent, lock, readings, errors = [0], threading.Lock(), {}, []

    def count() -> int | None:
        with lock:
            if sent[0] >= REQUESTS:
                return None
            sent[0] += 1
            return sent[0]

    def note(request: int) -> None:
        readings[request] = resident_gib()

    def client(seed: int) -> None:
        session, choose = shipped_app.client(), random.Random(seed)
        try:
            while (request := count()) is not None:
                prediction = session.predict(handle_file(choose.choice(images)), "224", api_name="/analyse")[0]
                note(request)
                if (request := count()) is None:
                    return
                top_class = prediction["confidences"][0]["label"]
                session.predict(methods[request % len(methods)], top_class, 2, "per map", "inferno", 0.6,
                                api_name="/explain")
                note(request)
        except Exception as error:  # a failed request fails the test, after the others finish
            errors.append(repr(error))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]  # first: a failed client leaves readings missing
    # Each reading catches up to seven other requests in flight: the figure after a hundred is the
    # median of the readings at its last ten requests.
    after_first = float(np.median([readings[request] for request in range(91, 101)]))
    after_last = float(np.median([readings[request] for request in range(REQUESTS - 9, REQUESTS + 1)]))
    with capsys.disabled():  # the figures belong in the test run's output
        print("\nresident GiB by request:", {k: round(v, 3) for k, v in sorted(readings.items()) if k % 50 == 0},
              f"after the first 100: {after_first:.3f}, after the last 100: {after_last:.3f}, "
              f"peak: {max(readings.values()):.3f}")
    assert after_last <= 1.10 * after_first, readings
    assert max(readings.values()) <= MEMORY_BUDGET_GIB, readings  # at every request
