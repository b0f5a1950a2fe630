"""Evaluation end to end on generated data: perfect predictions score perfectly, known flaws score
what they should, and the CLI writes its JSON and table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from livematte.eval.evaluate import evaluate
from livematte.eval.predictors import FolderPredictor
from livematte.train.layout import Sample, list_samples, read_sample, write_sample
from livematte.train.synthetic_data import SyntheticSpec, write_synthetic_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sequence(tmp_path_factory) -> Path:
    spec = SyntheticSpec(samples=6, width=80, height=48, people=(3, 3), seed=2, sequence=True)
    return write_synthetic_dataset(tmp_path_factory.mktemp("seq") / "data", spec)


def test_perfect_predictions_are_perfect(sequence):
    report = evaluate(list_samples(sequence), FolderPredictor(sequence), sequence=True)
    assert report.images == 6 and report.people > 6 and report.predicted == report.people
    for scores in report.instance:
        assert (scores.rec, scores.acc, scores.emse, scores.emad, scores.pairs) == (1.0, 1.0, 0.0, 0.0, report.people)
    assert all(v == 0 for v in vars(report.image).values())
    assert report.dtssd == 0.0


def test_a_missed_person_lowers_recall_only(sequence):
    files = list_samples(sequence)
    missed = sum(bool((read_sample(f).alphas[0] >= 0.5).any()) for f in files)
    report = evaluate(files, lambda sample: sample.alphas[1:], sequence=True)
    scores = report.instance[0]
    assert missed > 0 and scores.pairs == report.people - missed
    assert scores.rec == pytest.approx((report.people - missed) / report.people) and scores.acc == 1.0
    assert report.image.sad > 0 and report.dtssd > 0


def test_a_partial_matte_counts_at_iou_half_but_not_three_quarters(tmp_path):
    truth = np.zeros((1, 20, 30), np.float32)
    truth[0, 5:15, 5:15] = 1.0
    write_sample(tmp_path / "data", Sample("a", np.zeros((20, 30, 3), np.uint8), truth))
    pred = truth.copy()
    pred[0, 5:15, 11:15] = 0.0  # 60 of 100 pixels: IoU 0.6
    pred_faint = np.full((1, 20, 30), 0.3, np.float32)  # no pixel >= 0.5: not a predicted person
    report = evaluate(list_samples(tmp_path / "data"), lambda s: np.concatenate([pred, pred_faint]))
    at_half, at_three_quarters = report.instance
    assert (at_half.iou, at_half.rec, at_half.acc, at_half.pairs) == (0.5, 1.0, 1.0, 1)
    assert at_half.emse == pytest.approx(40 / 600) and at_half.emad == pytest.approx(40 / 600)
    assert (at_three_quarters.rec, at_three_quarters.acc, at_three_quarters.emse) == (0.0, 0.0, None)
    assert report.predicted == 1


def test_eval_cli_writes_json_and_prints_the_table(sequence, tmp_path):
    out = tmp_path / "report.json"
    result = subprocess.run([sys.executable, "-m", "livematte.cli", "eval", str(sequence),
                             "--predictions", str(sequence), "--sequence", "--out", str(out)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip().splitlines()[-1]) == out.resolve()
    assert "REC" in result.stdout and "dtSSD" in result.stdout
    report = json.loads(out.read_text())
    assert report["instance"][0]["rec"] == 1.0 and report["dtssd"] == 0.0 and report["sequence"] is True
    assert {"date", "data", "predictions", "units"} <= report.keys()


def test_eval_cli_names_a_folder_that_is_not_a_dataset(tmp_path):
    result = subprocess.run([sys.executable, "-m", "livematte.cli", "eval", str(tmp_path),
                             "--predictions", str(tmp_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "needs images/ and alphas/ folders" in result.stderr and "Traceback" not in result.stderr
