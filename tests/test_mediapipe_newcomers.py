"""Which of the detector's squares the picture changed in away from the people followed."""

from __future__ import annotations

import numpy as np

from livematte.mediapipe.detector import sweep, tiles
from livematte.mediapipe.newcomers import NEAR, NewcomerWatch

GRID, SCALE = (360, 640), 0.5  # a 720p frame's mattes


def watched(change: np.ndarray, people: np.ndarray, before: np.ndarray | None = None) -> NewcomerWatch:
    """A watch that saw a first frame (people `before`, default `people`) and then `change` with `people`."""
    watch = NewcomerWatch()
    watch.reset(sweep(720, 1280), SCALE)
    watch.see(None, people if before is None else before)
    watch.see(change, people)
    return watch


def changed_squares(watch: NewcomerWatch) -> set:
    return {s for s in tiles(720, 1280) if watch.changed(s)}


def grid(*boxes: tuple[int, int, int, int], dtype=bool) -> np.ndarray:
    """A grid mask set inside each [y0, y1, x0, x1)."""
    mask = np.zeros(GRID, dtype)
    for y0, y1, x0, x1 in boxes:
        mask[y0:y1, x0:x1] = 1
    return mask


def frame_box(square) -> tuple[float, float, float, float]:
    x0, y0, side = square
    return y0 * SCALE, (y0 + side) * SCALE, x0 * SCALE, (x0 + side) * SCALE


def overlaps(a, b) -> bool:
    """Whether two [y0, y1, x0, x1) boxes share a pixel."""
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def test_a_change_away_from_everyone_marks_the_squares_it_lies_in_until_each_is_read():
    someone = (100, 140, 500, 530)  # 40 x 30 grid pixels where nobody is followed
    watch = watched(grid(someone), grid((100, 300, 100, 160), dtype=np.uint8))
    marked = changed_squares(watch)
    overlapping = {s for s in tiles(720, 1280) if overlaps(frame_box(s), someone)}
    assert marked == overlapping and len(marked) >= 2  # a near square and a far one at least
    first = sorted(marked)[0]
    watch.read(first)
    assert changed_squares(watch) == marked - {first}


def test_changes_of_the_people_followed_thin_ones_and_specks_are_nobody_new():
    person_now, person_before = (100, 300, 100, 160), (100, 300, 60, 120)
    people = grid(person_now, dtype=np.uint8)
    beside = (150, 200, 160, 160 + NEAR)  # a hand ahead of the matte, within NEAR of it
    where_they_were = (100, 300, 60, 100)  # left behind as they moved right
    string = (0, 150, 400, 403)  # a swinging string: 3 pixels wide
    speck = (300, 310, 400, 410)  # 100 pixels: compression noise, a fly
    change = grid(beside, where_they_were, string, speck)
    assert not changed_squares(watched(change, people, before=grid(person_before, dtype=np.uint8)))
    assert changed_squares(watched(change, people))  # without the last frame's matte: what they left is new


def test_nothing_is_marked_on_a_first_frame_and_a_mark_names_the_squares_of_a_box():
    watch = NewcomerWatch()
    watch.reset(sweep(720, 1280), SCALE)
    watch.see(None, grid(dtype=np.uint8))
    assert not changed_squares(watch)
    watch.mark((300, 360, 600, 640))  # the bottom right corner of the grid
    assert changed_squares(watch) == {s for s in tiles(720, 1280) if s[0] + s[2] > 1200 and s[1] + s[2] > 600}
