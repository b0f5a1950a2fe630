"""Temporal fusion twins against the guarded causal rule's pseudo-code, written out here pixel by pixel,
and hand-built cases of each rule. The change test is the colour-aware refinement of section 4
(largest per-channel change instead of the luma change; see kernels/temporal.py); the reference also
covers per-track motion compensation (shifted state and change test, blind tracks)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from kernels import Evidence, FusionParams, Motion, frame_changes, fuse_causal, fuse_exact, track_motion
from kernels._extent import whole

LOW, HIGH = np.float32(1 / 255), np.float32(254 / 255)


def cells_of(moved, p: FusionParams):
    """A cell changed when any of its pixels did."""
    h, w = moved.shape
    ch, cw = math.ceil(h / p.cell), math.ceil(w / p.cell)
    cells = np.zeros((ch, cw), np.uint8)
    for cy in range(ch):
        for cx in range(cw):
            cells[cy, cx] = moved[cy * p.cell:(cy + 1) * p.cell, cx * p.cell:(cx + 1) * p.cell].any()
    return cells


def ref_cells(frame, prev_frame, p: FusionParams):
    """(cells, new prev_frame): a pixel changed when max over B, G, R of |frame - prev_frame| > tau_y."""
    moved = np.abs(frame.astype(np.int64) - prev_frame.astype(np.int64)).max(axis=2) > p.tau_y
    return cells_of(moved, p), frame.copy()


def ref_track_cells(frame, prev_frame, shifts, p: FusionParams):
    """Per track: a pixel changed when its source p - shift lies outside the frame or max over B, G, R of
    |frame(p) - prev_frame(p - shift)| > tau_y."""
    h, w, _ = frame.shape
    maps = []
    for dy, dx in shifts:
        moved = np.ones((h, w), bool)
        for y, x in np.ndindex(h, w):
            if 0 <= y - dy < h and 0 <= x - dx < w:
                moved[y, x] = np.abs(frame[y, x].astype(int) - prev_frame[y - dy, x - dx].astype(int)).max() > p.tau_y
        maps.append(cells_of(moved, p))
    return np.stack(maps)


def ref_shift(now, before, max_shift):
    """(dy, dx): per axis the d minimising the L1 distance of the profiles of now and before moved by d,
    the first of 0, 1, -1, 2, -2, ... among equal costs."""
    def best(a, b):
        def cost(d):
            return sum(abs(a[x] - (b[x - d] if 0 <= x - d < len(b) else 0)) for x in range(len(a)))
        candidates = sorted(range(-max_shift, max_shift + 1), key=lambda d: (abs(d), -d))
        return min(candidates, key=cost)
    return best(now.sum(1), before.sum(1)), best(now.sum(0), before.sum(0))


def bt601(bgr):
    b, g, r = (int(v) for v in bgr)
    return (114 * b + 587 * g + 299 * r + 500) // 1000


def ref_delta(cells, y, x, s):
    cy, cx = y // s, x // s
    return cells[max(0, cy - 1):cy + 2, max(0, cx - 1):cx + 2].any()


def clamp(v):
    return 0.0 if v <= LOW else 1.0 if v >= HIGH else v


def ref_causal(alpha, matte, age, pend, new, cells, p: FusionParams, reset, motion=None, evidence=None):
    """The guarded causal rule, one pixel at a time (pend cleared on agreement, no state where prediction and matte
    are both 0); returns new (matte, age, pend). motion: (shifts, blind, per-track cells): track i reads its
    previous state at p - shifts[i] (0 outside the frame) and tests change on its own cells, except where the
    shared cells call p still: there it reads its own pixel's state and is static; a blind track reads at
    p - shifts[i] and is static everywhere; the scene cut stays on the shared cells. evidence: (fresh, dirty):
    a fresh track that is not blind changed where dirty (dilated) says so; a carried track's disagreement at
    a static pixel holds the value, ages it and keeps its pend, or sets it where none is; then also returns
    the new dirty."""
    n, h, w = alpha.shape
    shifts, blind, track_cells = motion or (np.zeros((n, 2), int), np.zeros(n, bool), [cells] * n)
    fresh, dirty = evidence or (np.ones(n, np.uint8), np.zeros((n, *cells.shape), np.uint8))
    out_matte, out_age, out_pend = np.empty_like(matte), np.empty_like(age), np.empty_like(pend)
    cut = cells.mean() > p.rho
    for i, y, x in np.ndindex(alpha.shape):
        here = motion is not None and not blind[i] and not ref_delta(cells, y, x, p.cell)
        sy, sx = (y, x) if here else (y - shifts[i][0], x - shifts[i][1])
        inside = 0 <= sy < h and 0 <= sx < w
        a = alpha[i, y, x]
        q, held, waited = (matte[i, sy, sx], age[i, sy, sx], pend[i, sy, sx]) if inside else (np.float32(0), 0, 0)
        changed = not (blind[i] or here) and ref_delta(track_cells[i], y, x, p.cell)
        changed = changed or (fresh[i] and not blind[i] and ref_delta(dirty[i], y, x, p.cell))
        if new[i] or reset or cut or changed or (a == 0 and q == 0):
            out, age_out, pend_out = a, 0, 0
        elif abs(a - q) <= np.float32(p.eps):
            if held < p.max_age:
                out, age_out, pend_out = q + np.float32(p.blend) * (a - q), held + 1, 0
            else:
                out, age_out, pend_out = a, 0, 0
        elif not fresh[i]:  # held; starts a wait where none is pending
            if held < p.max_age:
                out, age_out, pend_out = q, held + 1, waited or (1 if a > q else 2)
            else:
                out, age_out, pend_out = a, 0, 0
        elif waited != (1 if a > q else 2):  # a change waits until it goes the same way a second frame
            out, age_out, pend_out = q, held, 1 if a > q else 2
        else:
            out, age_out, pend_out = a, 0, 0
        out_matte[i, y, x], out_age[i, y, x], out_pend[i, y, x] = clamp(out), age_out, pend_out
    if evidence is None:
        return out_matte, out_age, out_pend
    return out_matte, out_age, out_pend, np.where(np.asarray(fresh, bool)[:, None, None], 0, dirty | cells)


class Stream:
    """Explicit state of one stream with N tracks, as a wrapper would hold it."""

    def __init__(self, tracks, h, w, p):
        self.p = p
        self.prev = np.zeros((h, w, 3), np.uint8)
        self.matte = np.zeros((tracks, h, w), np.float32)
        self.age = np.zeros((tracks, h, w), np.uint8)
        self.pend = np.zeros((tracks, h, w), np.uint8)

        self.dirty = np.zeros((tracks, *p.cells_shape(h, w)), np.uint8)

    def step(self, frame, alpha, new=None, reset=False, fresh=None):
        """fresh: each track's kernels.Evidence flag (None: no Evidence, every prediction fresh)."""
        cells, count = frame_changes(frame, self.prev, self.p)
        new = np.zeros(len(alpha), np.uint8) if new is None else np.asarray(new, np.uint8)
        evidence = None if fresh is None else Evidence(np.asarray(fresh, np.uint8), self.dirty)
        fused, cut = fuse_causal(np.asarray(alpha, np.float32), self.matte, self.age, self.pend, new, cells, count,
                                 self.p, reset=reset, evidence=evidence)
        return fused.copy(), bool(cut)


