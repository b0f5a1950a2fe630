"""A plain, non-editable install works on its own: the wheel carries the presets (configs/, found through
importlib.resources, livematte/config.py) and `livematte run` runs the default job from any folder."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json
from importlib.resources import files

import livematte
from livematte.config import load_config

print(json.dumps({"livematte": livematte.__file__, "default": files("configs").joinpath("default.yaml").is_file(),
                  "background": str(load_config().effects.background.path)}))
"""


def build_wheel(folder: Path) -> Path:
    """Built from a copy of the checkout, so the build's build/ and egg-info stay out of the working tree (and
    files left in build/ by an earlier build cannot slip into the wheel)."""
    tree = folder / "checkout"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "out"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(folder / "dist"), str(tree)], check=True, capture_output=True, timeout=120)
    return next((folder / "dist").glob("livematte-*.whl"))


def install(wheel: Path, venv: Path) -> Path:
    """A venv with the wheel installed that borrows this environment's packages (torch, numpy, ...) but not its
    livematte: a .pth line adds this environment's site-packages after the venv's own. The .pth files in
    there are not run from such a line, so an editable install's finder (which maps livematte to the source
    tree) stays out; --system-site-packages would not do, it gives the base Python's, not this venv's."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True,
                             capture_output=True, text=True, timeout=60).stdout.strip()
    (Path(purelib) / "parent_environment.pth").write_text("".join(f"{path}\n" for path in site.getsitepackages()))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=120)
    return python


def test_a_wheel_installs_with_its_presets_and_runs_the_default_job_from_any_folder(tmp_path):
    venv = tmp_path / "venv"
    python = install(build_wheel(tmp_path), venv)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    probe = subprocess.run([python, "-c", PROBE], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    assert Path(found["livematte"]).is_relative_to(venv), found  # the installed copy, not the source tree
    assert found["default"], "configs/default.yaml is not in the installed package"
    assert Path(found["background"]).is_relative_to(venv) and Path(found["background"]).is_file(), found

    result = subprocess.run([venv / "bin" / "livematte", "run", "--set", "run.max_frames=5", "--set", "source.frames=5",
                             "--set", "source.width=160", "--set", "source.height=90"],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (work / "out" / "livematte.mp4").is_file()
