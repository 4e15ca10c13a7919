"""``python -m bench`` runs every bench in one process: each must leave the process as it found it.

Each bench runs at its smallest setting (one repeat; the explanation and browser benches on the shipped
model only); what it prints is not checked here, only that it ran and what it left behind.
"""
from __future__ import annotations

import pytest
import torch

from bench import app, browser, capture, explanation_time, export, forward, training
from bench.timing import Figure, ProcessState
from model.bundle import open_model
from viewer.service import Explorer

pytestmark = [pytest.mark.slow]

BENCHES = {
    "forward": lambda: forward.measure(1),
    "capture": lambda: capture.measure(1),
    "app": lambda: app.measure(1),
    "explanation_time": lambda: explanation_time.measure(1, explorer=Explorer(open_model(None, device="cpu"))),
    "training": lambda: training.measure(1),
    "browser": lambda: browser.measure(1, models=("shipped model",)),
    "export": lambda: export.measure(1, models=("shipped model",)),
}


@pytest.mark.parametrize("bench", list(BENCHES))
def test_a_bench_leaves_the_process_as_it_found_it(bench):
    before = ProcessState.now()
    figures = BENCHES[bench]()
    assert figures and all(isinstance(figure, Figure) for figure in figures)
    assert ProcessState.now() == before


def test_the_check_sees_what_a_bench_could_leave_behind():
    before = ProcessState.now()
    with torch.no_grad():
        assert ProcessState.now() != before  # grad mode off inside
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        assert ProcessState.now() != before
    finally:
        torch.set_num_threads(threads)
    assert ProcessState.now() == before
