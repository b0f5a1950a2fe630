import subprocess

import cv2
import numpy as np
import pytest

from livematte.compositor import Compositor, CompositorError
from livematte.config import BackgroundConfig, EffectsConfig, PersonEffectConfig
from tests.media import ffmpeg

H, W = 60, 80
GREY = 120


def scene():
    """A grey frame with two people: 7 on the left (feet at row 40), 8 on the right (feet at row 55)."""
    frame = np.full((H, W, 3), GREY, np.uint8)
    frame[:, ::2, 0] = 250  # fine stripes, so blur is visible
    mattes = np.zeros((2, H, W), np.float32)
    mattes[0, 10:40, 5:25] = 1.0
    mattes[1, 20:55, 50:70] = 1.0
    return frame, mattes, [7, 8]


def render(cfg, frame=None, mattes=None, ids=None):
    f, m, i = scene()
    return Compositor(cfg).render(f if frame is None else frame, m if mattes is None else mattes,
                                  i if ids is None else ids)


def test_colour_background_keeps_people_as_filmed():
    frame, mattes, ids = scene()
    out = render(EffectsConfig(background=BackgroundConfig(kind="color", color="#ff0000"))).image
    assert (out[0, 0] == (0, 0, 255)).all(), "background pixels show the colour (BGR)"
    assert np.array_equal(out[20, 10], frame[20, 10]) and np.array_equal(out[30, 60], frame[30, 60])


def test_hide_tint_and_per_person_assignment():
    cfg = EffectsConfig(background=BackgroundConfig(kind="color", color="#000000"),
                        people={7: PersonEffectConfig(effect="hide"),
                                8: PersonEffectConfig(effect="tint", tint="#00ff00", strength=1.0)})
    out = render(cfg).image
    assert (out[20, 10] == 0).all(), "hidden person: the background shows through"
    assert (out[30, 60] == (0, 255, 0)).all(), "fully tinted person"


def test_new_people_get_the_default_and_assignments_change_live():
    frame, mattes, ids = scene()
    compositor = Compositor(EffectsConfig(background=BackgroundConfig(kind="color"),
                                          default=PersonEffectConfig(effect="hide")))
    first = compositor.render(frame, mattes, ids).image
    assert (first[20, 10] == first[0, 0]).all()
    compositor.effects.set(7, PersonEffectConfig(effect="keep"))
    second = compositor.render(frame, mattes, ids).image
    assert np.array_equal(second[20, 10], frame[20, 10]) and (second[30, 60] == second[0, 0]).all()


def test_blur_effect_changes_only_that_person():
    frame, mattes, ids = scene()
    out = render(EffectsConfig(people={8: PersonEffectConfig(effect="blur")})).image
    assert np.array_equal(out[20, 10], frame[20, 10])
    assert np.array_equal(out[0, 0], frame[0, 0])
    assert abs(int(out[30, 60, 0]) - 185) < 30, "the stripes average out inside person 8"


def test_nearer_person_is_drawn_in_front():
    frame, mattes, ids = scene()
    mattes[1, 10:55, 15:35] = 1.0  # person 8 overlaps person 7 and stands nearer (lower feet)
    cfg = EffectsConfig(people={7: PersonEffectConfig(effect="tint", tint="#ff0000", strength=1.0),
                                8: PersonEffectConfig(effect="tint", tint="#0000ff", strength=1.0)})
    result = render(cfg, mattes=mattes)
    assert result.depth_order == [7, 8]
    assert (result.image[25, 20] == (255, 0, 0)).all(), "the overlap shows the front person (blue)"
    assert (result.image[25, 8] == (0, 0, 255)).all()


def test_own_background_regions(tmp_path):
    beach = tmp_path / "beach.png"
    cv2.imwrite(str(beach), np.full((30, 40, 3), (200, 180, 60), np.uint8))
    cfg = EffectsConfig(background=BackgroundConfig(kind="color", color="#000000"),
                        people={7: PersonEffectConfig(background=beach)}, region_feather=2)
    out = render(cfg).image
    assert (out[5, 2] == (200, 180, 60)).all(), "the region nearest person 7 shows their background"
    assert (out[5, 78] == 0).all(), "the region nearest person 8 shows the scene background"


