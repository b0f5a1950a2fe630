"""livematte's commands choose how OpenMP threads wait before torch loads libgomp, unless the user chose; importing
the library leaves it to libgomp."""

import re
import subprocess
import sys

import pytest

from pipelines.report import environment_with_openmp_wait

COMMAND = "from livematte.cli import main; main(['config'])"  # torch loads while main() builds its parser
LIBRARY = "import livematte.processor, torch"


def libgomp_settings(code: str = COMMAND, **variables: str) -> dict[str, str]:
    """The settings libgomp reports (OMP_DISPLAY_ENV) in a process that runs `code`."""
    env = environment_with_openmp_wait(variables) | {"OMP_DISPLAY_ENV": "VERBOSE"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                            check=True)
    settings = dict(re.findall(r"^\s*(\w+) = '([^']*)'", result.stderr, re.MULTILINE))
    if "GOMP_SPINCOUNT" not in settings:
        pytest.skip("torch's OpenMP runtime is not libgomp: it does not report GOMP_SPINCOUNT")
    return settings


def test_threads_spin_briefly_by_default():
    assert libgomp_settings()["GOMP_SPINCOUNT"] == "10000"


def test_the_users_own_choice_stands():
    assert libgomp_settings(OMP_WAIT_POLICY="PASSIVE")["GOMP_SPINCOUNT"] == "0"
    assert libgomp_settings(OMP_WAIT_POLICY="ACTIVE")["GOMP_SPINCOUNT"] not in ("0", "10000")
    assert libgomp_settings(GOMP_SPINCOUNT="500")["GOMP_SPINCOUNT"] == "500"


def test_importing_the_library_changes_nothing():
    assert libgomp_settings(LIBRARY)["GOMP_SPINCOUNT"] not in ("0", "10000")
