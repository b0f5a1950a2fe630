"""Official checkpoint import: verification against the manifest, renaming, install, strict loading."""

from __future__ import annotations

import argparse
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from livematte.model.checkpoint import (
    CheckpointError,
    CheckpointMismatch,
    convert,
    find_weights,
    import_checkpoint,
    installed_weights,
    load_into,
    official_manifest,
    read_checkpoint,
    read_weights,
)
from livematte.model.e2ehim import E2EHIM
from livematte.model.official_names import MAPPING_VERSION, is_unused
from livematte.model.weights_cli import add_weights_parser
from tests.e2ehim_helpers import official_state, random_model


@pytest.fixture(scope="module")
def model() -> E2EHIM:
    return random_model(seed=0)


@pytest.fixture(scope="module")
def official(model) -> dict[str, torch.Tensor]:
    return official_state(model)


def test_manifest_is_the_official_layout():
    manifest = official_manifest()
    assert len(manifest) == 649
    assert sum(math.prod(spec.shape) for name, spec in manifest.items() if not is_unused(name)) == 70_453_030


def test_convert_maps_every_tensor_onto_the_model(model, official):
    converted = convert(official)
    expected = model.state_dict()
    assert converted.keys() == expected.keys()
    assert all(torch.equal(converted[k], expected[k]) for k in expected)


def test_unused_tensors_may_be_absent(model, official):
    trimmed = {k: v for k, v in official.items() if not is_unused(k)}
    assert len(trimmed) == 633
    assert convert(trimmed).keys() == model.state_dict().keys()


def test_broken_checkpoint_lists_missing_extra_and_misshaped(official):
    broken = dict(official)
    del broken["c4.3.in_conv1.3.weight"]
    del broken["trans.layers.2.blocks.5.attn.qkv.bias"]
    broken["head.extra.weight"] = torch.zeros(3)
    broken["pam.gamma"] = torch.zeros(2)
    broken["g1.bias"] = broken["g1.bias"].double()
    with pytest.raises(CheckpointMismatch) as info:
        convert(broken, what="broken.pth")
    error = info.value
    assert error.missing == ["c4.3.in_conv1.3.weight", "trans.layers.2.blocks.5.attn.qkv.bias"]
    assert error.extra == ["head.extra.weight"]
    assert error.mismatched == ["g1.bias: expected 128 float32, got 128 float64",
                                "pam.gamma: expected 1 float32, got 2 float32"]
    message = str(error)
    assert message.startswith("broken.pth does not have the expected layout")
    for text in ("2 missing", "1 unexpected", "2 wrong shape or dtype", "c4.3.in_conv1.3.weight",
                 "livematte weights import"):
        assert text in message


def test_long_lists_are_shortened():
    with pytest.raises(CheckpointMismatch) as info:
        convert({})
    assert len(info.value.missing) == 633
    assert "... and 613 more" in str(info.value)


def test_wrappers_and_module_prefix_are_accepted(tmp_path):
    tensors = {"module.g1.weight": torch.ones(128), "module.g1.bias": torch.zeros(128)}
    for i, content in enumerate([tensors, {"state_dict": tensors}, {"model": tensors, "epoch": 3}]):
        path = tmp_path / f"ckpt{i}.pth"
        torch.save(content, path)
        assert set(read_checkpoint(path)) == {"g1.weight", "g1.bias"}


