"""CUDA sources: every .cu compiles with nvcc; on a CUDA device each kernel matches its CPU twin
(random data and real footage from ../shared/media). Without CuPy or a device the parity tests skip."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from kernels import (
    Background,
    Effect,
    Evidence,
    FusionParams,
    PersonLayers,
    Scene,
    composite,
    feather,
    frame_changes,
    fuse_causal,
    fuse_exact,
    gpu_available,
    masked_blur,
    preprocess,
    track_motion,
)
from kernels._arrays import kind_of
from kernels._cuda import SOURCE_DIR, source_text, sources
from kernels.composite import BOX_COLUMNS, TINT_COLUMNS, Column
from livematte.synthetic import SyntheticScene


def gpu(test):
    """A parity test: marked `gpu` (selected by `pytest -m gpu`), skipped without CuPy and a device."""
    skip = pytest.mark.skipif(not gpu_available(), reason="CuPy is not installed or sees no CUDA device")
    return pytest.mark.gpu(skip(test))


def test_there_are_cuda_sources_for_every_kernel_module():
    assert {path.stem for path in sources()} == {"blur", "composite", "feather", "preprocess", "temporal"}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("source", sources(), ids=lambda p: p.name)
def test_cuda_source_compiles(source, tmp_path):
    """The text the runtime compiles (kernels/_cuda.py source_text), not the bare file."""
    compiled = tmp_path / source.name
    compiled.write_text(source_text(source.stem))
    ptx = tmp_path / f"{source.stem}.ptx"
    run = subprocess.run(["nvcc", "--ptx", "-arch=compute_80", "-std=c++17", "-Werror", "all-warnings",
                          "-o", str(ptx), str(compiled)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert ".visible .entry" in ptx.read_text()


def test_composite_source_gets_the_python_codes_and_columns():
    """composite.cu reads the packed rows and the codes by the names that kernels/composite.py defines; the
    tint and box columns are consecutive, as both kernels read them by offset or slice."""
    defined = dict(re.findall(r"^#define (\w+) (-?\d+)$", source_text("composite"), re.MULTILINE))
    expected = {f"{prefix}_{member.name}": str(int(member))
                for prefix, table in (("EFFECT", Effect), ("BACKGROUND", Background), ("COL", Column))
                for member in table}
    assert defined == {**expected, "COL_COUNT": str(len(Column))}
    assert [Column(c) for c in range(len(Column))[TINT_COLUMNS]] == [Column.TINT_B, Column.TINT_G, Column.TINT_R]
    assert [Column(c) for c in range(len(Column))[BOX_COLUMNS]] == [Column.X0, Column.Y0, Column.X1, Column.Y1]
    own = (SOURCE_DIR / "composite.cu").read_text()
    assert not re.search(r"^\s*#\s*define", own, re.MULTILINE), "a number defined by hand"
    assert not re.search(r"\b(row|people)\[[^\]]*\b\d", own), "a packed column read by number"


def test_unknown_array_types_are_rejected():
    with pytest.raises(TypeError, match="NumPy, CuPy or torch"):
        kind_of([[1, 2]])


def people_mattes(h, w, n, seed=0):
    """Soft-edged ellipses, a stand-in for person mattes on real footage (no ground truth exists)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w), np.float32)
    for i in range(n):
        cy, cx = rng.uniform(0.3, 0.7) * h, (i + 0.5) / n * w
        ry, rx = 0.35 * h, 0.6 * w / n
        d = np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)
        out[i] = np.clip((1.0 - d) * 8.0, 0.0, 1.0)
    return out


def video_frames(media, count):
    import cv2

    capture = cv2.VideoCapture(str(media / "video_test2.mp4"))
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        assert ok, "could not decode video_test2.mp4"
        frames.append(frame)
    capture.release()
    return frames


def cases(shared_media=None):
    """Noise, the synthetic scene, and real footage where ../shared/media is present."""
    rng = np.random.default_rng(0)
    yield "random 37x53", [rng.integers(0, 256, (37, 53, 3), dtype=np.uint8) for _ in range(3)]
    scene = SyntheticScene(320, 180, 3)
    yield "synthetic 320x180", [scene.render(i)[0] for i in range(3)]
    if shared_media is not None:
        yield "video_test2", video_frames(shared_media, 3)


