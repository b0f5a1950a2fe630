"""Layer composite with per-person effects; composite.cu computes the same function.

Per output pixel:
1. Scene background: the original frame, a solid colour, an image, the halo-free blur of the frame
   (kernels.blur.background_blur: masked_blur of all people, reduced for large radii on the CPU) or transparent.
2. Own backgrounds: when any person has an own background image, the frame is split into regions by
   the nearest person (Euclidean distance to the person's box; boxes with x1 < x0 are absent people).
   With d1 <= d2 the distances to the nearest and second-nearest person, the nearest one's background
   is weighted t = clamp(0.5 + (d2 - d1) / (2 * region_feather), 0, 1): a linear cross-fade of width
   region_feather pixels around the boundary. Index -1 means the scene background.
3. People in depth order (given order = back to front) with depth-ordered normalisation: from the front
   person back, each takes w_i = min(alpha_i, what is left of 1), so the weights never sum above 1,
   untouched where they already sum to at most 1 and the nearer person wins an overlap.
   colour = sum_i w_i * m_i * layer_i + (1 - sum_i w_i) * m_bg * background, where layer_i is the
   person's effect: keep / spotlight (original pixels), hide (the background), tint
   ((1 - s) * original + s * colour), blur (the privacy blur: masked_blur of_people over the blurred
   and pixelated people, so no background colour bleeds in), pixelate (the privacy blur sampled at
   the centre of the pixel's block). m = spotlight_dim for every layer except spotlit
   people (and the background) when anyone is spotlit, else 1.
4. Output: uint8 BGR, or BGRA (straight colour, alpha = coverage) when the background is transparent;
   values are clamped to [0, 255] and rounded half up.
Alphas are expected in [0, 1] (negative values count as 0). The outward feather is kernels.feather.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from kernels import _cuda
from kernels._arrays import checked, leading, native, on_gpu, restore, xp_of
from kernels._extent import whole
from kernels.blur import background_blur, masked_blur, masked_blur_at


class Effect(IntEnum):
    KEEP = 0
    HIDE = 1
    TINT = 2
    BLUR = 3
    PIXELATE = 4
    SPOTLIGHT = 5


class Background(IntEnum):
    ORIGINAL = 0
    COLOR = 1
    IMAGE = 2
    TRANSPARENT = 3
    BLUR = 4


class Column(IntEnum):
    """The columns of the packed per-person rows (PersonLayers.packed) that both kernels read: the CPU twin
    indexes them by these names (numba freezes them as constants), composite.cu by the COL_ names below."""

    EFFECT = 0
    TINT_B = 1
    TINT_G = 2
    TINT_R = 3
    STRENGTH = 4
    BACKGROUND = 5
    X0 = 6
    Y0 = 7
    X1 = 8
    Y1 = 9


TINT_COLUMNS = slice(Column.TINT_B, Column.TINT_R + 1)
BOX_COLUMNS = slice(Column.X0, Column.Y1 + 1)
REGION_BLOCK = 64  # columns over which the CPU twin's region step bounds each person's distance at once

# composite.cu's names for the codes and columns (EFFECT_BLUR, BACKGROUND_IMAGE, COL_X0, COL_COUNT, ...):
# kernels/_cuda.py puts these #defines before the source, so each number is written only in the enums above.
CUDA_DEFINES = _cuda.defines({"EFFECT": Effect, "BACKGROUND": Background, "COL": Column}, COL_COUNT=len(Column))


@dataclass(frozen=True)
class Scene:
    """Frame-wide settings. color: B, G, R (0..255) of Background.COLOR; blur_radius: box radius of the
    background blur; privacy_radius: box radius of the blur behind Effect.BLUR and PIXELATE;
    pixel_block: pixelation block side; spotlight_dim: brightness kept by everything not spotlit;
    region_feather: width in pixels of the cross-fade between own-background regions. The defaults are the
    config's (livematte/config.py EffectsConfig; tests/test_defaults.py holds them equal)."""

    background: Background = Background.ORIGINAL
    color: tuple[float, float, float] = (64.0, 177.0, 0.0)  # chroma green, #00b140
    blur_radius: int = 21
    privacy_radius: int = 12
    pixel_block: int = 16
    spotlight_dim: float = 0.3
    region_feather: float = 32.0

    def __post_init__(self):
        if self.blur_radius < 0 or self.privacy_radius < 0:
            raise ValueError(f"blur radii must be >= 0, got {self.blur_radius} and {self.privacy_radius}")
        if self.pixel_block < 1:
            raise ValueError(f"pixel_block must be at least 1, got {self.pixel_block}")
        if self.region_feather <= 0:
            raise ValueError(f"region_feather must be > 0 pixels, got {self.region_feather}")
        if not 0.0 <= self.spotlight_dim <= 1.0:
            raise ValueError(f"spotlight_dim must be in [0, 1], got {self.spotlight_dim}")