def test_cell_changes_match_reference():
    rng = np.random.default_rng(0)
    p = FusionParams(tau_y=10, cell=8)
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    prev = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    prev[:20] = np.clip(frame[:20].astype(int) + rng.integers(-10, 11, (20, 53, 3)), 0, 255)
    prev[3, 40, 1] = np.clip(int(frame[3, 40, 1]) + 11, 0, 255) if frame[3, 40, 1] < 128 else frame[3, 40, 1] - 11
    expected_cells, expected_frame = ref_cells(frame, prev, p)
    cells, count = frame_changes(frame, prev, p)
    assert cells.shape == (5, 7)
    np.testing.assert_array_equal(cells, expected_cells)
    assert count[0] == expected_cells.sum() and 0 < count[0] < cells.size
    assert expected_cells[0, 5] and not expected_cells[0, 4], "one channel over tau marks its cell alone"
    np.testing.assert_array_equal(prev, expected_frame)


@pytest.mark.parametrize("cell, tau", [(1, 10.0), (3, 10.5), (8, 0.0)])
def test_change_map_matches_reference_for_any_cell(cell, tau):
    rng = np.random.default_rng(cell)
    p = FusionParams(tau_y=tau, cell=cell)
    frame = rng.integers(0, 256, (29, 43, 3), dtype=np.uint8)
    noise = rng.integers(-12, 13, frame.shape) * (rng.random((29, 43, 1)) < 0.01)  # a few pixels move
    prev = np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8)
    expected_cells, expected_frame = ref_cells(frame, prev, p)
    cells, count = frame_changes(frame, prev, p)
    np.testing.assert_array_equal(cells, expected_cells)
    assert count[0] == expected_cells.sum() and 0 < count[0] < cells.size
    np.testing.assert_array_equal(prev, expected_frame)


