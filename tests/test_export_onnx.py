"""ONNX export (fp32 and fp16), its parity with torch, the ONNX Runtime engine and its place in the pipeline.

Exports are small (96x64, 64x64: the cost is in tracing the network, not its size) and made once per
case: three exports of about a minute each on a 2-core CPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import save_file

from livematte.config import load_config
from livematte.engine.base import EngineError
from livematte.engine.choose import open_engine
from livematte.engine.onnx import OnnxRuntimeEngine
from livematte.engine.postprocess import PostprocessConfig
from livematte.engine.torch_engine import TorchEngine
from livematte.export import onnx as export
from livematte.export.weights_id import tensors_id
from livematte.model.checkpoint import import_checkpoint
from livematte.model.e2ehim import E2EHIM
from tests.e2ehim_helpers import official_state, random_model, unknown_trimap_model

HEIGHT, WIDTH = 64, 96
KEEP_ALL = PostprocessConfig(threshold=1e-6, min_area=0)


@pytest.fixture(scope="module")
def model() -> E2EHIM:
    return unknown_trimap_model(seed=11)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """`livematte export onnx` of the model's weights at 96x64 (WxH)."""
    folder = tmp_path_factory.mktemp("export")
    weights = folder / "weights.safetensors"
    save_file(model.state_dict(), str(weights))
    graph = folder / "model.onnx"
    env = {**os.environ, "LIVEMATTE_CACHE_DIR": str(folder / "cache")}
    result = subprocess.run([sys.executable, "-m", "livematte.cli", "export", "onnx", "--weights", str(weights),
                             "--size", f"{WIDTH}x{HEIGHT}", "--out", str(graph)],
                            capture_output=True, text=True, timeout=900, env=env)
    return graph, result