@dataclass(frozen=True)
class PersonLayers:
    """Per-person effect parameters, in depth order (back to front). effect: (N,) Effect codes;
    tint: (N, 3) B, G, R colour of Effect.TINT; strength: (N,) tint strength in [0, 1];
    background: (N,) index into the own-background images, -1 for the scene background."""

    effect: np.ndarray
    tint: np.ndarray
    strength: np.ndarray
    background: np.ndarray

    @classmethod
    def uniform(cls, count: int, effect: Effect = Effect.KEEP) -> "PersonLayers":
        return cls(np.full(count, int(effect), np.int32), np.zeros((count, 3), np.float32),
                   np.zeros(count, np.float32), np.full(count, -1, np.int32))

    def __post_init__(self):
        count = len(self.effect)
        for name, arr, shape in (("tint", self.tint, (count, 3)), ("strength", self.strength, (count,)),
                                 ("background", self.background, (count,))):
            if np.shape(arr) != shape:
                raise ValueError(f"PersonLayers.{name} must have shape {shape} for {count} people, got {np.shape(arr)}")
        codes = set(np.asarray(self.effect).tolist())
        unknown = sorted(codes - {int(e) for e in Effect})
        if unknown:
            raise ValueError(f"PersonLayers.effect holds unknown codes {unknown}: use kernels.Effect values")

    def packed(self, boxes: np.ndarray) -> np.ndarray:
        """(N, len(Column)) float32 rows, one per person, in the Column layout the kernels read."""
        rows = np.empty((len(self.effect), len(Column)), np.float32)
        rows[:, Column.EFFECT] = self.effect
        rows[:, TINT_COLUMNS] = self.tint
        rows[:, Column.STRENGTH] = self.strength
        rows[:, Column.BACKGROUND] = self.background
        rows[:, BOX_COLUMNS] = np.asarray(boxes, np.float32).reshape(-1, 4)
        return rows


def person_boxes(alphas, threshold: float = 0.5) -> np.ndarray:
    """(N, 4) float32 host array of [x0, y0, x1, y1] pixel bounds of alpha > threshold per person;
    people with no such pixel get x1 < x0 (absent). Synchronises when alphas live on the GPU."""
    people = native(alphas)
    xp = xp_of(people)
    inside = people > threshold
    rows = inside.any(axis=2).astype(np.int64)
    cols = inside.any(axis=1).astype(np.int64)
    h, w = people.shape[1:]
    bounds = xp.stack([cols.argmax(axis=1), rows.argmax(axis=1), w - 1 - cols[:, ::-1].argmax(axis=1),
                       h - 1 - rows[:, ::-1].argmax(axis=1), rows.max(axis=1)], axis=1)
    bounds = np.asarray(bounds.get() if on_gpu(bounds) else bounds, np.float32)
    boxes = bounds[:, :4]
    boxes[bounds[:, 4] == 0] = (1.0, 1.0, 0.0, 0.0)
    return boxes


@njit(cache=True)
def _round_byte(v):
    """Clamp to [0, 255] and round half up (truncation of a non-negative value + 0.5)."""
    return np.uint8(min(255.0, max(0.0, v)) + 0.5)