def test_isoluminant_colour_change_is_detected():
    """Grey-green clothes over a green wall: equal luma, different colour. The luma test called this static."""
    p = FusionParams(tau_y=12, eps=0.05, cell=8)
    wall, sweater = (50, 175, 60), (150, 130, 120)
    assert abs(bt601(wall) - bt601(sweater)) <= p.tau_y
    stream = Stream(1, 16, 16, p)
    frame = np.empty((16, 16, 3), np.uint8)
    frame[:] = wall
    stream.step(frame, np.full((1, 16, 16), 0.0), reset=True)
    moved = frame.copy()
    moved[4:8, 4:8] = sweater
    cells, count = frame_changes(moved, frame.copy(), p)
    assert count[0] == 1 and cells[0, 0]
    fused, cut = stream.step(moved, np.full((1, 16, 16), 1.0))
    assert not cut and np.all(fused == 1.0), "the changed region takes the new prediction at once"
    np.testing.assert_array_equal(stream.prev, moved)


def flickering_sequence(n, h, w, frames=10, seed=1):
    """(frame, alpha, new): top rows of the frame change (all of it on frame 7: a scene cut), predictions
    flicker at random pixels (row 0 holds values at the saturation limits), random tracks are new."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    alpha = rng.random((n, h, w), dtype=np.float32)
    for t in range(frames):
        changed = frame.copy()
        changed[: 4 * (t % 3)] = rng.integers(0, 256, changed[: 4 * (t % 3)].shape)
        if t == 7:
            changed = rng.integers(0, 256, changed.shape, dtype=np.uint8)
        alpha = np.where(rng.random(alpha.shape) < 0.1, rng.random(alpha.shape), alpha).astype(np.float32)
        alpha[:, 0, :5] = [0.002, 0.9975, 0.5, 1.0, 0.0]
        yield changed, alpha.copy(), (rng.random(n) < 0.2).astype(np.uint8)
        frame = changed


@pytest.mark.parametrize("blend", [0.0, 0.25])
def test_causal_matches_reference_over_a_sequence(blend):
    p = FusionParams(tau_y=12, cell=4, rho=0.6, eps=0.1, max_age=3, blend=blend)
    h, w, n = 19, 23, 3
    stream = Stream(n, h, w, p)
    matte, age, pend = stream.matte.copy(), stream.age.copy(), stream.pend.copy()
    oldest = 0
    for t, (changed, alpha, new) in enumerate(flickering_sequence(n, h, w)):
        cells = ref_cells(changed, stream.prev, p)[0]
        matte, age, pend = ref_causal(alpha, matte, age, pend, new, cells, p, reset=t == 0)
        fused, cut = stream.step(changed, alpha, new, reset=t == 0)
        assert cut == (t == 0 or cells.mean() > p.rho)
        np.testing.assert_allclose(fused, matte, atol=1e-6)
        np.testing.assert_array_equal(stream.age, age)
        np.testing.assert_array_equal(stream.pend, pend)
        oldest = max(oldest, int(stream.age.max()))
    assert oldest == p.max_age, "the sequence must exercise the age limit"


@pytest.mark.parametrize("blend", [0.0, 0.25])
def test_zero_shifts_are_the_uncompensated_rule_bit_for_bit(blend):
    p = FusionParams(tau_y=12, cell=4, rho=0.6, eps=0.1, max_age=3, blend=blend)
    h, w, n = 19, 23, 3
    plain, compensated = Stream(n, h, w, p), Stream(n, h, w, p)
    for t, (frame, alpha, new) in enumerate(flickering_sequence(n, h, w)):
        cells, count = frame_changes(frame, plain.prev, p)
        frame_changes(frame, compensated.prev, p)
        fuse_causal(alpha, plain.matte, plain.age, plain.pend, new, cells, count, p, t == 0)
        still = Motion(np.zeros((n, 2), np.int32), np.zeros(n, np.uint8), np.repeat(cells[None], n, axis=0),
                       whole(n, h, w))
        fuse_causal(alpha, compensated.matte, compensated.age, compensated.pend, new, cells, count, p, t == 0, None,
                    still)
        for name in ("matte", "age", "pend"):
            np.testing.assert_array_equal(getattr(compensated, name), getattr(plain, name))


def test_shift_estimate_matches_reference():
    """Mattes in eighths: the profile sums are exact, so equal costs are equal on both sides."""
    rng = np.random.default_rng(3)
    n, h, w = 7, 9, 11
    p = FusionParams(max_shift=3)
    alpha = (rng.integers(0, 9, (n, h, w)) * (rng.random((n, h, w)) < 0.3) / 8).astype(np.float32)
    matte = (rng.integers(0, 9, (n, h, w)) * (rng.random((n, h, w)) < 0.3) / 8).astype(np.float32)
    matte[0] = np.roll(alpha[0], (-1, 2), axis=(0, 1))
    matte[1] = alpha[1]
    alpha[2], matte[2] = 0, 0
    alpha[2, 4, [4, 6]], matte[2, 4, 5] = 0.5, 1.0  # dx = 1 and -1 cost the same: the positive one wins
    matte[5] = 0  # no previous matte: no evidence
    alpha[6] = 0  # an empty prediction: no evidence, blind
    last = rng.integers(-3, 4, (n, 2)).astype(np.int32)
    frame = np.zeros((h, w, 3), np.uint8)
    motion = track_motion(alpha, matte, last, frame, frame.copy(), p)
    assert motion.shifts.dtype == np.int32 and motion.blind.dtype == np.uint8
    for i in range(5):
        assert tuple(motion.shifts[i]) == ref_shift(alpha[i], matte[i], p.max_shift)
    assert (tuple(motion.shifts[0]) == (1, -2) and tuple(motion.shifts[1]) == (0, 0)
            and tuple(motion.shifts[2]) == (0, 1))
    np.testing.assert_array_equal(motion.shifts[5:], last[5:])
    assert motion.blind.tolist() == [0, 0, 0, 0, 0, 0, 1]


def soft_ellipse(h, w, cy, cx, ry, rx):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.clip((1 - np.sqrt(((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2)) * 6, 0, 1).astype(np.float32)


def test_shift_of_a_translated_noisy_matte():
    rng = np.random.default_rng(2)
    h, w = 72, 96
    moves = [(3, -5), (-7, 2)]
    people = [(30, 30, 20, 10), (40, 65, 18, 12)]
    before = np.stack([soft_ellipse(h, w, *person) for person in people])
    now = np.stack([soft_ellipse(h, w, cy + dy, cx + dx, ry, rx) for (cy, cx, ry, rx), (dy, dx) in zip(people, moves)])
    edges = (now > 0) & (now < 1)
    now = np.clip(now + edges * rng.normal(0, 0.05, now.shape), 0, 1).astype(np.float32)
    now[0, 50:55, 38:43] = 1  # a pop beside the first person
    frame = np.zeros((h, w, 3), np.uint8)
    motion = track_motion(now, before, np.zeros((2, 2), np.int32), frame, frame.copy(), FusionParams())
    assert motion.shifts.tolist() == [list(m) for m in moves] and motion.blind.tolist() == [0, 0]


def moving_figures(frames=9, h=24, w=30, seed=7):
    """(frame, alpha): textured figures on a textured wall, each with its own velocity (one walks out of
    the frame), mattes in eighths; track 1 is missed on frame 5 and track 0 has a hole on frame 6."""
    rng = np.random.default_rng(seed)
    wall = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    skins = rng.integers(0, 256, (3, 9, 8, 3), dtype=np.uint8)
    starts, steps = [(2, 2), (13, 18), (7, 12)], [(1, 2), (-1, -2), (0, 3)]
    for t in range(frames):
        frame, alpha = wall.copy(), np.zeros((3, h, w), np.float32)
        for i, ((y0, x0), (dy, dx)) in enumerate(zip(starts, steps)):
            y, x = y0 + dy * t, x0 + dx * t
            (top, bottom), (left, right) = np.clip([y, y + 9], 0, h), np.clip([x, x + 8], 0, w)
            box = slice(top, bottom), slice(left, right)
            frame[box] = skins[i][top - y:bottom - y, left - x:right - x]
            alpha[i][box] = rng.choice([0.875, 1.0], alpha[i][box].shape)
        if t == 5:
            alpha[1] = 0
        if t == 6:
            alpha[0, 10:13, 15:18] = 0
        yield frame, alpha


@pytest.mark.parametrize("cell, tracked, in_turn", [(1, True, False), (2, True, False), (1, False, False),
                                                    (1, True, True), (2, False, True)])
def test_compensated_causal_matches_reference(cell, tracked, in_turn):
    """track_motion + fuse_causal against the reference with the estimated shifts, with and without state
    extents (whose windows must follow the motion); in_turn: the tracks' predictions are fresh in turn, one
    frame in three, as an engine that reads people in turn hands them on (kernels.Evidence)."""
    p = FusionParams(tau_y=12, cell=cell, rho=0.6, eps=0.1, max_age=3, max_shift=4)
    sequence = list(moving_figures())
    n, h, w = sequence[0][1].shape
    stream = Stream(n, h, w, p)
    shifts = np.zeros((n, 2), np.int32)
    extents = np.zeros((n, 4), np.int64) if tracked else None
    new = np.zeros(n, np.uint8)
    seen_shifts, seen_blind, seen_pend, oldest, seen_dirty = set(), 0, 0, 0, 0
    dirty = np.zeros((n, *p.cells_shape(h, w)), np.uint8)
    for t, (frame, alpha) in enumerate(sequence):
        evidence = Evidence(np.array([(t + i) % 3 == 0 for i in range(n)], np.uint8), dirty) if in_turn else None
        before = stream.prev.copy()
        motion = track_motion(alpha, stream.matte, shifts, frame, stream.prev, p, extents)
        np.testing.assert_array_equal(stream.prev, before)
        expected_cells = ref_track_cells(frame, before, motion.shifts, p)
        for i, (y0, y1, x0, x1) in enumerate(motion.windows):  # where the twin reads its cells
            if y1:
                near = (i, slice(max(0, y0 // cell - 1), (y1 - 1) // cell + 2),
                        slice(max(0, x0 // cell - 1), (x1 - 1) // cell + 2))
                np.testing.assert_array_equal(motion.cells[near], expected_cells[near])
        cells, count = frame_changes(frame, stream.prev, p)
        given = evidence and (evidence.fresh, dirty.copy())
        expected = ref_causal(alpha, stream.matte, stream.age, stream.pend, new, cells, p, t == 0,
                              (motion.shifts, motion.blind, expected_cells), given)
        fuse_causal(alpha, stream.matte, stream.age, stream.pend, new, cells, count, p, t == 0, extents, motion,
                    evidence)
        for got, want in zip((stream.matte, stream.age, stream.pend, dirty), expected):
            np.testing.assert_array_equal(got, want)
        if tracked:
            for i, (y0, y1, x0, x1) in enumerate(extents):
                inside = np.zeros((h, w), bool)
                inside[y0:y1, x0:x1] = True
                assert not (stream.matte[i][~inside].any() or stream.age[i][~inside].any()), "state outside its extent"
        shifts = motion.shifts
        seen_shifts |= {tuple(np.sign(s)) for s in shifts.tolist()}
        seen_blind += int(motion.blind.sum())
        seen_pend += int(stream.pend.sum())
        oldest = max(oldest, int(stream.age.max()))
        seen_dirty += int(dirty.sum())
    assert {(1, 1), (-1, -1), (0, 1)} <= seen_shifts and seen_blind > 0 and seen_pend > 0 and oldest == p.max_age
    assert (seen_dirty > 0) == in_turn


def test_what_did_not_change_in_place_keeps_its_own_state_whatever_the_shift():
    """A dancer's arm moves the whole track's shift; their still torso must be read where it is, not shifted."""
    p = FusionParams(blend=0.0, eps=0.05, max_age=30)
    h, w = 12, 16
    before = np.random.default_rng(3).choice([0.0, 0.5, 1.0], (1, h, w)).astype(np.float32)
    matte, age, pend = before.copy(), np.zeros((1, h, w), np.uint8), np.zeros((1, h, w), np.uint8)
    alpha = np.clip(before + 0.01, 0, 1)  # agrees with the state where it is, not with the state moved by 3
    frame = np.full((h, w, 3), 90, np.uint8)
    cells, count = frame_changes(frame, frame.copy(), p)  # nothing changed in place
    moved = np.ones((1, h, w), np.uint8)  # against the shifted previous frame, everything did
    motion = Motion(np.array([[0, 3]], np.int32), np.zeros(1, np.uint8), moved, whole(1, h, w))
    new = np.zeros(1, np.uint8)
    expected = ref_causal(alpha, matte, age, pend, new, cells, p, False, (motion.shifts, motion.blind, moved))
    fuse_causal(alpha, matte, age, pend, new, cells, count, p, False, None, motion)
    for got, want in zip((matte, age, pend), expected):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(matte, before)
    assert (age == 1).all(), "every pixel held"


def still_frame():
    return np.full((16, 16, 3), 100, np.uint8)


def warmed(alpha_value, p=FusionParams(blend=0.0, eps=0.05, max_age=30)):
    stream = Stream(1, 16, 16, p)
    stream.step(still_frame(), np.full((1, 16, 16), alpha_value), reset=True)
    return stream


def sparse_sequence(frames=12, n=3, h=30, w=40, seed=4):
    """Frames and small moving blobs of prediction (zeros elsewhere), some frames empty or noisy."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    for t in range(frames):
        alpha = np.zeros((n, h, w), np.float32)
        for i in range(n):
            if rng.random() < 0.8:
                y, x = (rng.integers(0, h - 6), rng.integers(0, w - 6)) if t % 4 == 0 else (2 + i * 8, 3 + t)
                alpha[i, y:y + 6, x:x + 6] = np.float32(0.5) + 0.05 * rng.random((6, 6), dtype=np.float32)
        changed = frame.copy()
        changed[(3 * t) % h:(3 * t) % h + 3] = rng.integers(0, 256, (min(3, h - (3 * t) % h), w, 3))
        yield changed, alpha
        frame = changed