def frames(count: int, seed: int, size: tuple[int, int] = (48, 80)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


def test_cli_writes_a_checked_graph_with_a_dynamic_batch(exported, model):
    graph, result = exported
    assert result.returncode == 0, result.stderr
    assert "checked with onnx.checker" in result.stdout and "largest |ONNX Runtime - torch|" in result.stdout
    proto = onnx.load(str(graph))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, HEIGHT, WIDTH]
    assert [o.name for o in proto.graph.output] == ["class_logits", "alpha", "trimap_logits"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["livematte.weights_id"] == tensors_id(model.state_dict())
    assert meta["livematte.precision"] == "fp32" and meta["livematte.input_size"] == f"{WIDTH}x{HEIGHT}"


@pytest.mark.parametrize("batch", [1, 3])
def test_graph_reproduces_torch_within_1e4(exported, model, batch):
    """One graph for every batch size; compared with the engine's own (fused alpha head) torch model."""
    session = ort.InferenceSession(str(exported[0]), providers=["CPUExecutionProvider"])
    image = torch.randn(batch, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        expected = model(image)
    got = session.run(None, {"image": image.numpy()})
    for name, g, e in zip(export.OUTPUTS, got, expected):
        assert g.shape == tuple(e.shape), name
        assert e.std() > 1e-3, f"{name} is flat: the comparison would prove nothing"
        np.testing.assert_allclose(g, e.numpy(), rtol=0, atol=1e-4, err_msg=name)


def test_onnxruntime_engine_gives_the_torch_engines_mattes(exported, model):
    onnx_engine = OnnxRuntimeEngine(exported[0], postprocess_config=KEEP_ALL)
    torch_engine = TorchEngine(model, input_size=(HEIGHT, WIDTH), postprocess_config=KEEP_ALL, warmup=False)
    assert onnx_engine.input_size == (HEIGHT, WIDTH)
    batch = frames(2, seed=3)
    for got, expected in zip(onnx_engine.infer(batch), torch_engine.infer(batch), strict=True):
        assert isinstance(got.mattes, np.ndarray) and got.mattes.shape == (20, 48, 80)
        assert expected.mattes.std() > 1e-3
        np.testing.assert_allclose(got.mattes, expected.mattes, rtol=0, atol=1e-4)
        np.testing.assert_allclose(got.probs, expected.probs, rtol=0, atol=1e-5)


def test_engine_rejects_a_size_other_than_the_graphs(exported):
    with pytest.raises(ValueError, match="runs at 96x64"):
        OnnxRuntimeEngine(exported[0], input_size=(64, 64))


def test_onnxruntime_runs_in_the_pipeline(exported, tmp_path):
    from pipelines.live import LivePipeline

    cfg = load_config(overrides=[
        "source.width=160", "source.height=96", "source.frames=4", "source.people=2", "sinks.0.kind=null",
        "engine.kind=onnxruntime", f"engine.onnxruntime.model={exported[0]}", "engine.onnxruntime.device=cpu"])
    report = LivePipeline(cfg).run(show_progress=False)
    assert report.frames == 4 and report.engine.startswith("E2E-HIM through ONNX Runtime (model.onnx) on cpu")


def test_config_naming_a_foreign_graph_fails_with_the_fix(tmp_path):
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    value = onnx.helper.make_tensor_value_info
    foreign = onnx.helper.make_model(onnx.helper.make_graph(
        [node], "g", [value("x", onnx.TensorProto.FLOAT, [1, 3])], [value("y", onnx.TensorProto.FLOAT, [1, 3])]),
        ir_version=10, opset_imports=[onnx.helper.make_opsetid("", 18)])
    onnx.save(foreign, tmp_path / "other.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    for name, problem in (("other.onnx", "not an E2E-HIM export of livematte"), ("broken.onnx", "cannot load")):
        cfg = load_config(overrides=["engine.kind=onnxruntime", f"engine.onnxruntime.model={tmp_path / name}"])
        with pytest.raises(EngineError, match=f"{problem}.*livematte export onnx"):
            open_engine(cfg.engine)


def test_installed_weights_are_exported_on_first_use_and_cached(tmp_path, monkeypatch):
    model = unknown_trimap_model(seed=12)
    checkpoint = tmp_path / "official.pth"
    torch.save(official_state(model), checkpoint)
    installed = import_checkpoint(checkpoint, name="tiny")
    engine = OnnxRuntimeEngine("tiny", input_size=(64, 64), postprocess_config=KEEP_ALL)
    cached = list((Path(os.environ["LIVEMATTE_CACHE_DIR"]) / "onnx").glob("*.onnx"))
    assert len(cached) == 1 and installed.source_sha256[:16] in cached[0].name and "64x64-fp32" in cached[0].name

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the cache holds this graph")

    monkeypatch.setattr(export, "export_onnx", no_export)
    again = OnnxRuntimeEngine("tiny", input_size=(64, 64), postprocess_config=KEEP_ALL)
    expected = TorchEngine(model, input_size=(64, 64), postprocess_config=KEEP_ALL, warmup=False)
    batch = frames(1, seed=4, size=(64, 64))
    reference = expected.infer(batch)[0].mattes
    for found in (engine.infer(batch)[0], again.infer(batch)[0]):
        np.testing.assert_allclose(found.mattes, reference, rtol=0, atol=1e-4)


def test_fp16_graph_runs_in_half_precision_close_to_fp32():
    """The graph TensorRT builds its FP16 engine from: fp16 weights and maths, fp32 norms, fp32 in and out."""
    model = random_model(seed=13)
    path = export.cached_export(model, (64, 64), "fp16")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    initializers = [i.data_type for i in proto.graph.initializer]
    assert initializers.count(onnx.TensorProto.FLOAT16) > 100
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
               for v in [*proto.graph.input, *proto.graph.output])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    image = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        expected = model(image)
    for name, got, e, tolerance in zip(export.OUTPUTS, session.run(None, {"image": image.numpy()}), expected,
                                       (0.02, 0.01, 0.05)):
        difference = np.abs(got - e.numpy()).max()
        assert 1e-6 < difference < tolerance, f"{name}: {difference} (0 would mean fp32 ran)"
