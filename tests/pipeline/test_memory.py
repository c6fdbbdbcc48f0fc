"""``connector.memory``: glibc keeps column-sized freed blocks for reuse (checked in a child
process, since the settings are process-wide)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt tuning applies to glibc on Linux only",
)

# Where does a 16 MiB malloc land: inside the main heap ([heap] in /proc/self/maps), or in
# a mapping of its own (glibc's default for blocks that size, unmapped again when freed)?
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from connector import memory
    applied = memory.retain_freed_memory() if sys.argv[1] == "tuned" else None
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    ptr = libc.malloc(16 * 1024 * 1024)
    heaps = []
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            heaps.append((lo, hi))
    libc.free(ptr)
    print(applied, any(lo <= ptr < hi for lo, hi in heaps))
    """
)


def _probe(mode: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_tuned_process_serves_large_blocks_from_its_heap() -> None:
    assert _probe("tuned") == "True True"


def test_default_process_maps_large_blocks_apart() -> None:
    # the contrast that makes the test above mean something
    assert _probe("default") == "None False"


def test_applied_once() -> None:
    from connector import memory

    first = memory.retain_freed_memory()
    assert memory.retain_freed_memory() is first