@pytest.mark.parametrize("mode", ["causal", "exact"])
def test_state_extents_skip_empty_space_without_changing_the_result(mode):
    """The CPU twins' windows (prediction extent + state extent) give exactly the whole-frame result."""
    p = FusionParams(tau_y=12, eps=0.1, max_age=3)
    sequence = list(sparse_sequence())
    n, h, w = sequence[0][1].shape
    states = [Stream(n, h, w, p) for _ in range(2)]
    extents = np.zeros((n, 4), np.int64)
    flags = np.zeros(n, np.uint8)
    for t, ((frame, alpha), (after, alpha_next)) in enumerate(zip(sequence, sequence[1:])):
        for stream, kept in zip(states, (None, extents)):
            cells, count = frame_changes(frame, stream.prev, p)
            if mode == "causal":
                fuse_causal(alpha, stream.matte, stream.age, stream.pend, flags, cells, count, p, t == 0, kept)
            else:
                ahead, ahead_count = frame_changes(after, frame.copy(), p)
                fuse_exact(alpha, alpha_next, stream.matte, flags, flags + 1, cells, count, ahead, ahead_count, p,
                           t == 0, kept)
        for name in ("matte", "age", "pend"):
            np.testing.assert_array_equal(getattr(states[1], name), getattr(states[0], name))
        for i in range(n):
            y0, y1, x0, x1 = extents[i]
            inside = np.zeros((h, w), bool)
            inside[y0:y1, x0:x1] = True
            assert not (states[0].matte[i][~inside].any() or states[0].age[i][~inside].any()), \
                "state outside its extent"


