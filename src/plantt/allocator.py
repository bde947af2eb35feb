"""Keep freed memory in the process instead of giving it back to the kernel after every batch.

glibc's ``malloc`` serves every allocation above its mmap threshold (at most 32 MiB by default)
with a fresh ``mmap`` and unmaps it on ``free``. A CNN training step on the CPU allocates and
frees activations of tens to hundreds of MiB per batch, so each step page-faults the same
amount of freshly zeroed memory again: measured on the demo (benchmarks/README.md, "Memory
allocator"), a Washburn fold spent 65 of its 123 seconds in the kernel, and the same fold took
12 seconds once freed memory was kept. Numbers are unchanged (the arithmetic is the same; only
where the memory comes from differs).

:func:`retain_freed_memory` raises the mmap and trim thresholds with ``mallopt``. It is called
by the training, k-mer and interpretation entry points, never at import. Elsewhere than glibc
(macOS, musl) it does nothing. Set ``PLANTT_KEEP_MALLOC=1`` to leave the allocator alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

# mallopt parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Allocations below this come from the heap and are reused; freed heap memory is returned to
#: the kernel only when more than this is free at its top. 1 GiB bounds what is kept.
RETAIN_BYTES = 1 << 30

_done: bool | None = None


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`RETAIN_BYTES` (once per process).

    Returns True when the thresholds were set (now or by an earlier call), False where the C
    library has no ``mallopt``, refused the values, or ``PLANTT_KEEP_MALLOC`` is set.
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("PLANTT_KEEP_MALLOC"):
        log.debug("PLANTT_KEEP_MALLOC is set: the memory allocator is left as it is")
        return _done
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("no mallopt in the C library (%s): allocator left as it is", name)
        return _done
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success and 0 when it refuses a value.
    _done = bool(mallopt(_M_MMAP_THRESHOLD, RETAIN_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, RETAIN_BYTES))
    log.debug("malloc mmap and trim thresholds set to %d bytes: %s", RETAIN_BYTES, _done)
    return _done
