import os
import threading
from pathlib import Path

import av
import cv2
import numba
import numpy as np

from livematte.config import load_config
from livematte.synthetic import SyntheticScene
from pipelines.live import LivePipeline

W, H, FRAMES = 320, 180, 12


def config(tmp_path: Path, *extra: str):
    return load_config(overrides=[
        f"source.width={W}", f"source.height={H}", f"source.frames={FRAMES}", "source.people=3", "source.seed=2",
        "engine.kind=keying", f"sinks.0.path={tmp_path / 'out.mp4'}", "effects.people={}", "effects.feather=0",
        "effects.background.kind=color", "effects.background.color=#000000", *extra])


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def regions(index: int):
    """Inside every figure (eroded) and far from all of them (dilated), from the scene's ground truth."""
    image, alphas = SyntheticScene(W, H, 3, seed=2).render(index)
    union = alphas.sum(0)
    kernel = np.ones((7, 7), np.uint8)
    inside = cv2.erode((union > 0.99).astype(np.uint8), kernel) > 0
    outside = cv2.dilate((union > 0).astype(np.uint8), kernel) == 0
    return image, inside, outside


def test_people_keep_their_pixels_on_a_replaced_background(tmp_path):
    report = LivePipeline(config(tmp_path)).run(show_progress=False)
    assert report.frames == FRAMES and report.dropped == 0 and "keying" in report.engine
    frames = decoded(tmp_path / "out.mp4")
    assert len(frames) == FRAMES
    image, inside, outside = regions(6)
    out = frames[6].astype(int)
    assert np.abs(out[inside] - image[inside].astype(int)).mean() < 12, "people are kept as filmed"
    assert out[outside].mean() < 8, "the green screen became the black background"


def test_hide_everyone_leaves_only_the_background(tmp_path):
    LivePipeline(config(tmp_path, "effects.default.effect=hide", "effects.background.color=#ffffff")).run(
        show_progress=False)
    out = decoded(tmp_path / "out.mp4")[6]
    _, inside, _ = regions(6)
    assert out[inside].mean() > 240


def test_isolated_people_are_written_as_rgba_pngs(tmp_path):
    cfg = config(tmp_path, "effects.isolate=[1, 2]", f"effects.isolate_path={tmp_path / 'people'}")
    report = LivePipeline(cfg).run(show_progress=False)
    folders = sorted(p.name for p in (tmp_path / "people").iterdir())
    assert folders == ["person_1", "person_2"]
    layer = cv2.imread(str(sorted((tmp_path / "people" / "person_1").glob("*.png"))[-1]), cv2.IMREAD_UNCHANGED)
    assert layer.shape == (H, W, 4) and layer[..., 3].max() == 255 and (layer[..., 3] == 0).mean() > 0.5
    assert tmp_path / "people" / "person_1" in report.outputs


def test_exact_fusion_still_delivers_every_frame(tmp_path):
    report = LivePipeline(config(tmp_path, "temporal.mode=exact")).run(show_progress=False)
    assert report.frames == FRAMES and len(decoded(tmp_path / "out.mp4")) == FRAMES


def test_inference_skipping_is_reported(tmp_path):
    report = LivePipeline(config(tmp_path, "engine.every=3")).run(show_progress=False)
    assert report.frames == FRAMES and abs(report.skip_rate - 8 / 12) < 1e-9
    assert set(report.stage_ms) == {"engine", "stabilize", "composite", "sinks"}


def test_a_vanishing_source_gets_a_reconnecting_card_and_output_resumes(tmp_path):
    from tests.media import make_clip

    camera = make_clip(tmp_path / "camera.mp4", frames=6)  # read through OpenCV like a webcam; it "vanishes" at the end
    cfg = load_config(overrides=[
        "source.kind=webcam", f"source.device={camera}", "source.reconnect_max_s=0.5", "engine.kind=keying",
        "engine.keying.mode=difference", "engine.keying.plate_frames=1", "sinks.0.kind=png",
        f"sinks.0.path={tmp_path / 'frames'}", "effects.people={}", "run.max_frames=15"])
    report = LivePipeline(cfg).run(show_progress=False)
    assert report.frames == 15 and report.cards > 0, "the camera went away and came back at least once"
    written = sorted((tmp_path / "frames").glob("*.png"))
    assert len(written) == report.frames + report.cards
    brightness = [cv2.imread(str(p)).mean() for p in written]
    cards = [b for b in brightness if b < 0.6 * max(brightness)]
    assert len(cards) == report.cards, "card frames are the dimmed last picture"


