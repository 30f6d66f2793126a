"""glibc malloc tuned for inference on large images: freed memory kept for reuse instead of returned per tensor.

A feature map of a 2-megapixel image is 0.1–0.9 GB. With glibc's defaults each one is a fresh ``mmap`` that the
kernel hands out 4 KiB at a time: every first touch of a page is a fault plus zeroing, and on the project's VM a fault
costs about 10 µs. Measured at 1900×1060 (benchmarks/speed.py and ``/usr/bin/time`` page-fault counts):

- ``reuse_freed_memory``: large blocks come from the heap (``M_MMAP_MAX=0``) and freed memory is never trimmed, so a
  later layer, window or image reuses pages already touched. The fault cost had been 35–40 % of HDRUNet's CPU time on
  a 1060×392 window: 1900×1060 tiled HDRUNet 27.5 s → 17.3 s, for about 15 % more peak RSS. A 1 GiB trim threshold
  (tried first) still gave SingleHDR's windows 0.7–1.1 million faults each (29–34 s per 1152×1312 window); never
  trimmed, a second window faults no more (19 s). What stays resident is the heap's high-water mark, which every later
  window reuses.
- transparent huge pages, tried and not adopted. glibc's ``glibc.malloc.hugetlb=1`` tunable (read at process start
  only) has malloc ask for 2 MiB pages. Measured as ``GLIBC_TUNABLES=glibc.malloc.hugetlb=0 (or 1) /usr/bin/time zoo
  predict --model M --threads 2`` on a 1900×1060 PNG, probes cached, on the AVX-512 VM, two interleaved
  runs each, tunable off / on: SingleHDR 51.7, 40.7 s / 42.5, 38.3 s (its 1–2 M first-touch faults drop to 0.1 M);
  HDRUNet 19.7, 17.1 s / 20.2, 22.1 s; the two-stage net 28.9, 27.8 s / 29.1, 29.0 s. The first window of a process
  pays for the huge pages (HDRUNet's: 2.2 s → 4.5–5.1 s) and later windows gain nothing, so only SingleHDR comes out
  ahead. A SingleHDR user can still set ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` for ``zoo predict``.

``reuse_freed_memory`` is process-wide, so the library never applies it implicitly: ``zoo predict`` (and
benchmarks/speed.py's ``optimized`` and ``tiled`` paths, which measure it) does.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)
NEVER_TRIM = -1  # M_TRIM_THRESHOLD as glibc reads it (size_t): SIZE_MAX, so free memory is kept for reuse


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
        libc.malloc_trim.argtypes = (ctypes.c_size_t,)
        return libc
    except (OSError, AttributeError, TypeError):  # not glibc
        return None


def reuse_freed_memory() -> bool:
    """Make glibc's malloc serve large blocks from its heap and keep freed memory for reuse (``M_MMAP_MAX=0``, the
    heap never trimmed), instead of one ``mmap``/``munmap`` pair per feature map. Process-wide. The cost is a higher
    peak RSS (freed blocks are not returned, so fragmentation stays resident; ``zoo.tiling.SAFETY`` accounts for it).
    Returns False (and changes nothing) where the C library is not glibc."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def release_free_memory() -> None:
    """Return the heap's free memory to the OS (glibc ``malloc_trim``; a no-op elsewhere). ``zoo.tiling`` calls it
    after its probes, so their memory does not stay resident beside the tiles'."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