@pytest.mark.parametrize("content", [b"not a checkpoint at all", b""])
def test_foreign_file_is_named_in_the_error(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="weights.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(path)


def test_truncated_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "cut.pth"
    torch.save({"g1.weight": torch.ones(4096)}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="cut.pth: not a readable PyTorch checkpoint"):
        read_checkpoint(path)


def test_file_without_tensors_is_rejected(tmp_path):
    path = tmp_path / "config.pth"
    torch.save({"lr": 0.1}, path)
    with pytest.raises(CheckpointError, match="holds no state dict of tensors"):
        read_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        read_checkpoint(tmp_path / "absent.pth")


def test_import_installs_safetensors_and_record(tmp_path, model, official):
    path = tmp_path / "official.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in official.items()}}, path)
    record = import_checkpoint(path, name="test-weights")
    assert record.path.name == "test-weights.safetensors" and record.path.is_file()
    info = json.loads(record.path.with_suffix(".json").read_text())
    assert info["mapping_version"] == MAPPING_VERSION and info["tensors"] == 633
    assert len(info["source_sha256"]) == 64 and info["source"] == str(path.resolve())
    assert [w.name for w in installed_weights()] == ["test-weights"]
    assert find_weights("test-weights") == record.path
    stored = load_file(str(record.path))
    assert all(torch.equal(stored[k], v) for k, v in model.state_dict().items())


def test_round_trip_gives_the_same_outputs(tmp_path, model, official):
    path = tmp_path / "official.pth"
    torch.save(official, path)
    loaded = E2EHIM().eval()
    load_into(loaded, read_weights(import_checkpoint(path).path))
    image = torch.randn(1, 3, 64, 96)
    with torch.inference_mode():
        for a, b in zip(model(image), loaded(image)):
            assert torch.equal(a, b)


def test_strict_load_refuses_missing_tensors(model):
    state = dict(model.state_dict())
    del state["alpha.conv1.weight"]
    with pytest.raises(CheckpointMismatch, match="alpha.conv1.weight"):
        load_into(E2EHIM(), state)


def test_unknown_installed_name_lists_what_exists():
    with pytest.raises(CheckpointError, match=r"no installed weights named 'nope' \(installed: none\)"):
        find_weights("nope")


def test_corrupt_installed_weights_named(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="bad.safetensors: unreadable weights file"):
        read_weights(path)


def test_invalid_install_name(tmp_path):
    with pytest.raises(CheckpointError, match="invalid weights name"):
        import_checkpoint(tmp_path / "x.pth", name="../escape")


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="livematte")
    add_weights_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_import_and_list(tmp_path, official, capsys):
    assert _cli("weights", "list") == 0
    assert "no weights installed" in capsys.readouterr().out
    path = tmp_path / "official.pth"
    torch.save({"model": official}, path)
    assert _cli("weights", "import", str(path), "--name", "cli-test") == 0
    assert "installed cli-test: 633 tensors" in capsys.readouterr().out
    assert _cli("weights", "list") == 0
    assert "cli-test" in capsys.readouterr().out


def test_cli_import_failure_is_reported(tmp_path, capsys):
    path = tmp_path / "junk.pth"
    path.write_bytes(b"junk")
    assert _cli("weights", "import", str(path)) == 1
    assert "junk.pth: not a readable PyTorch checkpoint" in capsys.readouterr().err


def test_non_finite_tensors_are_refused(tmp_path, official):
    damaged = dict(official)
    name = next(n for n, t in official.items() if t.is_floating_point() and not is_unused(n))
    damaged[name] = torch.full_like(official[name], math.nan)
    with pytest.raises(CheckpointError, match=f"1 tensors hold NaN or infinite values \\({name}\\)"):
        convert(damaged)


def test_cli_remove_deletes_the_weights_and_list_is_whole_when_piped(tmp_path, official, capsys):
    path = tmp_path / "official.pth"
    torch.save(official, path)
    assert _cli("weights", "import", str(path), "--name", "to-remove") == 0
    capsys.readouterr()
    assert not list(find_weights("to-remove").parent.glob("*.partial"))  # both files renamed into place
    assert _cli("weights", "list") == 0
    header, row = capsys.readouterr().out.splitlines()  # captured output is not a terminal: tab-separated
    assert header.split("\t")[0] == "name" and row.split("\t")[0] == "to-remove"
    assert len(row.split("\t")[2]) == 64 and row.split("\t")[4].endswith("to-remove.safetensors")  # not cut
    assert _cli("weights", "remove", "to-remove") == 0
    assert "removed to-remove" in capsys.readouterr().out
    assert installed_weights() == []
    assert _cli("weights", "remove", "to-remove") == 1
    assert "no installed weights named 'to-remove'" in capsys.readouterr().err
