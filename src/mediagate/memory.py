"""Keeps a long-running process's resident memory close to what it actually uses.

glibc raises its mmap threshold after large blocks are freed, so later large buffers (decoded
images, request bodies) come from the heap and are not given back to the system; with several
threads it also keeps one arena per thread. Pinning the threshold and capping the arenas makes
big temporary buffers return to the system when freed. A no-op where glibc is not in use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_allocator(mmap_threshold: int = 256 * 1024, arena_max: int = 2) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_ARENA_MAX, arena_max)
    )
