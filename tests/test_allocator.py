"""The app's allocator settings: glibc keeps freed memory for the next forward pass, and hands it
back when the server asks after an explanation.

Each check runs in a fresh interpreter, as the settings must be made before threads start and
cannot be undone in this one. Page faults and resident pages are the kernel's own counts.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the settings are glibc's; elsewhere keep_freed_memory() returns False")

ROOT = Path(__file__).parents[1]
PROBE = """
import json, os, resource, sys, torch
from model.allocator import freed_memory_kept, keep_freed_memory, release_freed_memory
taken = keep_freed_memory() if sys.argv[1] == "keep" else False
size = 16 << 20  # 4,096 pages of 4 KiB

def resident_pages():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1])

faults = []  # page faults of each round: allocate 16 MiB, write it, free it
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty(size, dtype=torch.uint8)
    block.fill_(1)
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
kept_pages = resident_pages()
released = release_freed_memory()
print(json.dumps({"taken": taken, "kept": freed_memory_kept(), "faults": faults,
                  "released": released, "pages_freed_by_release": kept_pages - resident_pages(),
                  "page_size": os.sysconf("SC_PAGE_SIZE")}))
"""


def probe(mode: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(result.stdout)


@pytest.mark.slow
def test_a_second_large_allocation_reuses_the_freed_heap():
    kept, system = probe("keep"), probe("system")
    pages = (16 << 20) // kept["page_size"]
    assert kept["taken"] and kept["kept"] and not system["kept"]
    # glibc's default maps a 16 MiB block afresh and unmaps it when freed, so the next rounds fault it
    # in again (its adaptive threshold moves the block to the heap only after a few rounds)...
    assert min(system["faults"][:2]) >= pages // 2, system
    # ...and with the setting the second or third round reuses the freed heap, already resident (a
    # small allocation of the interpreter's may take the freed block's place in one round).
    assert kept["faults"][0] >= pages // 2 and min(kept["faults"][1:3]) < pages // 10, kept


@pytest.mark.slow
def test_release_hands_the_kept_memory_back():
    kept = probe("keep")
    pages = (16 << 20) // kept["page_size"]
    assert kept["released"]
    assert kept["pages_freed_by_release"] >= pages // 2, kept
