"""Training end to end on CPU: the CI preset (configs/train_tiny.yaml) overfits its 8 generated
images, installs weights the product loads, and evaluates; a resumed run ends in the same state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from livematte.model.checkpoint import FORMAT, installed_weights
from livematte.train.checkpoints import latest_checkpoint, read_checkpoint
from livematte.train.config import load_train_config
from livematte.train.log import read_log
from livematte.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "train_tiny.yaml"


def livematte(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "livematte.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1800)


def test_tiny_preset_trains_installs_and_evaluates_end_to_end(tmp_path):
    result = livematte("train", "--config", str(TINY), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    checkpoint = Path(result.stdout.strip().splitlines()[-1])
    assert checkpoint == tmp_path / "out" / "train" / "tiny" / "checkpoints" / "step_00000100.pt"
    assert read_checkpoint(checkpoint)["step"] == 100

    records = read_log(tmp_path / "out" / "train" / "tiny" / "log.jsonl")
    assert [r["step"] for r in records] == list(range(1, 101))
    total = np.array([r["loss"]["total"] for r in records])
    assert np.isfinite(total).all()
    assert total[-10:].mean() < 0.8 * total[:10].mean(), total  # 8 images, 100 steps: it overfits
    assert (tmp_path / "out" / "train" / "tiny" / "loss.png").read_bytes()[:4] == b"\x89PNG"

    (weights,) = [w for w in installed_weights() if w.name == "tiny-synthetic"]
    assert json.loads(weights.path.with_suffix(".json").read_text())["format"] == FORMAT

    report = tmp_path / "eval.json"
    result = livematte("eval", "out/data/synthetic_tiny", "--weights", "tiny-synthetic", "--input-size", "64x64",
                       "--min-area", "20", "--device", "cpu", "--out", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scores = json.loads(report.read_text())
    assert scores["images"] == 8 and scores["people"] >= 16 and scores["weights"] == "tiny-synthetic"
    assert len(scores["instance"]) == 2 and scores["image"]["mad"] < 1.0

    result = livematte("train", "--config", str(TINY), "--install", str(checkpoint), "--set", "run.install_as=again",
                       cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {"tiny-synthetic", "again"} <= {w.name for w in installed_weights()}


def test_resume_without_a_checkpoint_says_so(tmp_path):
    result = livematte("train", "--config", str(TINY), "--resume", cwd=tmp_path)
    assert result.returncode == 2 and "no checkpoint in out/train/tiny/checkpoints to resume" in result.stderr


def test_a_resumed_run_ends_in_the_state_of_an_uninterrupted_one(tmp_path):
    def config(name: str):
        return load_train_config(TINY, [f"run.out={tmp_path / name}", f"data.write_to={tmp_path / 'data'}",
                                        "run.steps=2", "run.batch_size=1", "run.install_as=null",
                                        "model.freeze_backbone=true"])

    straight = Trainer(config("straight"))
    initial_backbone = {k: v.clone() for k, v in straight.state.model.backbone.state_dict().items()}
    straight.run()
    Trainer(config("resumed")).run(stop=1)
    resumed = Trainer(config("resumed"), resume=latest_checkpoint(tmp_path / "resumed"))
    assert resumed.start == 1
    resumed.run()

    a, b = straight.state, resumed.state
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, b.model.state_dict()[name]), name
    for name, tensor in a.model.backbone.state_dict().items():
        assert torch.equal(tensor, initial_backbone[name]), f"frozen {name} changed"
    for key, state in a.optimizer.state_dict()["state"].items():
        for field, value in state.items():
            assert torch.equal(value, b.optimizer.state_dict()["state"][key][field]), (key, field)
    assert a.scheduler.state_dict() == b.scheduler.state_dict()
    assert [r["step"] for r in read_log(tmp_path / "resumed" / "log.jsonl")] == [1, 2]
    assert [r["loss"] for r in read_log(tmp_path / "resumed" / "log.jsonl")] == \
           [r["loss"] for r in read_log(tmp_path / "straight" / "log.jsonl")]