@njit(cache=True)
def _nearest_two(people, present, xs, y, feather, j1, j2, t):
    """Per pixel of row y (xs: its columns, ascending): the nearest present person j1, the second nearest
    j2 (-1 when there is none) and the nearest one's weight t = clamp(0.5 + (d2 - d1) / (2 * feather),
    0, 1) (1 without a second). Selects instead of branches, so the loop over x vectorises; strict <
    keeps the earlier person on a tie, as the rule does. Block by block of REGION_BLOCK columns, a person
    who is nowhere in the block as near as two others are everywhere in it (the two whose farthest
    distance there is smallest) is never among the nearest two there and is skipped: the same ranking,
    in the same order, of the same distances (the bounds round as the distances do)."""
    w = xs.shape[0]
    d1, d2 = np.full(w, np.inf), np.full(w, np.inf)
    j1[:] = -1
    j2[:] = -1
    count = present.shape[0]
    dyy, nearest, farthest = _row_reach(people, present, y), np.empty(count), np.empty(count)
    for block in range(0, w, REGION_BLOCK):
        s, e = np.uint64(block), np.uint64(min(w, block + REGION_BLOCK))  # unsigned: see the span helpers
        beyond = _block_reach(people, present, dyy, xs[s], xs[e - 1], nearest, farthest)
        for k in range(count):
            if nearest[k] > beyond:
                continue
            i = present[k]
            x0, x1 = float(people[i, Column.X0]), float(people[i, Column.X1])
            for x in range(s, e):
                dx = max(x0 - xs[x], xs[x] - x1, 0.0)
                d = np.sqrt(dx * dx + dyy[k])
                a, b = d1[x], d2[x]
                nearer, second = d < a, d < b
                j2[x] = j1[x] if nearer else (i if second else j2[x])
                d2[x] = a if nearer else (d if second else b)
                j1[x] = i if nearer else j1[x]
                d1[x] = d if nearer else a
    for x in range(w):
        t[x] = min(1.0, max(0.0, 0.5 + (d2[x] - d1[x]) / (2.0 * feather)))


@njit(cache=True)
def _row_reach(people, present, y):
    """Each present person's squared vertical distance to row y."""
    dyy = np.empty(present.shape[0])
    for k in range(present.shape[0]):
        dy = max(people[present[k], Column.Y0] - y, y - people[present[k], Column.Y1], 0.0)
        dyy[k] = dy * dy
    return dyy


@njit(cache=True)
def _block_reach(people, present, dyy, first, last, nearest, farthest):
    """Each present person's nearest and farthest distance on columns first..last of a row (into nearest and
    farthest, given dyy of _row_reach); returns the distance within which two people are everywhere there:
    a person whose nearest lies beyond it is never among the nearest two there."""
    for k in range(present.shape[0]):
        x0, x1 = float(people[present[k], Column.X0]), float(people[present[k], Column.X1])
        near, far = max(x0 - last, first - x1, 0.0), max(x0 - first, last - x1, 0.0)
        nearest[k], farthest[k] = np.sqrt(near * near + dyy[k]), np.sqrt(far * far + dyy[k])
    return _second_smallest(farthest)


@njit(cache=True)
def _own_near(people, present, own_index, dyy, first, last, nearest, farthest):
    """Whether a person with an own background can be among the nearest two on columns first..last of a row
    (dyy of _row_reach; nearest and farthest are scratch for _block_reach)."""
    beyond = _block_reach(people, present, dyy, first, last, nearest, farthest)
    for k in range(present.shape[0]):
        if own_index[present[k]] >= 0 and nearest[k] <= beyond:
            return True
    return False


@njit(cache=True)
def _second_smallest(values):
    """The second smallest of `values` (inf when there are fewer than two)."""
    a = b = np.inf
    for v in values:
        if v < b:
            a, b = (v, a) if v < a else (a, v)
    return b


# The span helpers index with unsigned columns s <= x < e: numba then adds no negative-index wraparound
# to each access, which would keep LLVM from vectorising the loops.

@njit(cache=True)
def _span_end(key, s):
    """First column after s whose key differs from that of s (unsigned, like s). Spans are long, so
    blocks of 16 columns are compared at once first."""
    first = key[s]
    end = np.uint64(key.shape[0])
    block = np.uint64(16)
    x = s
    while x + block <= end:
        differ = 0
        for j in range(x, x + block):
            differ += key[j] != first
        if differ:
            break
        x += block
    for j in range(x, end):
        if key[j] != first:
            return j
    return end


@njit(cache=True)
def _own_of(own, k, y, s, e, out):
    """out[:, s:e] = own image k on columns s..e-1 of row y, opaque; channel by channel, so it vectorises."""
    for c in range(3):
        for x in range(s, e):
            out[c, x] = own[k, y, x, c]
    for x in range(s, e):
        out[3, x] = 1.0


