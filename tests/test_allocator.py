"""plantt.allocator: freed memory is kept in the process, so a second allocation of the same size
does not page-fault its memory again (the cost that halved CPU training speed)."""

import json
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, json, resource
from plantt.allocator import retain_freed_memory
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
ok = retain_freed_memory()
assert retain_freed_memory() == ok  # idempotent

def touch_and_free(n):
    # What a tensor's storage does (numpy would ask for huge pages, torch does not).
    block = libc.malloc(n)
    ctypes.memset(block, 1, n)
    libc.free(block)

touch_and_free(200_000_000)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free(200_000_000)
print(json.dumps({"set": ok, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def _probe(env_extra: dict[str, str]) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if k != "PLANTT_KEEP_MALLOC"} | env_extra
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env,
                         check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt thresholds are glibc's")
def test_second_allocation_reuses_the_first_ones_pages():
    kept = _probe({})
    left_alone = _probe({"PLANTT_KEEP_MALLOC": "1"})
    assert kept["set"] is True and left_alone["set"] is False
    pages = 200e6 / 4096
    # Left alone, glibc unmaps the freed 200 MB and the second array faults every page again.
    assert left_alone["faults"] > 0.5 * pages
    assert kept["faults"] < 0.05 * pages
