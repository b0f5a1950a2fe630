"""Several streams on one network (livematte/engine/batching.py): frames handed in together run as one
batch, each stream gets its own people back, in order, and one stream's bad frame or absence holds up
nobody else."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from livematte.config import load_config
from livematte.engine.base import Engine, EngineError, Instances
from livematte.engine.batching import CPU_BATCH, GPU_BATCH, BatchingEngine, max_batch_for
from livematte.engine.keying import KeyingEngine, KeyingSettings
from livematte.engine.torch_engine import TorchEngine
from livematte.frame import Frame
from livematte.processor import FrameProcessor
from livematte.synthetic import SyntheticScene

from .e2ehim_helpers import unknown_trimap_model

BAD = 255  # a frame of this grey level is one the stand-in network rejects


class StandInNetwork(Engine):
    """A stateless network that answers each frame with its grey level as p(human), so every answer says
    whose frame it was, and records each inference's frames. Frames of two sizes in one call are a
    programming error (torch.stack would fail), not a rejected frame."""

    def __init__(self):
        self.calls: list[list[tuple[int, ...]]] = []
        self.threads: set[str] = set()

    @property
    def input_size(self):
        return 64, 64

    def infer(self, frames):
        assert len({f.shape for f in frames}) == 1, "frames of two sizes in one batch"
        self.calls.append([f.shape for f in frames])
        self.threads.add(threading.current_thread().name)
        if any(f[0, 0, 0] == BAD for f in frames):
            raise ValueError("this frame is all white")
        return [Instances(np.zeros((1, 4, 4), np.float32), np.array([f[0, 0, 0]], np.float32)) for f in frames]


def grey(level: int, size: tuple[int, int] = (24, 32)) -> np.ndarray:
    return np.full((*size, 3), level, np.uint8)


def streams(engine: BatchingEngine, frames: dict[int, list[np.ndarray]]) -> dict[int, list]:
    """Each stream's frames handed in from a thread of its own, the streams in step (a barrier before each
    frame); every stream's answers (p(human) of each, or the error), in order."""
    answers: dict[int, list] = {name: [] for name in frames}
    rounds = max(len(f) for f in frames.values())
    barrier = threading.Barrier(len(frames))

    def stream(name: int) -> None:
        for i in range(rounds):
            barrier.wait()
            if i >= len(frames[name]):
                continue
            try:
                answers[name].append(float(engine.infer([frames[name][i]])[0].probs[0]))
            except ValueError as exc:
                answers[name].append(str(exc))

    threads = [threading.Thread(target=stream, args=(name,)) for name in frames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return answers


def test_frames_handed_in_together_run_as_one_batch_and_each_stream_gets_its_own_answers():
    network = StandInNetwork()
    engine = BatchingEngine(network, window_ms=500, max_batch=4)  # the window outlasts any scheduling delay
    answers = streams(engine, {s: [grey(10 * s + i) for i in range(5)] for s in range(4)})
    engine.close()
    assert answers == {s: [10.0 * s + i for i in range(5)] for s in range(4)}
    assert engine.batch_sizes() == {4: 5}, "the four streams' frames ran together, five times"
    assert network.threads == {"batching"}, "the network is only ever run on the batching thread"


def test_max_batch_bounds_a_batch_and_one_means_one_frame_at_a_time():
    for max_batch, sizes in ((1, {1: 12}), (2, {2: 6})):
        engine = BatchingEngine(StandInNetwork(), window_ms=500, max_batch=max_batch)
        answers = streams(engine, {s: [grey(10 * s + i) for i in range(3)] for s in range(4)})
        engine.close()
        assert answers == {s: [10.0 * s + i for i in range(3)] for s in range(4)}
        assert engine.batch_sizes() == sizes


class OnCuda(StandInNetwork):
    @property
    def device(self):
        import torch

        return torch.device("cuda")  # a device name only: nothing runs on it here


def test_max_batch_by_default_follows_where_the_network_runs():
    cpu_network = TorchEngine(unknown_trimap_model(seed=3), device="cpu", input_size=(64, 96), warmup=False)
    assert max_batch_for(cpu_network, None) == CPU_BATCH == 2, "bench/results/streams_cpu_*: 2 on a CPU"
    assert max_batch_for(OnCuda(), None) == GPU_BATCH == 8
    assert max_batch_for(OnCuda(), 3) == max_batch_for(cpu_network, 3) == 3
    assert BatchingEngine(cpu_network, window_ms=2, max_batch=load_config(None).engine.batch.max_batch).max_batch == 2


def test_a_rejected_frame_fails_only_the_stream_that_sent_it():
    network = StandInNetwork()
    engine = BatchingEngine(network, window_ms=500, max_batch=3)
    answers = streams(engine, {0: [grey(1), grey(2)], 1: [grey(BAD), grey(3)], 2: [grey(4), grey(5)]})
    engine.close()
    assert answers == {0: [1.0, 2.0], 1: ["this frame is all white", 3.0], 2: [4.0, 5.0]}
    assert engine.batch_sizes() == {1: 2, 3: 1}, "the rejected batch ran again frame by frame, the next one whole"


def test_frames_of_two_sizes_run_in_two_batches():
    network = StandInNetwork()
    engine = BatchingEngine(network, window_ms=500, max_batch=4)
    answers = streams(engine, {s: [grey(s, (24, 32) if s % 2 else (48, 64))] for s in range(4)})
    engine.close()
    assert answers == {s: [float(s)] for s in range(4)}
    assert sorted(len(call) for call in network.calls) == [2, 2]


def test_a_stream_that_stops_sending_holds_nobody_up():
    engine = BatchingEngine(StandInNetwork(), window_ms=20, max_batch=4)
    # stream 1 sends one frame and stops; the others go on, each frame answered after at most the window
    answers = streams(engine, {0: [grey(i) for i in range(6)], 1: [grey(50)], 2: [grey(100 + i) for i in range(6)]})
    engine.close()
    assert answers == {0: [float(i) for i in range(6)], 1: [50.0], 2: [100.0 + i for i in range(6)]}


def test_a_batching_engine_states_the_network_as_its_own_and_refuses_per_stream_engines():
    network = TorchEngine(unknown_trimap_model(seed=3), device="cpu", input_size=(64, 96), fp16=False, warmup=False)
    engine = BatchingEngine(network, window_ms=2, max_batch=8)
    assert (engine.device, engine.input_size, engine.per_stream, engine.plate_frames) == (
        network.device, (64, 96), False, None)
    frame = grey(9)
    assert engine.despill(frame) is frame
    engine.close()
    with pytest.raises(EngineError, match="closed"):
        engine.infer([frame])
    with pytest.raises(ValueError, match="per-stream state"):
        BatchingEngine(KeyingEngine(KeyingSettings(mode="difference")), window_ms=2, max_batch=8)


def test_streams_on_a_batched_network_get_the_output_each_gets_alone():
    """Three streams through their own FrameProcessors (tracking, fusion, effects per stream) on one
    batched E2E-HIM network, against each stream alone on the bare network."""
    network = TorchEngine(unknown_trimap_model(seed=7, people=True), device="cpu", input_size=(96, 160),
                          fp16=False)
    cfg = load_config(None, ["effects.background.kind=blur", "effects.default.effect=tint"])
    scenes = {s: SyntheticScene(320, 180, 2, seed=s) for s in range(3)}
    frames = {s: [Frame(scene.render(i)[0], i, 0, i / 30) for i in range(4)] for s, scene in scenes.items()}

    def outputs(engine: Engine, stream: int) -> list:
        processor = FrameProcessor(cfg, engine)
        done = [processor.process(frame) for frame in frames[stream]]
        processor.close()
        return done

    alone = {s: outputs(network, s) for s in frames}
    batched = BatchingEngine(network, window_ms=200, max_batch=3)
    together: dict[int, list] = {}
    threads = [threading.Thread(target=lambda s=s: together.__setitem__(s, outputs(batched, s))) for s in frames]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    batched.close()
    assert max(batched.batch_sizes()) > 1, "the streams' frames were batched"
    for s in frames:
        assert [o.frame.index for o in together[s]] == [0, 1, 2, 3]
        assert [o.people for o in together[s]] == [o.people for o in alone[s]]
        for mine, reference in zip(together[s], alone[s]):
            difference = np.abs(mine.image.astype(int) - reference.image.astype(int))
            assert difference.max() <= 1 and (difference > 0).mean() < 1e-3