@njit(cache=True)
def _blend(bg, own, y, k1, k2, t, s, e, g, o):
    """bg = t * g + (1 - t) * o on columns s..e-1, g and o the backgrounds of the nearest and second
    person (own images k1, k2; -1: the scene background bg itself); g, o are scratch rows."""
    if k1 >= 0:
        _own_of(own, k1, y, s, e, g)
    if k2 >= 0:
        _own_of(own, k2, y, s, e, o)
    first, second = k1 >= 0, k2 >= 0
    for c in range(4):
        for x in range(s, e):
            a, b = t[x], bg[c, x]
            bg[c, x] = a * (g[c, x] if first else b) + (1.0 - a) * (o[c, x] if second else b)


@njit(cache=True)
def _region_keys(people, present, y, feather, s, e, key, t):
    """Row y's region on columns [s, e) (into key and t, row-wide arrays): key = -1 - nearest where t = 1,
    else nearest * count + second."""
    j1, j2 = np.empty(e - s, np.int64), np.empty(e - s, np.int64)
    _nearest_two(people, present, np.arange(s, e).astype(np.float64), y, feather, j1, j2, t[s:e])
    count = people.shape[0]
    for x in range(s, e):
        key[x] = -1 - j1[x - s] if t[x] == 1.0 else j1[x - s] * count + j2[x - s]


