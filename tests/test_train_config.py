"""The train configuration: presets load, typos and bad values fail with what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from livematte.config import ConfigError
from livematte.train.config import CompositeData, InstancesData, SyntheticData, load_train_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_presets_load_with_the_papers_optimiser():
    tiny = load_train_config(CONFIGS / "train_tiny.yaml")
    assert isinstance(tiny.data, SyntheticData) and tiny.size == 64 and tiny.run.steps == 100
    assert (tiny.optim.lr, tiny.optim.weight_decay, tiny.loss.background) == (8e-5, 5e-4, 0.1)
    him = load_train_config(CONFIGS / "train_him.yaml")
    assert isinstance(him.data, InstancesData) and him.size == 640


def test_dataset_folders_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "train.yaml"
    path.write_text("data: {kind: composite, foregrounds: fg, backgrounds: ../bg}\n")
    cfg = load_train_config(path)
    assert isinstance(cfg.data, CompositeData)
    assert cfg.data.foregrounds == tmp_path / "sub" / "fg" and cfg.data.backgrounds == tmp_path / "sub" / ".." / "bg"
    assert cfg.run.out == Path("out/train/run")  # outputs stay relative to the current directory


def test_a_typo_lists_the_allowed_keys(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("data: {kind: instances, root: d}\noptim: {learning_rate: 1.0e-4}\n")
    with pytest.raises(ConfigError, match=r"optim.learning_rate: unknown key; allowed here: lr, weight_decay"):
        load_train_config(path)


@pytest.mark.parametrize("override, message", [
    ("size=100", "size: Input should be a multiple of 32"),
    ("data.kind=video", "data: Input tag 'video' found using 'kind' does not match"),
    ("run.install_as=my weights", "run.install_as: String should match pattern"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_train_config(CONFIGS / "train_tiny.yaml", [override])
