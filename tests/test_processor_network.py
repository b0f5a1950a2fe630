"""The frame processor on an E2E-HIM network, alone and shared by streams (BatchingEngine): frames go to the
network's device once, tracking, fusion and compositing read that copy, and the output comes back to the
host. On CUDA (marked gpu) this is the GPU path of `livematte run` and `livematte serve`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from livematte.config import load_config
from livematte.engine.batching import BatchingEngine
from livematte.engine.torch_engine import TorchEngine
from livematte.frame import Frame
from livematte.processor import FrameProcessor
from livematte.synthetic import SyntheticScene

from .e2ehim_helpers import whole_frame_people_model

CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                                        reason="needs a CUDA device")])


@pytest.fixture(scope="module")
def people_model():
    return whole_frame_people_model()


@pytest.mark.parametrize("shared", [False, True], ids=["alone", "shared"])
@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_a_network_mattes_on_its_device_and_hands_back_host_frames(people_model, device, shared):
    network = TorchEngine(people_model, device=device, input_size=(96, 160), fp16=False)
    engine = BatchingEngine(network, window_ms=2, max_batch=8) if shared else network
    cfg = load_config(None, ["effects.background.kind=blur", "effects.default.effect=tint"])
    processor = FrameProcessor(cfg, engine)
    scene = SyntheticScene(320, 180, 2)
    assert len(network.infer([scene.render(0)[0]])[0]) == 20, "the network finds its 20 whole-frame people"
    outputs = [processor.process(Frame(scene.render(i)[0], i, 0, i / 30)) for i in range(4)]
    processor.close()
    assert processor._device == torch.device(device)
    assert [out.people for out in outputs] == [0, 20, 20, 20], "people are shown from their second sighting on"
    for out in outputs:
        assert isinstance(out.image, np.ndarray) and out.image.shape == (180, 320, 3)