def test_e2ehim_engine_end_to_end_on_cpu(tmp_path):
    """A full-size E2E-HIM at a tiny input size, weights imported from an official-layout checkpoint whose
    every query is a whole-frame person: its mattes reach the output (the keying engine would have put the
    black background where the green screen is, the network keeps the whole frame)."""
    import torch

    from livematte.model.checkpoint import import_checkpoint
    from tests.e2ehim_helpers import official_state, whole_frame_people_model

    checkpoint = tmp_path / "official.pth"
    torch.save(official_state(whole_frame_people_model()), checkpoint)
    import_checkpoint(checkpoint, name="tiny")
    report = LivePipeline(config(tmp_path, "engine.kind=e2ehim", "engine.e2ehim.weights=tiny",
                                 "engine.e2ehim.input_size=[64, 96]")).run(show_progress=False)
    assert report.frames == FRAMES and report.engine.startswith("E2E-HIM")
    image, _, outside = regions(6)
    out = decoded(tmp_path / "out.mp4")[6].astype(int)
    assert np.abs(out[outside] - image[outside].astype(int)).mean() < 12, "the whole frame is a person"


def test_two_thousand_frames_keep_memory_flat(tmp_path):
    """Soak: traced allocations (NumPy's included) after 2,000 frames are within 1 MB of those after 500.
    Per-stage timings are kept in bounded windows; a leak of one small frame per frame would add 40 MB."""
    import threading
    import tracemalloc

    cfg = load_config(overrides=[
        "source.width=96", "source.height=64", "source.frames=2000", "source.people=4", "source.motion=1.0",
        "engine.kind=keying", "sinks.0.kind=null", "effects.default.effect=pixelate",
        "effects.people={1: {effect: tint}, 2: {effect: blur}}", "effects.background.kind=blur"])
    pipeline = LivePipeline(cfg)
    samples: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            frames = len(pipeline.times["sinks"])
            if frames >= 500 and 500 not in samples:
                samples[500] = tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        report = pipeline.run(show_progress=False)
        samples[2000] = tracemalloc.get_traced_memory()[0]
    finally:
        done.set()
        sampler.join()
        tracemalloc.stop()
    assert report.frames == 2000 and 500 in samples
    assert samples[2000] - samples[500] < 1 << 20, f"memory grew by {(samples[2000] - samples[500]) / 1e6:.1f} MB"


def test_a_network_engine_gets_the_frame_once_and_every_stage_reads_that_copy(tmp_path):
    """The frame goes to the engine's device once; inference, tracking, fusion and compositing read that copy
    (on the CPU a torch view of the frame's own memory), and the output is the host frame's composite."""
    import torch

    from kernels._arrays import host
    from livematte.engine.torch_engine import TorchEngine
    from livematte.frame import Frame
    from livematte.processor import FrameProcessor
    from tests.e2ehim_helpers import whole_frame_people_model

    engine = TorchEngine(whole_frame_people_model(), input_size=(64, 96), warmup=False)
    given = []
    infer = engine.infer
    engine.infer = lambda frames: given.append(frames[0]) or infer(frames)
    processor = FrameProcessor(config(tmp_path), engine)
    image = SyntheticScene(W, H, 3, seed=2).render(0)[0]
    for index in range(3):  # a person is confirmed on a second sighting
        tracked = processor.track(Frame(image, index, 0))
    processed = processor.render(tracked)
    assert isinstance(given[-1], torch.Tensor) and given[-1].data_ptr() == image.ctypes.data
    assert tracked.pixels is given[-1] and tracked.people.ids
    expected = processor.compositor.render(image, tracked.people.mattes, tracked.people.ids).image
    np.testing.assert_array_equal(processed.image, host(expected))


def test_each_worker_runs_its_kernels_on_its_share_of_the_cores(tmp_path, monkeypatch):
    """The three workers run numba kernels at the same time, so each gets cores // 3 threads (at least
    one): on two cores a parallel region otherwise waited for its second thread, busy in another stage."""
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    pipeline = LivePipeline(config(tmp_path))
    seen: dict[str, set[int]] = {}
    for stage in ("infer", "stabilize", "render"):
        work = getattr(pipeline.processor, stage)

        def counted(*args, _work=work, _stage=stage, **kwargs):
            seen.setdefault(_stage, set()).add(numba.get_num_threads())
            return _work(*args, **kwargs)

        monkeypatch.setattr(pipeline.processor, stage, counted)
    pipeline.run(show_progress=False)
    assert seen == {"infer": {1}, "stabilize": {1}, "render": {1}}
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS  # the caller's own count is left alone


def test_a_shutdown_names_the_worker_it_had_to_leave_behind(tmp_path, monkeypatch, caplog):
    """A stage stuck on a frame must not hold the outputs open: the shutdown waits its bounded time, says which
    worker and where it was busy (the one clue to a slow stop), and closes the outputs without it."""
    import pipelines.live

    monkeypatch.setattr(pipelines.live, "WORKER_STOP_S", 0.2)
    pipeline = LivePipeline(config(tmp_path, "source.frames=null"))
    busy, release = threading.Event(), threading.Event()
    render = pipeline.processor.render

    def stuck_render(tracked):
        busy.set()
        release.wait(30)
        return render(tracked)

    monkeypatch.setattr(pipeline.processor, "render", stuck_render)
    threading.Thread(target=lambda: busy.wait(30) and pipeline.stop(), daemon=True).start()
    try:
        pipeline.run(show_progress=False)
    finally:
        release.set()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("render worker did not stop within 0.2 s (busy in test_pipeline.py:" in w and "stuck_render" in w
               for w in warnings), warnings
