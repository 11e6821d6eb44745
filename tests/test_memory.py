"""The allocator setting of a search (:mod:`evomal_sr.core.memory`): freed memory is reused, not faulted in again.

Each check runs in a fresh process, since the setting is process-wide.
"""

import subprocess
import sys

import pytest

from evomal_sr.core.memory import ALLOCATOR_ENVIRONMENT, MMAP_THRESHOLD, TOP_PAD, TRIM_THRESHOLD

#: Allocates three 24 MiB tensors and frees them, ten times to warm up and then 20 times, and prints the
#: minor page faults of the last 20 cycles. Memory handed back to the OS (a trimmed heap top, an unmapped
#: chunk) is faulted in again: 18,432 pages a cycle. Without the setting glibc's dynamic thresholds
#: sometimes keep the memory anyway and sometimes not (0 or about 245,000 faults, seen here); with it,
#: never a page.
FAULTS = """
import resource, sys, torch
from evomal_sr.core.memory import keep_freed_memory
applied = keep_freed_memory()
def cycle():
    a, b, c = (torch.empty(6 << 20).fill_(1.0) for _ in range(3))
    del c, b, a
for _ in range(10):
    cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    cycle()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_kept_memory_is_not_faulted_in_again():
    done = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    applied, faults = done.stdout.split()
    assert applied == "True"
    assert int(faults) < 1024, faults  # freed memory is reused: not one cycle's pages come back


def test_the_environment_form_says_the_same_as_the_settings():
    assert ALLOCATOR_ENVIRONMENT == {
        "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
        "MALLOC_TOP_PAD_": str(TOP_PAD),
        "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    }