def test_hold_keeps_previous_matte_where_static_and_agreeing():
    stream = warmed(0.5)
    fused, cut = stream.step(still_frame(), np.full((1, 16, 16), 0.53))
    assert not cut and np.all(fused == 0.5) and np.all(stream.age == 1)


def test_changed_image_takes_prediction():
    stream = warmed(0.5)
    frame = still_frame()
    frame[0:2, 0:2] = 250
    fused, _ = stream.step(frame, np.full((1, 16, 16), 0.53))
    near = np.zeros((16, 16), bool)
    near[:3, :3] = True  # per-pixel cells (the default): the changed 2 x 2 pixels and a one-pixel ring
    assert np.allclose(fused[0][near], 0.53) and np.all(stream.age[0][near] == 0)
    assert np.allclose(fused[0][~near], 0.5) and np.all(stream.age[0][~near] == 1)


def test_a_carried_prediction_is_no_news():
    """An engine that reads people in turn hands on its last look at the others: that repeated look must not
    count as a second frame of the same change, nor clear a wait."""
    stream = warmed(0.5)
    for fresh in (1, 0, 0):
        fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.9), fresh=[fresh])
        assert np.all(fused == 0.5), "held until a second look goes the same way"
    fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.9), fresh=[1])
    assert np.all(fused == 0.9)