def close_bytes(gpu_out, cpu_out):
    """uint8 outputs: float32 (GPU) vs float64 (CPU) sums may round a half level differently."""
    diff = np.abs(gpu_out.astype(np.int16) - cpu_out.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@gpu
def test_parity_preprocess(optional_media):
    import cupy

    for _, frames in cases(optional_media):
        batch = np.stack(frames)
        cpu, box = preprocess(batch, (352, 640))
        dev, dev_box = preprocess(cupy.asarray(batch), (352, 640))
        assert dev_box == box
        np.testing.assert_allclose(cupy.asnumpy(dev), cpu, atol=1e-4)


@gpu
def test_parity_temporal(optional_media):
    import cupy

    p = FusionParams(tau_y=10, eps=6 / 255, max_age=2, blend=0.2)
    for _, frames in cases(optional_media):
        h, w, _ = frames[0].shape
        n = 4
        host = dict(prev=np.zeros((h, w, 3), np.uint8), matte=np.zeros((n, h, w), np.float32),
                    age=np.zeros((n, h, w), np.uint8), pend=np.zeros((n, h, w), np.uint8))
        dev = {k: cupy.asarray(v) for k, v in host.items()}
        new = np.array([0, 1, 0, 0], np.uint8)
        for t, frame in enumerate(frames):
            alpha = people_mattes(h, w, n, seed=t)
            c_cells, c_count = frame_changes(frame, host["prev"], p)
            g_cells, g_count = frame_changes(cupy.asarray(frame), dev["prev"], p)
            np.testing.assert_array_equal(cupy.asnumpy(g_cells), c_cells)
            assert int(g_count[0]) == int(c_count[0])
            np.testing.assert_array_equal(cupy.asnumpy(dev["prev"]), host["prev"])
            c_out = fuse_causal(alpha, host["matte"], host["age"], host["pend"], new, c_cells, c_count, p, reset=t == 0)
            g_out = fuse_causal(cupy.asarray(alpha), dev["matte"], dev["age"], dev["pend"], cupy.asarray(new),
                                g_cells, g_count, p, reset=t == 0)
            assert bool(g_out.scene_cut) == bool(c_out.scene_cut)
            np.testing.assert_allclose(cupy.asnumpy(dev["matte"]), host["matte"], atol=1e-6)
            np.testing.assert_array_equal(cupy.asnumpy(dev["age"]), host["age"])
            np.testing.assert_array_equal(cupy.asnumpy(dev["pend"]), host["pend"])
        alpha_next = people_mattes(h, w, n, seed=9)
        flags = np.array([0, 0, 1, 1], np.uint8)
        fuse_exact(alpha, alpha_next, host["matte"], flags, 1 - flags, c_cells, c_count, c_cells, c_count, p)
        fuse_exact(cupy.asarray(alpha), cupy.asarray(alpha_next), dev["matte"], cupy.asarray(flags),
                   cupy.asarray(1 - flags), g_cells, g_count, g_cells, g_count, p)
        np.testing.assert_allclose(cupy.asnumpy(dev["matte"]), host["matte"], atol=1e-6)


@gpu
@pytest.mark.parametrize("in_turn", [False, True])
def test_parity_temporal_motion(in_turn):
    """track_motion + fuse_causal with moving people, one missed for a frame: shifts, blind flags and the
    fused state agree. Mattes in eighths make the profile sums exact on both sides; the CPU side tracks
    its extents, the GPU side covers every pixel. in_turn: each person's prediction is fresh one frame in
    two (kernels.Evidence), and the changes since each one's last fresh frame agree too."""
    import cupy

    p = FusionParams(tau_y=10, cell=2, eps=6 / 255, max_age=2, blend=0.2, max_shift=6)
    h, w, n = 48, 64, 3
    base = np.round(people_mattes(h, w, n) * 8) / 8
    wall = np.random.default_rng(1).integers(0, 256, (h, w, 3), dtype=np.uint8)
    host = dict(prev=np.zeros((h, w, 3), np.uint8), matte=np.zeros((n, h, w), np.float32),
                age=np.zeros((n, h, w), np.uint8), pend=np.zeros((n, h, w), np.uint8),
                shifts=np.zeros((n, 2), np.int32), dirty=np.zeros((n, *p.cells_shape(h, w)), np.uint8))
    dev = {k: cupy.asarray(v) for k, v in host.items()}
    extents = np.zeros((n, 4), np.int64)
    new = np.zeros(n, np.uint8)
    for t in range(6):
        alpha = np.stack([np.roll(base[i], (t * (i - 1), 2 * t), axis=(0, 1)) for i in range(n)]).astype(np.float32)
        alpha[1] *= t != 3
        frame = np.where(alpha.max(axis=0)[..., None] > 0.5, np.uint8(200), wall)
        c_motion = track_motion(alpha, host["matte"], host["shifts"], frame, host["prev"], p, extents)
        g_motion = track_motion(cupy.asarray(alpha), dev["matte"], dev["shifts"], cupy.asarray(frame), dev["prev"], p)
        np.testing.assert_array_equal(cupy.asnumpy(g_motion.shifts), c_motion.shifts)
        np.testing.assert_array_equal(cupy.asnumpy(g_motion.blind), c_motion.blind)
        c_cells, c_count = frame_changes(frame, host["prev"], p)
        g_cells, g_count = frame_changes(cupy.asarray(frame), dev["prev"], p)
        fresh = np.array([(t + i) % 2 == 0 for i in range(n)], np.uint8)
        c_evidence = Evidence(fresh, host["dirty"]) if in_turn else None
        g_evidence = Evidence(cupy.asarray(fresh), dev["dirty"]) if in_turn else None
        c_out = fuse_causal(alpha, host["matte"], host["age"], host["pend"], new, c_cells, c_count, p, t == 0, extents,
                            c_motion, c_evidence)
        g_out = fuse_causal(cupy.asarray(alpha), dev["matte"], dev["age"], dev["pend"], cupy.asarray(new), g_cells,
                            g_count, p, t == 0, None, g_motion, g_evidence)
        assert bool(g_out.scene_cut) == bool(c_out.scene_cut)
        np.testing.assert_allclose(cupy.asnumpy(dev["matte"]), host["matte"], atol=1e-6)
        np.testing.assert_array_equal(cupy.asnumpy(dev["age"]), host["age"])
        np.testing.assert_array_equal(cupy.asnumpy(dev["pend"]), host["pend"])
        np.testing.assert_array_equal(cupy.asnumpy(dev["dirty"]), host["dirty"])
        host["shifts"], dev["shifts"] = c_motion.shifts, g_motion.shifts
    assert c_motion.shifts[:, 1].tolist() == [2, 2, 2], "the people moved and were followed"


@gpu
def test_isoluminant_change_detected_on_gpu():
    """frame_changes compares B, G, R, not luma: an equal-luma colour change marks its cell on both sides."""
    import cupy

    p = FusionParams(tau_y=12, cell=8)
    wall, sweater = np.uint8([50, 175, 60]), np.uint8([150, 130, 120])
    grey = [(114 * int(c[0]) + 587 * int(c[1]) + 299 * int(c[2]) + 500) // 1000 for c in (wall, sweater)]
    assert abs(grey[0] - grey[1]) <= p.tau_y, "BT.601 lumas within tau: the old luma test saw no change"
    before = np.broadcast_to(wall, (37, 53, 3)).copy()
    after = before.copy()
    after[20:23, 25:28] = sweater  # inside cell (2, 3)
    host, dev = before.copy(), cupy.asarray(before)
    c_cells, c_count = frame_changes(after, host, p)
    g_cells, g_count = frame_changes(cupy.asarray(after), dev, p)
    assert int(c_count[0]) == int(g_count[0]) == 1 and c_cells[2, 3] == 1
    np.testing.assert_array_equal(cupy.asnumpy(g_cells), c_cells)
    np.testing.assert_array_equal(cupy.asnumpy(dev), after)
    np.testing.assert_array_equal(host, after)


@gpu
def test_parity_blur_feather_composite(optional_media):
    import cupy

    for _, frames in cases(optional_media):
        frame = frames[0]
        h, w, _ = frame.shape
        alphas = people_mattes(h, w, 5)
        close_bytes(cupy.asnumpy(masked_blur(cupy.asarray(frame), cupy.asarray(alphas), 9)),
                    masked_blur(frame, alphas, 9))
        np.testing.assert_allclose(cupy.asnumpy(feather(cupy.asarray(alphas), 4)), feather(alphas, 4), atol=1e-6)
        effects = [Effect.KEEP, Effect.HIDE, Effect.TINT, Effect.BLUR, Effect.PIXELATE]
        layers = PersonLayers(np.array(effects, np.int32), np.full((5, 3), 180, np.float32),
                              np.full(5, 0.4, np.float32), np.array([0, -1, 1, -1, 0], np.int32))
        own = np.stack([np.full((h, w, 3), 30, np.uint8), np.full((h, w, 3), 220, np.uint8)])
        for background in Background:
            scene = Scene(background=background, color=(0.0, 255.0, 0.0), blur_radius=7, privacy_radius=5)
            image = frames[-1]
            cpu = composite(frame, alphas, layers, scene, image=image, own_images=own)
            dev = composite(cupy.asarray(frame), cupy.asarray(alphas), layers, scene, image=cupy.asarray(image),
                            own_images=cupy.asarray(own))
            close_bytes(cupy.asnumpy(dev), cpu)
        spot = PersonLayers.uniform(5, Effect.SPOTLIGHT)
        close_bytes(cupy.asnumpy(composite(cupy.asarray(frame), cupy.asarray(alphas), spot, Scene())),
                    composite(frame, alphas, spot, Scene()))


@gpu
def test_torch_cuda_tensors_cross_by_dlpack():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device here")
    frame = torch.randint(0, 256, (37, 53, 3), dtype=torch.uint8, device="cuda")
    result, _ = preprocess(frame, (32, 64))
    assert isinstance(result, torch.Tensor) and result.is_cuda
    expected, _ = preprocess(frame.cpu().numpy(), (32, 64))
    np.testing.assert_allclose(result.cpu().numpy(), expected, atol=1e-4)
