"""TensorRT engine and its plan cache. The cache key and the missing-TensorRT message are checked
everywhere; building and running plans needs tensorrt and a CUDA GPU and skips without them."""

from __future__ import annotations

import importlib
import os
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from livematte.config import load_config
from livematte.engine import tensorrt as trt_engine
from livematte.engine.base import EngineError
from livematte.engine.choose import open_engine
from livematte.engine.postprocess import PostprocessConfig
from livematte.engine.tensorrt import PlanKey
from tests.e2ehim_helpers import unknown_trimap_model

KEEP_ALL = PostprocessConfig(threshold=1e-6, min_area=0)
SIZE = (64, 96)


def tensorrt_importable() -> bool:
    try:
        importlib.import_module("tensorrt")
    except ImportError:
        return False
    return True


needs_tensorrt = pytest.mark.skipif(not (tensorrt_importable() and torch.cuda.is_available()),
                                    reason="needs tensorrt (pip install tensorrt) and a CUDA GPU")


def test_every_part_of_the_key_names_another_plan():
    key = PlanKey("a" * 64, (352, 640), 4, "fp16", "11.4.0", "NVIDIA H100 80GB HBM3")
    variants = [replace(key, weights_id="b" * 64), replace(key, input_size=(640, 640)), replace(key, max_batch=1),
                replace(key, precision="fp32"), replace(key, tensorrt="10.13.0"), replace(key, gpu="NVIDIA H200")]
    assert len({key.file_name, *(v.file_name for v in variants)}) == 7
    assert PlanKey(**asdict(key)).file_name == key.file_name
    assert key.file_name.startswith("e2ehim-640x352-b4-fp16-") and key.file_name.endswith(".plan")
    # kernel timings carry over between networks, not between TensorRT versions or GPUs
    assert {v.timing_cache_name for v in variants[:4]} == {key.timing_cache_name}
    assert key.timing_cache_name not in {variants[4].timing_cache_name, variants[5].timing_cache_name}


@pytest.mark.skipif(tensorrt_importable(), reason="tensorrt is installed here")
def test_tensorrt_kind_without_tensorrt_says_what_to_do(tmp_path):
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"")  # never read: the engine stops at the missing TensorRT first
    cfg = load_config(overrides=["engine.kind=tensorrt", f"engine.e2ehim.weights={weights}"])
    with pytest.raises(EngineError, match="TensorRT cannot be imported.*pip install tensorrt"):
        open_engine(cfg.engine)


@pytest.fixture(scope="module")
def model():
    return unknown_trimap_model(seed=21)


@pytest.fixture
def weights(model, tmp_path) -> Path:
    path = tmp_path / "weights.safetensors"
    save_file(model.state_dict(), str(path))
    return path


def frames(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(count)]


@needs_tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("precision, max_error, mean_error", [("fp32", 5e-3, 5e-4), ("fp16", 0.1, 1e-2)])
def test_tensorrt_engine_gives_the_torch_engines_mattes(model, weights, precision, max_error, mean_error):
    from livematte.engine.torch_engine import TorchEngine

    engine = trt_engine.TensorRTEngine(weights, input_size=SIZE, max_batch=2, precision=precision,
                                       postprocess_config=KEEP_ALL)
    reference = TorchEngine(model, device="cuda", input_size=SIZE, fp16=False, postprocess_config=KEEP_ALL)
    batch = [torch.from_numpy(f).cuda() for f in frames(2, seed=1)]
    for got, expected in zip(engine.infer(batch), reference.infer(batch), strict=True):
        assert got.mattes.is_cuda and got.mattes.shape == (20, 48, 80)
        difference = (got.mattes - expected.mattes).abs()
        assert difference.max() < max_error and difference.mean() < mean_error
        assert (got.probs - expected.probs).abs().max() < max_error


@needs_tensorrt
@pytest.mark.gpu
def test_plan_is_built_once_then_loaded_from_the_cache(weights, monkeypatch):
    trt_engine.TensorRTEngine(weights, input_size=SIZE, max_batch=2, postprocess_config=KEEP_ALL)
    plans = list((Path(os.environ["LIVEMATTE_CACHE_DIR"]) / "tensorrt").glob("*.plan"))
    assert len(plans) == 1 and plans[0].with_suffix(".json").is_file()
    assert list(plans[0].parent.glob("timing-*.cache"))

    def no_build(*args, **kwargs):
        raise AssertionError("built again although the cache holds this plan")

    monkeypatch.setattr(trt_engine, "build_plan", no_build)
    engine = trt_engine.TensorRTEngine(weights, input_size=SIZE, max_batch=2, postprocess_config=KEEP_ALL)
    assert len(engine.infer(frames(1, seed=2))[0]) == 20
    with pytest.raises(ValueError, match="exceeds the TensorRT engine's max_batch 2"):
        engine.infer(frames(3, seed=3))