def test_a_carried_change_waits_for_a_fresh_look_that_goes_the_same_way():
    """The optical flow moves a matte that the engine's last look left still: held, and taken when the
    engine's next look agrees with the flow (two looks), not before, and never if that look disagrees."""
    stream = warmed(0.5)
    for _ in range(3):
        fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.1), fresh=[0])
        assert np.all(fused == 0.5), "a carried prediction alone changes nothing"
    assert np.all(stream.pend == 2)
    fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.1), fresh=[1])
    assert np.all(fused == np.float32(0.1)), "the fresh look goes the flow's way: taken at once"
    stream = warmed(0.5)
    stream.step(still_frame(), np.full((1, 16, 16), 0.1), fresh=[0])
    fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.9), fresh=[1])
    assert np.all(fused == 0.5) and np.all(stream.pend == 1), "the other way: the read's own wait begins"


def test_the_first_look_at_a_picture_that_changed_unseen_is_taken_at_once():
    """Where the picture changed on a carried frame (an arm moved away), the next look shows it as it is now;
    waiting for a second look would leave a ghost of the arm."""
    stream = warmed(1.0)
    moved = still_frame()
    moved[4:8, 4:8] = 250
    stream.step(moved, np.full((1, 16, 16), 1.0), fresh=[0])  # the engine has not looked yet
    stream.step(moved, np.full((1, 16, 16), 1.0), fresh=[0])
    fused, _ = stream.step(moved, np.zeros((1, 16, 16)), fresh=[1])
    near = np.zeros((16, 16), bool)
    near[3:9, 3:9] = True  # the changed pixels and a one-pixel ring
    assert np.all(fused[0][near] == 0) and np.all(fused[0][~near] == 1.0)
    fused, _ = stream.step(moved, np.zeros((1, 16, 16)), fresh=[1])
    assert np.all(fused[0] == 0), "the rest is taken on the second look"


