"""TorchEngine: pre-processing, weights sources, frames in -> per-person mattes out (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kernels.letterbox import Letterbox
from kernels.preprocess import IMAGENET_MEAN as MEAN
from kernels.preprocess import IMAGENET_STD as STD
from livematte.engine.base import Engine
from livematte.engine.postprocess import PostprocessConfig
from livematte.engine.torch_engine import TorchEngine
from livematte.model.checkpoint import import_checkpoint
from livematte.model.e2ehim import E2EHIM
from livematte.model.input import preprocess
from tests.e2ehim_helpers import official_state, random_model, unknown_trimap_model, whole_frame_people_model


@pytest.fixture(scope="module")
def everyone_model() -> E2EHIM:
    return whole_frame_people_model()


def test_preprocess_letterboxes_and_normalises():
    frame = np.zeros((1, 16, 32, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    box = Letterbox.fit(16, 32, 32, 32)
    x = preprocess(torch.from_numpy(frame), box)
    assert x.shape == (1, 3, 32, 32)
    expected = [(0 - MEAN[0]) / STD[0], (0 - MEAN[1]) / STD[1], (1 - MEAN[2]) / STD[2]]
    content = x[0, :, box.top: box.top + box.content_h]
    for c in range(3):
        torch.testing.assert_close(content[c], torch.full((16, 32), expected[c]))
    assert x[0, :, : box.top].eq(0).all() and x[0, :, box.top + box.content_h:].eq(0).all()


def test_preprocess_resizes_the_content():
    frames = torch.arange(64 * 64 * 3, dtype=torch.float32).reshape(1, 64, 64, 3).remainder(256).to(torch.uint8)
    box = Letterbox.fit(64, 64, 32, 32)
    x = preprocess(frames, box)
    rgb = frames.permute(0, 3, 1, 2).flip(1).float() / 255
    small = torch.nn.functional.interpolate(rgb, size=(32, 32), mode="bilinear", antialias=True)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (small - mean) / std)


def test_engine_returns_mattes_at_frame_size(everyone_model):
    engine = TorchEngine(everyone_model, input_size=(64, 64))
    assert isinstance(engine, Engine) and engine.input_size == (64, 64)
    frames = [np.full((48, 80, 3), 100, np.uint8), np.full((48, 80, 3), 200, np.uint8)]
    results = engine.infer(frames)
    assert len(results) == 2
    for found in results:
        assert isinstance(found.mattes, np.ndarray) and found.mattes.dtype == np.float32
        assert found.mattes.shape == (20, 48, 80)
        assert np.allclose(found.mattes, 1.0)
        assert np.allclose(found.probs, 1 / (1 + np.exp(-5.0)))
    assert engine.infer([]) == []


def test_channels_last_does_not_change_the_result():
    model = random_model(seed=7)
    config = PostprocessConfig(threshold=0.01, min_area=0)
    frames = [np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)]
    plain = TorchEngine(model, input_size=(64, 64), channels_last=False, postprocess_config=config,
                        warmup=False).infer(frames)
    fast = TorchEngine(model, input_size=(64, 64), channels_last=True, postprocess_config=config,
                       warmup=False).infer(frames)
    assert len(plain[0]) > 0 and plain[0].mattes.std() > 0
    np.testing.assert_allclose(plain[0].mattes, fast[0].mattes, atol=1e-5)
    np.testing.assert_allclose(plain[0].probs, fast[0].probs, atol=1e-6)


def test_bf16_stays_close_to_fp32():
    model = random_model(seed=8)
    config = PostprocessConfig(threshold=1e-6, min_area=0)  # keep every query
    frames = [np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)]
    exact = TorchEngine(model, input_size=(64, 64), postprocess_config=config, warmup=False).infer(frames)
    fast = TorchEngine(model, input_size=(64, 64), postprocess_config=config, warmup=False, bf16=True).infer(frames)
    assert fast[0].mattes.dtype == np.float32 and len(fast[0]) == len(exact[0]) == 20
    np.testing.assert_allclose(fast[0].probs, exact[0].probs, atol=0.02)
    assert np.abs(fast[0].mattes - exact[0].mattes).mean() < 0.05


def test_input_size_follows_the_first_frame(everyone_model):
    engine = TorchEngine(everyone_model, warmup=False)
    with pytest.raises(RuntimeError, match="follows the first frame"):
        engine.input_size
    results = engine.infer([np.zeros((90, 160, 3), np.uint8)])
    assert engine.input_size == (352, 640)
    assert results[0].mattes.shape[1:] == (90, 160)


def test_engine_loads_installed_weights_by_name(tmp_path):
    model = random_model(seed=6)
    path = tmp_path / "official.pth"
    torch.save(official_state(model), path)
    import_checkpoint(path, name="engine-test")
    engine = TorchEngine("engine-test", input_size=(32, 32), warmup=False)
    for a, b in zip(engine.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_engine_rejects_bad_sizes_and_devices(everyone_model):
    with pytest.raises(ValueError, match="multiples of 32"):
        TorchEngine(everyone_model, input_size=(100, 64))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA device"):
            TorchEngine(everyone_model, device="cuda")


def test_cuda_graphs_need_a_cuda_device(everyone_model):
    with pytest.raises(ValueError, match="cuda_graphs needs device='cuda'"):
        TorchEngine(everyone_model, device="cpu", cuda_graphs=True)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("fp16", [False, True])
def test_cuda_graphs_replay_the_eager_forward(fp16):
    """Each new input goes through the recorded graph (not the outputs of the first call), per batch size."""
    model = unknown_trimap_model(seed=9)
    config = PostprocessConfig(threshold=1e-6, min_area=0)
    eager = TorchEngine(model, device="cuda", input_size=(64, 64), fp16=fp16, postprocess_config=config)
    graphed = TorchEngine(model, device="cuda", input_size=(64, 64), fp16=fp16, postprocess_config=config,
                          cuda_graphs=True)
    rng = np.random.default_rng(0)
    previous = None
    for count in (1, 1, 2):
        batch = [torch.from_numpy(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).cuda() for _ in range(count)]
        for got, expected in zip(graphed.infer(batch), eager.infer(batch), strict=True):
            assert got.mattes.is_cuda and (got.mattes - expected.mattes).abs().max() < 1e-2
            assert previous is None or (got.mattes - previous).abs().max() > 1e-3
            previous = got.mattes
    assert len(graphed._graphs) == 2, "one graph per batch size"