def test_transparent_background_and_isolated_layers():
    frame, mattes, ids = scene()
    mattes[0, 10:40, 5:25] = 0.5
    result = render(EffectsConfig(background=BackgroundConfig(kind="transparent"), isolate=[8]), mattes=mattes)
    assert result.image.shape == (H, W, 4)
    assert (result.image[0, 0, 3] == 0 and result.image[30, 60, 3] == 255
            and abs(int(result.image[20, 10, 3]) - 128) <= 1)
    assert list(result.isolated) == [8]
    alone = result.isolated[8]
    assert alone.shape == (H, W, 4) and alone[30, 60, 3] == 255 and alone[20, 10, 3] == 0
    assert np.array_equal(alone[30, 60, :3], frame[30, 60])


def test_halo_free_background_blur_keeps_person_colour_out():
    frame = np.full((H, W, 3), 50, np.uint8)
    mattes = np.zeros((1, H, W), np.float32)
    mattes[0, 20:40, 30:50] = 1.0
    frame[20:40, 30:50] = 250
    out = render(EffectsConfig(background=BackgroundConfig(kind="blur", blur_radius=6)), frame, mattes, [1]).image
    assert abs(int(out[30, 27, 0]) - 50) <= 1, "next to the person the blurred background has no person colour"
    assert (out[30, 40] == 250).all()


def test_video_background_loops(tmp_path):
    clip = tmp_path / "bg.mkv"
    subprocess.run([ffmpeg(), "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=40x30:r=10:d=0.2",
                    "-f", "lavfi", "-i", "color=c=blue:s=40x30:r=10:d=0.2", "-filter_complex", "[0][1]concat=n=2",
                    "-c:v", "ffv1", str(clip)], check=True)
    compositor = Compositor(EffectsConfig(background=BackgroundConfig(kind="video", path=clip)))
    frame, mattes, ids = scene()
    colours = [tuple(compositor.render(frame, mattes, ids).image[0, 0]) for _ in range(6)]
    compositor.close()
    red, blue = (0, 0, 254), (254, 0, 0)
    near = lambda c, ref: max(abs(int(a) - b) for a, b in zip(c, ref)) <= 8  # noqa: E731
    assert [near(c, red) for c in colours] == [True, True, False, False, True, True]
    assert all(near(c, blue) for c in colours[2:4])


def test_a_damaged_background_video_loops_what_comes_before_the_damage(tmp_path, caplog):
    clip = tmp_path / "bg.mp4"
    subprocess.run([ffmpeg(), "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=80x60:rate=10",
                    "-frames:v", "40", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "5", str(clip)], check=True)
    data = bytearray(clip.read_bytes())
    media, index = data.find(b"mdat"), data.find(b"moov")  # frames, then the index
    damage = media + (index - media) * 6 // 10
    data[damage:index - 16] = np.random.default_rng(1).integers(0, 256, index - 16 - damage, np.uint8).tobytes()
    clip.write_bytes(data)
    compositor = Compositor(EffectsConfig(background=BackgroundConfig(kind="video", path=clip)))
    frame, _, _ = scene()
    nobody = np.zeros((0, H, W), np.float32)
    with caplog.at_level("WARNING", logger="livematte.compositor"):
        images = [compositor.render(frame, nobody, []).image.copy() for _ in range(60)]
    compositor.close()
    first_again = next(i for i in range(1, 60) if np.array_equal(images[i], images[0]))
    assert 10 < first_again < 40, "the video loops at its damage, after the frames before it"
    assert [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()] == [
        caplog.records[0].getMessage()], "one warning"


def test_missing_background_file_fails_at_start(tmp_path):
    with pytest.raises(CompositorError, match="cannot read background image .*nope.png"):
        Compositor(EffectsConfig(background=BackgroundConfig(kind="image", path=tmp_path / "nope.png")))
    with pytest.raises(CompositorError, match="cannot read background image"):
        Compositor(EffectsConfig(people={1: PersonEffectConfig(background=tmp_path / "nope.png")}))


