import subprocess
import sys

import pytest

from livematte.memory import keep_freed_memory

PATTERN = """
import resource, sys
import numpy as np
if sys.argv[1] == "command":
    from livematte.memory import tune_process  # what livematte's commands run first (livematte/cli.py)
    tune_process()
elif sys.argv[1] == "library":
    import livematte.processor  # noqa: F401

def frame():  # four 24 MB arrays alive at once, then freed, as a network's activations are every frame
    layers = [np.ones(6 << 20, np.float32) for _ in range(4)]
    del layers

frame(); frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    frame()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 10)
"""


def faults_per_frame(imported: str) -> int:
    result = subprocess.run([sys.executable, "-c", PATTERN, imported], capture_output=True, text=True, timeout=120,
                            check=True)
    return int(result.stdout)


@pytest.mark.skipif(not keep_freed_memory(), reason="the C library is not glibc: no mallopt policy to apply")
def test_large_arrays_freed_every_frame_are_reused_without_page_faults():
    pages = 4 * (24 << 20) // 4096
    assert faults_per_frame("command") < pages // 100
    assert faults_per_frame("plain") > pages // 100, "this glibc would not page-fault anyway: the test shows nothing"
    assert faults_per_frame("library") > pages // 100, "importing the library must leave the process as it was"