def test_dilation_reaches_neighbouring_cells_only():
    p = FusionParams(cell=4, eps=0.05, blend=0.0)
    stream = Stream(1, 16, 16, p)
    stream.step(still_frame(), np.full((1, 16, 16), 0.5), reset=True)
    frame = still_frame()
    frame[0, 0] = 250
    fused, _ = stream.step(frame, np.full((1, 16, 16), 0.53))
    np.testing.assert_allclose(fused[0, :8, :8], 0.53)
    assert np.all(fused[0, 8:, :] == 0.5) and np.all(fused[0, :, 8:] == 0.5)


def test_disagreement_waits_one_frame_then_is_accepted():
    stream = warmed(0.2)
    pop = np.full((1, 16, 16), 0.9)
    fused, _ = stream.step(still_frame(), pop)
    assert np.all(fused == np.float32(0.2)) and np.all(stream.pend == 1)
    fused, _ = stream.step(still_frame(), pop)
    assert np.all(fused == np.float32(0.9)) and np.all(stream.pend == 0)


def test_a_wobble_that_turns_back_keeps_waiting():
    """A learned engine's mask edge going up and down where the picture is still is never taken."""
    stream = warmed(0.5)
    outputs = [stream.step(still_frame(), np.full((1, 16, 16), v))[0][0, 0, 0] for v in (0.7, 0.3, 0.75, 0.25)]
    assert outputs == [np.float32(0.5)] * 4 and np.all(stream.pend == 2)
    fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.2))
    assert np.all(fused == np.float32(0.2)) and np.all(stream.pend == 0), "down twice: taken"


def test_one_frame_pop_is_ignored():
    stream = warmed(0.2)
    stream.step(still_frame(), np.full((1, 16, 16), 0.9))
    fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.21))
    assert np.all(fused == np.float32(0.2)) and np.all(stream.pend == 0)


def test_age_limit_bounds_how_long_a_value_is_carried():
    p = FusionParams(blend=0.0, eps=0.05, max_age=2)
    stream = warmed(0.5, p)
    outputs = [stream.step(still_frame(), np.full((1, 16, 16), 0.52))[0][0, 0, 0] for _ in range(3)]
    assert outputs == [np.float32(0.5), np.float32(0.5), np.float32(0.52)]


def test_scene_cut_resets_every_track():
    stream = Stream(2, 16, 16, FusionParams(blend=0.0, eps=0.05, rho=0.5))
    stream.step(still_frame(), np.full((2, 16, 16), 0.5), reset=True)
    stream.step(still_frame(), np.full((2, 16, 16), 0.9))
    assert np.all(stream.pend == 1)
    fused, cut = stream.step(np.full((16, 16, 3), 200, np.uint8), np.full((2, 16, 16), 0.52))
    assert cut and np.allclose(fused, 0.52) and np.all(stream.pend == 0) and np.all(stream.age == 0)


def test_new_track_takes_prediction_and_others_hold():
    stream = Stream(2, 16, 16, FusionParams(blend=0.0, eps=0.05))
    stream.step(still_frame(), np.full((2, 16, 16), 0.5), reset=True)
    fused, cut = stream.step(still_frame(), np.full((2, 16, 16), 0.52), new=[0, 1])
    assert not cut and np.all(fused[0] == 0.5) and np.allclose(fused[1], 0.52)


def test_blend_moves_towards_prediction():
    stream = warmed(0.5, FusionParams(eps=0.05, blend=0.5))
    fused, _ = stream.step(still_frame(), np.full((1, 16, 16), 0.54))
    np.testing.assert_allclose(fused, 0.52, atol=1e-6)


def test_saturation_clamp():
    stream = Stream(1, 4, 4, FusionParams())
    alpha = np.array([[0.003, 0.004, 0.996, 0.997]] * 4, np.float32)[None]
    fused, _ = stream.step(np.zeros((4, 4, 3), np.uint8), alpha, reset=True)
    np.testing.assert_array_equal(fused[0, 0], np.float32([0.0, 0.004, 0.996, 1.0]))


def test_no_tracks():
    stream = Stream(0, 8, 8, FusionParams())
    fused, cut = stream.step(still_frame()[:8, :8], np.zeros((0, 8, 8), np.float32), reset=True)
    assert fused.shape == (0, 8, 8) and cut