def test_select_picks_the_person_under_the_click():
    frame, mattes, ids = scene()
    compositor = Compositor(EffectsConfig())
    assert compositor.select(10, 20) is None, "nothing rendered yet"
    compositor.render(frame, mattes, ids)
    assert compositor.select(10, 20) == 7 and compositor.select(60, 30) == 8
    assert compositor.select(45, 5) is None and compositor.select(500, 5) is None


def test_mattes_smaller_than_the_frame_are_brought_to_its_size_where_they_are_not_zero():
    """The learned engine's mattes come at half a 720p frame's size: the output equals compositing the
    same mattes resized by OpenCV, and a click on the frame finds the person it shows."""
    frame, mattes, ids = scene()
    rng = np.random.default_rng(3)
    small = np.zeros((2, H // 2, W // 2), np.float32)
    small[0, 5:20, 2:12] = rng.random((15, 10), np.float32)  # soft everywhere: the interpolation shows
    small[1, 10:30, 25:35] = 1.0  # reaches the frame's bottom edge
    resized = np.stack([cv2.resize(m, (W, H), interpolation=cv2.INTER_LINEAR) for m in small])
    cfg = EffectsConfig(background=BackgroundConfig(kind="color", color="#0000ff"),
                        people={8: PersonEffectConfig(effect="tint", tint="#00ff00", strength=0.5)})
    compositor = Compositor(cfg)
    shown = compositor.render(frame, small, ids).image
    assert np.array_equal(shown, Compositor(cfg).render(frame, resized, ids).image)
    assert compositor.select(60, 50) == 8 and compositor.select(70, 5) is None


def test_small_mattes_that_move_leave_nothing_behind_from_frame_to_frame():
    """The enlarged mattes' arrays are kept from frame to frame: each frame (people moving, one leaving, one
    coming back, the two passing in depth order) shows what a fresh compositor shows for it, each person
    alone as well (their whole enlarged matte), and a click finds who is there now."""
    frame, _, _ = scene()
    cfg = EffectsConfig(background=BackgroundConfig(kind="color", color="#0000ff"), isolate=[7, 8])
    compositor = Compositor(cfg)
    for step in range(6):
        small = np.zeros((2, H // 2, W // 2), np.float32)
        # walks right and nearer (in front of person 8 on step 4), then back left and away
        shift, bottom = (0, 3, 6, 9, 3, 0)[step], (20, 23, 26, 29, 32, 22)[step]
        small[0, 5 + step:bottom, 2 + shift:12 + shift] = 1.0
        small[1, 10:30, 25:35] = 0.8
        ids = [7, 8] if step != 3 else [7]  # person 8 is missing on one frame
        small = small[:len(ids)]
        shown, fresh = compositor.render(frame, small, ids), Compositor(cfg).render(frame, small, ids)
        assert np.array_equal(shown.image, fresh.image), step
        assert shown.isolated.keys() == fresh.isolated.keys()
        assert all(np.array_equal(shown.isolated[track], fresh.isolated[track]) for track in ids), step
        assert compositor.select(2 * (2 + shift) + 1, 20) == 7  # where person 7 is now
        assert compositor.select(4, 20) == (7 if shift == 0 else None)  # where they were at first


def test_no_people():
    frame = np.full((H, W, 3), 90, np.uint8)
    out = render(EffectsConfig(background=BackgroundConfig(kind="blur")), frame, np.zeros((0, H, W), np.float32), [])
    assert np.array_equal(out.image, frame)


def test_still_backgrounds_are_prepared_once_not_every_frame(tmp_path):
    """An image background (and own backgrounds) is fitted, stacked and, on a GPU, uploaded once."""
    path = tmp_path / "bg.png"
    cv2.imwrite(str(path), np.full((30, 40, 3), 90, np.uint8))
    compositor = Compositor(EffectsConfig(background={"kind": "image", "path": str(path)}))
    first = compositor._background_image(np, 64, 48)
    assert first is compositor._background_image(np, 64, 48) and first.shape == (48, 64, 3)
    assert compositor._background_image(np, 32, 24).shape == (24, 32, 3)
