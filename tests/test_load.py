"""Many clients at once against one server: isolation, bounded concurrency, bounded memory."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import handle_file

pytestmark = [pytest.mark.slow]

EXAMPLES = sorted((Path(__file__).parents[1] / "assets" / "examples").glob("*"))
CLIENTS = 8
ANALYSES_PER_CLIENT = 10
VIEW = ["stage 2 · block 0", "mean", "per map", "inferno", 0.6]


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line")


class ConcurrencyProbe:
    """Wraps Explorer.analyse to record how many analyses ran at the same moment."""

    def __init__(self, explorer):
        self.inner = explorer.analyse
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, *arguments, **keywords):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.inner(*arguments, **keywords)
        finally:
            with self.lock:
                self.running -= 1


def test_concurrent_clients_each_get_their_own_results(app_server, monkeypatch):
    probe = ConcurrencyProbe(app_server.explorer)
    monkeypatch.setattr(app_server.explorer, "analyse", probe)
    images = [EXAMPLES[index % len(EXAMPLES)] for index in range(CLIENTS)]
    # What each image's view says when analysed alone.
    expected = {}
    for image in set(images):
        client = app_server.client()
        client.predict(handle_file(image), "224", api_name="/analyse")
        expected[image] = client.predict(*VIEW, 5, api_name="/token_detail")[2]

    def run_client(image: Path) -> list[bool]:
        client = app_server.client()
        outcomes = []
        for _ in range(ANALYSES_PER_CLIENT):
            client.predict(handle_file(image), "224", api_name="/analyse")
            outcomes.append(client.predict(*VIEW, 5, api_name="/token_detail")[2] == expected[image])
        return outcomes

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(run_client, images))
    assert all(all(outcomes) for outcomes in results)
    assert sum(len(outcomes) for outcomes in results) == CLIENTS * ANALYSES_PER_CLIENT
    assert 1 <= probe.most <= 2  # the analyse event's concurrency limit


def test_memory_stays_flat_over_many_analyses(app_server):
    client = app_server.client()

    def analyse(times: int) -> None:
        for index in range(times):
            client.predict(handle_file(EXAMPLES[index % len(EXAMPLES)]), "224", api_name="/analyse")

    cache = app_server.explorer.cache
    analyse(20)
    after_20, held_after_20 = resident_bytes(), len(cache)
    analyse(180)
    after_200 = resident_bytes()
    assert after_200 <= after_20 * 1.15, (after_20, after_200)
    # One session keeps its latest analyses only, and the cache stays inside its bytes.
    assert len(cache) <= held_after_20 + cache.session_analyses, (held_after_20, len(cache))
    assert cache.total_bytes <= cache.max_bytes
