"""The app's allocator setting: glibc keeps freed memory for the next forward pass."""
from __future__ import annotations

import platform

import torch

from model.allocator import freed_memory_kept, keep_freed_memory


def test_glibc_takes_the_setting_and_tensors_still_work():
    taken = keep_freed_memory()
    assert taken == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
    assert freed_memory_kept() == taken
    big = torch.ones(16 << 20, dtype=torch.uint8)  # 16 MiB: now from the heap rather than mmap
    assert int(big.sum()) == 16 << 20
    del big
    assert int(torch.zeros(16 << 20, dtype=torch.uint8).sum()) == 0