def ref_exact(alpha, alpha_next, matte, new, has_next, cells_fwd, cells_bwd, p, reset):
    out = np.empty_like(matte)
    fresh_all = reset or cells_fwd.mean() > p.rho or cells_bwd.mean() > p.rho
    for i, y, x in np.ndindex(alpha.shape):
        keep = (not fresh_all and not new[i] and has_next[i] and not ref_delta(cells_fwd, y, x, p.cell)
                and not ref_delta(cells_bwd, y, x, p.cell)
                and abs(alpha_next[i, y, x] - matte[i, y, x]) <= np.float32(p.eps))
        q, a = matte[i, y, x], alpha[i, y, x]
        moved = q + np.float32(p.blend) * (a - q) if abs(a - q) <= np.float32(p.eps) else q
        out[i, y, x] = clamp(moved if keep else a)
    return out


@pytest.mark.parametrize("blend", [0.0, 0.25])
def test_exact_matches_reference(blend):
    rng = np.random.default_rng(5)
    p = FusionParams(tau_y=12, cell=4, rho=0.6, eps=0.15, blend=blend)
    h, w, n = 17, 21, 3
    frames = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
    frames[1, 8:] = frames[0, 8:]
    frames[2, :12] = frames[1, :12]
    prev = np.zeros((h, w, 3), np.uint8)
    frame_changes(frames[0], prev, p)
    cells_fwd, count_fwd = frame_changes(frames[1], prev, p)
    cells_bwd, count_bwd = frame_changes(frames[2], prev, p)
    alpha = rng.random((n, h, w), dtype=np.float32)
    alpha_next = np.where(rng.random((n, h, w)) < 0.5, alpha, rng.random((n, h, w))).astype(np.float32)
    matte = np.where(rng.random((n, h, w)) < 0.5, alpha_next, rng.random((n, h, w))).astype(np.float32)
    new = np.array([0, 0, 1], np.uint8)
    has_next = np.array([1, 0, 1], np.uint8)
    expected = ref_exact(alpha, alpha_next, matte, new, has_next, cells_fwd, cells_bwd, p, False)
    fused, cut = fuse_exact(alpha, alpha_next, matte, new, has_next, cells_fwd, count_fwd, cells_bwd, count_bwd, p)
    assert not cut and fused is matte
    np.testing.assert_array_equal(matte, expected)
    assert (expected[0] == alpha[0]).any() and (expected[0] != alpha[0]).any()


def test_exact_two_sided_hold_and_release():
    p = FusionParams(blend=0.0, eps=0.05)
    frame = still_frame()
    prev = np.zeros((16, 16, 3), np.uint8)
    frame_changes(frame, prev, p)
    cells, count = frame_changes(frame, prev, p)
    flags = np.ones(1, np.uint8)
    matte = np.full((1, 16, 16), 0.2, np.float32)
    pop, back = np.full((1, 16, 16), 0.9, np.float32), np.full((1, 16, 16), 0.21, np.float32)
    fuse_exact(pop, back, matte, flags * 0, flags, cells, count, cells, count, p)
    assert np.all(matte == np.float32(0.2)), "a one-frame pop that the next frame contradicts is dropped at once"
    fuse_exact(pop, pop, matte, flags * 0, flags, cells, count, cells, count, p)
    assert np.all(matte == np.float32(0.9)), "a change the next frame confirms is taken at once"


def test_torch_state_is_updated_in_place():
    p = FusionParams(blend=0.0, eps=0.05)
    prev = torch.zeros((16, 16, 3), dtype=torch.uint8)
    frame = torch.from_numpy(still_frame())
    cells, count = frame_changes(frame, prev, p)
    assert isinstance(cells, torch.Tensor) and torch.all(prev == 100)
    matte = torch.zeros((1, 16, 16))
    age = torch.zeros((1, 16, 16), dtype=torch.uint8)
    pend = torch.zeros_like(age)
    fused, cut = fuse_causal(torch.full((1, 16, 16), 0.5), matte, age, pend, torch.zeros(1, dtype=torch.uint8),
                             cells, count, p, reset=True)
    assert fused is matte and bool(cut) and torch.all(matte == 0.5)


def test_errors_name_the_fix():
    p = FusionParams()
    with pytest.raises(TypeError, match="float32"):
        fuse_causal(np.zeros((1, 8, 8)), np.zeros((1, 8, 8), np.float32), np.zeros((1, 8, 8), np.uint8),
                    np.zeros((1, 8, 8), np.uint8), np.zeros(1, np.uint8), np.zeros((1, 1), np.uint8),
                    np.zeros(1, np.int32), p)
    with pytest.raises(ValueError, match="max_age"):
        FusionParams(max_age=300)
    with pytest.raises(ValueError, match="max_shift"):
        FusionParams(max_shift=0)