@njit(cache=True)
def _region_spans(bg, own_index, own, y, key, t, count, s, e):
    """Replace the scene background of row y by the nearest people's own backgrounds on columns [s, e) of
    bg (in place), span by span of columns that share the nearest two people (_region_keys). Where t = 1,
    t * g + (1 - t) * o is g (up to the sign of a zero), so the nearest person's own background is copied,
    or the scene background left as it is; elsewhere the blend is computed as written, even of the scene
    background with itself (which is not always itself in the last bit)."""
    g, o = np.empty((4, bg.shape[1])), np.empty((4, bg.shape[1]))
    x, e = np.uint64(s), np.uint64(e)
    while x < e:
        end = _span_end(key[:e], x)
        k = key[x]
        if k >= 0:
            _blend(bg, own, y, own_index[k // count], own_index[k % count], t, x, end, g, o)
        elif own_index[-1 - k] >= 0:
            _own_of(own, own_index[-1 - k], y, x, end, bg)
        x = end


@njit(cache=True)
def _regions_only(base, base_mode, base_color, others, target, people, present, own_index, own, y, feather, key, t,
                  s, e):
    """target[s:e] where nobody is, opaque, with own backgrounds: what the full rule gives with no weight
    taken (0 + others * region background, rounded), block by block of REGION_BLOCK columns, span by span
    (key and t are row-wide scratch), without the full rule's rows of floats. Where the region shows the
    scene or one own image, _scene_only of those bytes; also where it blends the scene with itself, when
    that scene is bytes and nobody is dimmed: t * b + (1 - t) * b lies within a few ulps of the byte b,
    which rounds half up to b. So a block where no person with an own background can be among the nearest
    two is the scene, found without ranking its pixels."""
    count = people.shape[0]
    bytes_kept = others == 1.0 and base_mode != Background.COLOR
    dyy, nearest, farthest = _row_reach(people, present, y), np.empty(present.shape[0]), np.empty(present.shape[0])
    for block in range(s, e, REGION_BLOCK):
        block_end = min(e, block + REGION_BLOCK)
        if bytes_kept and not _own_near(people, present, own_index, dyy, block, block_end - 1, nearest, farthest):
            _scene_only(base, base_mode, base_color, others, target, block, block_end)
            continue
        _region_keys(people, present, y, feather, block, block_end, key, t)
        x, end_of_block = np.uint64(block), np.uint64(block_end)
        while x < end_of_block:
            end = _span_end(key[:end_of_block], x)
            k = key[x]
            if k < 0 and own_index[-1 - k] >= 0:  # one person's own image: bytes, like the frame's
                _scene_only(own[own_index[-1 - k], y], Background.ORIGINAL, base_color, others, target, x, end)
            elif k < 0 or (bytes_kept and own_index[k // count] < 0 and own_index[k % count] < 0):
                _scene_only(base, base_mode, base_color, others, target, x, end)
            else:
                _blend_only(base, base_mode, base_color, others, target, own, y, own_index[k // count],
                            own_index[k % count], t, x, end)
            x = end


@njit(cache=True)
def _blend_only(base, base_mode, base_color, others, target, own, y, k1, k2, t, s, e):
    """target[s:e] = 0 + others * (t * g + (1 - t) * o), rounded, where nobody is: g, o the own images k1, k2
    (-1: the scene background); the arithmetic of _blend and the full rule, in one pass."""
    for x in range(s, e):
        a = t[x]
        for c in range(3):
            b = base_color[c] if base_mode == Background.COLOR else float(base[x, c])
            g = float(own[k1, y, x, c]) if k1 >= 0 else b
            o = float(own[k2, y, x, c]) if k2 >= 0 else b
            target[x, c] = _round_byte(0.0 + others * (a * g + (1.0 - a) * o))


@njit(cache=True)
def _scene_row(base, base_mode, base_color, bg, s, e):
    """bg[:, s:e] = the scene background (B, G, R, alpha) of a row whose picture is `base`."""
    if base_mode == Background.ORIGINAL or base_mode == Background.IMAGE:
        for x in range(s, e):
            bg[0, x] = base[x, 0]
            bg[1, x] = base[x, 1]
            bg[2, x] = base[x, 2]
            bg[3, x] = 1.0
    elif base_mode == Background.COLOR:
        for x in range(s, e):
            bg[0, x] = base_color[0]
            bg[1, x] = base_color[1]
            bg[2, x] = base_color[2]
            bg[3, x] = 1.0
    else:
        bg[:, s:e] = 0.0


class _SceneScalars(NamedTuple):
    """The scalars of one composite as the CPU twin takes them, named where they are built: numba accepts a
    keyword-only `*` in a jitted signature but does not enforce it. base_mode: the Background the kernel
    draws (BLUR arrives as IMAGE, its image the blurred frame); color: (3,) float64 B, G, R of COLOR;
    spotlight: whether anyone is spotlit; dim: Scene.spotlight_dim; regions: whether anyone has an own
    background; feather: Scene.region_feather; block: Scene.pixel_block."""

    base_mode: int
    color: np.ndarray
    spotlight: bool
    dim: float
    regions: bool
    feather: float
    block: int


@njit(cache=True)
def _spans(alphas, windows, y, lo, hi):
    """Each person's columns [lo, hi) of row y from their first to their last non-zero alpha, sought
    inside their window [y0, y1, x0, x1) (lo = hi = 0: not in this row); returns the columns [first,
    last) that anyone covers (first >= last: nobody)."""
    first, last = alphas.shape[2], 0
    for i in range(alphas.shape[0]):
        lo[i], hi[i] = 0, 0
        if y < windows[i, 0] or y >= windows[i, 1]:
            continue
        row = alphas[i, y]
        s, e = windows[i, 2], windows[i, 3]
        while s < e and not row[s] > 0.0:
            s += 1
        if s == e:
            continue
        while not row[e - 1] > 0.0:
            e -= 1
        lo[i], hi[i] = s, e
        first, last = min(first, s), max(last, e)
    return first, last


@njit(parallel=True, cache=True, nogil=True)
def _composite_cpu(frame, alphas, people, image, own, privacy, out, scalars, windows):
    """Row by row, person by person (over the span where the person's alpha is non-zero, which is exact:
    a zero alpha adds nothing), so the inner loops over x carry no per-pixel branching on the effect.
    Where nobody is and the output is opaque, a pixel is its region's background (the scene's, or own
    backgrounds) times the dim of the others, written directly: the same value the full rule gives there,
    at a fraction of the cost (most of a frame is background)."""
    base_mode, base_color, block, feather = scalars.base_mode, scalars.color, scalars.block, scalars.feather
    count, h, w = alphas.shape
    channels = out.shape[2]
    others = scalars.dim if scalars.spotlight else 1.0
    opaque = channels == 3
    effects = np.empty(count, np.int64)
    own_index = np.empty(count, np.int64)
    for i in range(count):
        effects[i] = int(people[i, Column.EFFECT])
        own_index[i] = int(people[i, Column.BACKGROUND])
    pixel_x = np.empty(w, np.int64)
    for x in range(w):
        pixel_x[x] = min(w - 1, (x // block) * block + block // 2)
    present = np.array([i for i in range(count) if not people[i, Column.X1] < people[i, Column.X0]], np.int64)
    regions = scalars.regions and present.shape[0] > 0
    for y in prange(h):
        source = frame[y]
        target = out[y]
        base = image[y] if base_mode == Background.IMAGE else source
        span_lo, span_hi = np.empty(count, np.int64), np.empty(count, np.int64)
        first, last = _spans(alphas, windows, y, span_lo, span_hi)
        key, t = np.empty(w if regions else 0, np.int64), np.empty(w if regions else 0)
        s0, s1 = (min(first, last), last) if opaque else (0, w)  # the full rule on [s0, s1) only
        if opaque:
            for s, e in ((0, s0), (s1, w)):
                if regions:
                    _regions_only(base, base_mode, base_color, others, target, people, present, own_index, own, y,
                                  feather, key, t, s, e)
                else:
                    _scene_only(base, base_mode, base_color, others, target, s, e)
            if s0 == s1:
                continue
        bg = np.empty((4, w))
        _scene_row(base, base_mode, base_color, bg, s0, s1)
        if regions:
            _region_keys(people, present, y, feather, s0, s1, key, t)
            _region_spans(bg, own_index, own, y, key, t, count, s0, s1)
        remaining = np.empty(w)
        remaining[s0:s1] = 1.0
        acc = np.empty((4, w))
        acc[:, s0:s1] = 0.0
        for i in range(count - 1, -1, -1):
            lo, hi = span_lo[i], span_hi[i]
            if lo == hi:
                continue
            row = alphas[i, y]
            effect = effects[i]
            mult = 1.0 if effect == Effect.SPOTLIGHT else others
            if effect == Effect.HIDE:
                for x in range(lo, hi):
                    a = min(max(float(row[x]), 0.0), remaining[x])
                    remaining[x] -= a
                    m = a * mult
                    acc[0, x] += m * bg[0, x]
                    acc[1, x] += m * bg[1, x]
                    acc[2, x] += m * bg[2, x]
                    acc[3, x] += a * bg[3, x]
            elif effect == Effect.TINT:
                s = people[i, Column.STRENGTH]
                t0, t1, t2 = s * people[i, Column.TINT_B], s * people[i, Column.TINT_G], s * people[i, Column.TINT_R]
                for x in range(lo, hi):
                    a = min(max(float(row[x]), 0.0), remaining[x])
                    remaining[x] -= a
                    m = a * mult
                    acc[0, x] += m * ((1.0 - s) * source[x, 0] + t0)
                    acc[1, x] += m * ((1.0 - s) * source[x, 1] + t1)
                    acc[2, x] += m * ((1.0 - s) * source[x, 2] + t2)
                    acc[3, x] += a
            else:
                if effect == Effect.BLUR:
                    layer = privacy[y]
                    columns = np.arange(w)
                elif effect == Effect.PIXELATE:
                    layer = privacy[min(h - 1, (y // block) * block + block // 2)]
                    columns = pixel_x
                else:
                    layer = source
                    columns = np.arange(w)
                for x in range(lo, hi):
                    a = min(max(float(row[x]), 0.0), remaining[x])
                    remaining[x] -= a
                    m = a * mult
                    k = columns[x]
                    acc[0, x] += m * layer[k, 0]
                    acc[1, x] += m * layer[k, 1]
                    acc[2, x] += m * layer[k, 2]
                    acc[3, x] += a
        for x in range(s0, s1):
            m = remaining[x] * others
            c0 = acc[0, x] + m * bg[0, x]
            c1 = acc[1, x] + m * bg[1, x]
            c2 = acc[2, x] + m * bg[2, x]
            if channels == 3:
                target[x, 0] = _round_byte(c0)
                target[x, 1] = _round_byte(c1)
                target[x, 2] = _round_byte(c2)
            else:
                ca = acc[3, x] + remaining[x] * bg[3, x]
                inv = 1.0 / ca if ca > 0.0 else 0.0
                target[x, 0] = _round_byte(c0 * inv)
                target[x, 1] = _round_byte(c1 * inv)
                target[x, 2] = _round_byte(c2 * inv)
                target[x, 3] = _round_byte(ca * 255.0)


@njit(cache=True)
def _scene_only(base, base_mode, base_color, others, target, s, e):
    """target[s:e] where nobody is, opaque, no own backgrounds (so the scene background is the colour or
    `base`): what the full rule gives with no weight taken (0 + others * background, rounded)."""
    if base_mode == Background.COLOR:
        for c in range(3):
            value = _round_byte(0.0 + others * base_color[c])
            for x in range(s, e):
                target[x, c] = value
    elif others == 1.0:  # a byte times one, rounded, is that byte: a flat copy, which vectorises
        target.reshape(-1)[3 * s:3 * e] = base.reshape(-1)[3 * s:3 * e]
    else:
        for x in range(s, e):
            for c in range(3):
                target[x, c] = _round_byte(0.0 + others * base[x, c])


def composite(frame, alphas, layers: PersonLayers, scene: Scene, *, image=None, own_images=None, boxes=None,
              extents=None, out=None):
    """Build the output frame from the background and the person layers (see the module docstring).

    frame: (H, W, 3) uint8 BGR; alphas: (N, H, W) float32, back to front; image: (H, W, 3) uint8 for
    Background.IMAGE; own_images: (K, H, W, 3) uint8 indexed by layers.background; boxes: (N, 4) person
    boxes for own-background regions (person_boxes(alphas) when omitted); extents: (N, 4) int64
    [y0, y1, x0, x1) holding every alpha > 0, when the caller knows them (the CPU twin then looks
    for each person only there; the whole frame when omitted); out: optional (H, W, 3) uint8, or
    (H, W, 4) when the background is transparent. Returns the output of the caller's kind.
    """
    kind, src, gpu = leading(frame, "frame", np.uint8, (None, None, 3))
    xp = xp_of(src)
    h, w, _ = src.shape
    people = checked(native(alphas), "alphas", np.float32, (None, h, w), gpu)
    count = people.shape[0]
    if len(layers.effect) != count:
        raise ValueError(f"layers describe {len(layers.effect)} people but alphas hold {count}: "
                         "pass one entry per person")
    channels = 4 if scene.background is Background.TRANSPARENT else 3
    result = (xp.empty((h, w, channels), np.uint8) if out is None
              else checked(native(out), "out", np.uint8, (h, w, channels), gpu, writable=True))

    base_mode = int(scene.background)
    if scene.background is Background.BLUR:
        image, base_mode = background_blur(src, people, scene.blur_radius), int(Background.IMAGE)
    elif scene.background is Background.IMAGE:
        if image is None:
            raise ValueError("Background.IMAGE needs image=(H, W, 3) uint8")
        image = checked(native(image), "image", np.uint8, (h, w, 3), gpu)
    regions = bool(count) and bool((np.asarray(layers.background) >= 0).any())
    if regions:
        if own_images is None:
            raise ValueError("a person has an own background index but own_images=(K, H, W, 3) uint8 is missing")
        own_images = checked(native(own_images), "own_images", np.uint8, (None, h, w, 3), gpu)
        if int(np.max(layers.background)) >= own_images.shape[0]:
            raise ValueError(f"own background index {int(np.max(layers.background))} is out of range for "
                             f"{own_images.shape[0]} own_images")
        boxes = person_boxes(people) if boxes is None else np.asarray(boxes, np.float32)
        if boxes.shape != (count, 4):
            raise ValueError(f"boxes must have shape ({count}, 4) as [x0, y0, x1, y1] per person, got {boxes.shape}")
    effects = set(np.asarray(layers.effect).tolist())
    hidden = [i for i, e in enumerate(np.asarray(layers.effect).tolist()) if e in (Effect.BLUR, Effect.PIXELATE)]
    if extents is not None and np.shape(extents) != (count, 4):
        raise ValueError(f"extents must have shape ({count}, 4) as [y0, y1, x0, x1) per person, got "
                         f"{np.shape(extents)}")
    blocks_only = all(np.asarray(layers.effect)[hidden] == Effect.PIXELATE) and not gpu
    privacy = _privacy_blur(src, people, hidden, scene, None if extents is None else extents[hidden],
                            blocks_only) if hidden else src
    packed = layers.packed(np.zeros((count, 4)) if boxes is None else boxes)
    spotlight = Effect.SPOTLIGHT in effects
    image = src if image is None else image
    own = own_images if regions else src[None]
    if gpu:
        _cuda.launch("composite", "composite", h * w, (
            src, people, xp.asarray(packed), np.int32(count), image, own, privacy, result, np.int32(h), np.int32(w),
            np.int32(channels), np.int32(base_mode), *map(np.float32, scene.color), np.int32(spotlight),
            np.float32(scene.spotlight_dim), np.int32(regions), np.float32(scene.region_feather),
            np.int32(scene.pixel_block)))
    else:
        scalars = _SceneScalars(base_mode=base_mode, color=np.asarray(scene.color, np.float64), spotlight=spotlight,
                                dim=scene.spotlight_dim, regions=regions, feather=scene.region_feather,
                                block=scene.pixel_block)
        windows = whole(count, h, w) if extents is None else np.ascontiguousarray(extents, np.int64)
        _composite_cpu(frame=src, alphas=people, people=packed, image=image, own=own, privacy=privacy, out=result,
                       scalars=scalars, windows=windows)
    return out if out is not None else restore(result, kind)


def _privacy_blur(src, people, hidden: list[int], scene: Scene, extents=None, blocks_only: bool = False):
    """masked_blur(of_people) of the `hidden` people (indices into `people`, those behind blur/pixelate),
    computed only over their boxes (from their extents, [y0, y1, x0, x1), when known; their mattes are
    then read there only, not copied whole: 1.5 ms a 1080p frame), and with `blocks_only` (everyone
    pixelated, on the CPU) only at the block centres the pixelation reads (masked_blur_at).

    Every pixel the composite reads from it (a person pixel, or a pixelation block centre within
    pixel_block of one) lies at least privacy_radius inside the box grown by privacy_radius +
    pixel_block, so its window never meets the box's edge and the result there is the full-frame one.
    """
    if extents is None:
        boxes = person_boxes(people[hidden], threshold=0.0)
    else:  # [x0, y0, x1, y1] inclusive, as person_boxes gives them; may be wider than the alphas > 0 (exact still)
        boxes = np.stack([extents[:, 2], extents[:, 0], extents[:, 3] - 1, extents[:, 1] - 1], axis=1)
    present = boxes[boxes[:, 2] >= boxes[:, 0]]
    if not len(present):
        return src
    h, w = src.shape[:2]
    grow = scene.privacy_radius + scene.pixel_block
    x0, y0 = (max(0, int(v) - grow) for v in present[:, :2].min(axis=0))
    x1, y1 = (int(v) + grow + 1 for v in present[:, 2:].max(axis=0))
    region = (slice(y0, min(h, y1)), slice(x0, min(w, x1)))
    xp = xp_of(src)
    out = xp.zeros(src.shape, src.dtype)  # read only inside the region: no copy of the frame (fresh zero pages)
    inside, around = xp.ascontiguousarray(src[region]), people[(xp.asarray(hidden), *region)]
    if blocks_only:
        rows, cols = (_block_centres(n, scene.pixel_block, r) for n, r in ((h, region[0]), (w, region[1])))
        out[np.ix_(rows, cols)] = masked_blur_at(inside, around, scene.privacy_radius, rows - region[0].start,
                                                 cols - region[1].start, of_people=True)
    else:
        out[region] = masked_blur(inside, around, scene.privacy_radius, of_people=True)
    return out


def _block_centres(size: int, block: int, within: slice) -> np.ndarray:
    """The pixels a pixelation reads along an axis of `size` pixels (each block's centre, the last one
    clipped to the edge, as _composite_cpu's pixel_x), those in `within`."""
    centres = np.minimum(size - 1, np.arange(0, size, block) + block // 2)
    return centres[(centres >= within.start) & (centres < within.stop)]


def isolated_layer(frame, alpha, out=None):
    """One person alone as uint8 BGRA (original pixels, alpha = round(255 * alpha)), for a per-person sink.

    frame: (H, W, 3) uint8 BGR; alpha: (H, W) float32. Plain array arithmetic, identical on NumPy and CuPy.
    """
    kind, src, gpu = leading(frame, "frame", np.uint8, (None, None, 3))
    h, w, _ = src.shape
    matte = checked(native(alpha), "alpha", np.float32, (h, w), gpu)
    xp = xp_of(src)
    result = (xp.empty((h, w, 4), np.uint8) if out is None
              else checked(native(out), "out", np.uint8, (h, w, 4), gpu, True))
    result[..., :3] = src
    result[..., 3] = xp.floor(xp.clip(matte, 0.0, 1.0) * 255.0 + 0.5)
    return out if out is not None else restore(result, kind)
