"""The learned CPU engine on real people (../shared/media): who is found, that people stay apart, that ids
hold through the dancers' clip, photos one by one, and the engine choice."""

from __future__ import annotations

import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from livematte.config import Footage, load_config
from livematte.engine.choose import open_engine
from livematte.engine.keying import KeyingEngine
from livematte.engine.mediapipe_engine import MediaPipeEngine
from livematte.eval.metrics import beyond_share, flicker
from livematte.frame import Frame, at_size
from livematte.mediapipe.roi import on_grid
from livematte.processor import FrameProcessor
from livematte.stabilize import Stabilizer
from livematte.temporal import TemporalFuser, fusion_params
from livematte.tracking import Tracker

# (x, y) points picked by eye on the photos: each person's face, and background (sky, trees, water, road)
PHOTOS = {
    "group1.jpg": ([(450, 475), (788, 563), (1120, 562), (1550, 600)],
                   [(1000, 150), (1800, 150), (60, 560), (1850, 760)]),
    "group2.jpg": ([(520, 340), (680, 520), (1160, 470), (1400, 340)],
                   [(1000, 150), (950, 700), (1000, 1200), (100, 950)]),
}


def engine_config(*extra: str):
    return load_config(overrides=["engine.kind=mediapipe", "effects.people={}", "effects.background.kind=original",
                                  *extra])


def half_of_720p(shared_media: Path, name: str) -> np.ndarray:
    """A 640x720 grey half of a 720p frame with the photo across its width, centred."""
    half = np.full((720, 640, 3), 128, np.uint8)
    photo = cv2.imread(str(shared_media / name))
    height = round(photo.shape[0] * 640 / photo.shape[1])
    top = (720 - height) // 2
    half[top:top + height] = cv2.resize(photo, (640, height), interpolation=cv2.INTER_AREA)
    return half


@pytest.mark.parametrize("photo", sorted(PHOTOS))
def test_each_of_four_people_has_their_own_matte_and_the_background_is_nobodys(models, shared_media, photo):
    image = cv2.imread(str(shared_media / photo))
    engine, _ = open_engine(engine_config().engine, Footage.PHOTOS)
    (found,) = engine.infer([image])
    assert len(found) == 4
    faces, background = PHOTOS[photo]
    scale = found.mattes.shape[2] / image.shape[1]  # the mattes are at most engine.mediapipe.matte_side long
    assert found.mattes.shape[1:] == (round(image.shape[0] * scale), round(image.shape[1] * scale))

    def values(x: int, y: int) -> np.ndarray:
        column, row = np.rint(on_grid(np.array([x, y]), scale)).astype(int)
        return found.mattes[:, row, column]

    owners = []
    for x, y in faces:
        holders = np.flatnonzero(values(x, y) > 0.5)
        assert len(holders) == 1, f"face at {(x, y)} is in mattes {holders.tolist()}"
        owners.append(int(holders[0]))
    assert len(set(owners)) == 4  # four faces, four mattes: no two heads in one
    for x, y in background:
        assert values(x, y).max() < 0.2, f"background at {(x, y)} is in a matte"


def dancers(shared_media: Path) -> list[np.ndarray]:
    with av.open(str(shared_media / "video_test2.mp4")) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_the_three_dancers_are_found_in_nearly_every_frame_and_keep_their_ids(models, shared_media):
    frames = dancers(shared_media)
    cfg = engine_config()
    engine, _ = open_engine(cfg.engine)
    processor = FrameProcessor(cfg, engine)
    seen = []
    for i, pixels in enumerate(frames):
        people = processor.track(Frame(pixels, i, time.monotonic_ns()), owned=False).people
        mattes = np.asarray(people.mattes)
        columns = mattes.sum(axis=1)
        centres = (columns * np.arange(mattes.shape[2])).sum(axis=1) / np.maximum(columns.sum(axis=1), 1)
        seen.append(dict(zip(people.ids, centres)))
    assert sum(len(s) == 3 for s in seen) >= 0.95 * len(frames)
    assert set().union(*seen) == {1, 2, 3}  # no id lost and given again, nobody new
    orders = {tuple(sorted(s, key=s.get)) for s in seen if len(s) == 3}
    assert len(orders) == 1  # the dancers never trade places here, so neither may their ids


def test_a_folder_of_photos_is_matted_photo_by_photo(models, shared_media, tmp_path):
    from pipelines.live import LivePipeline

    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):  # two unrelated photos, then the first again
        source = {"a.jpg": "group1.jpg", "b.jpg": "man.jpg", "c.jpg": "group1.jpg"}[name]
        image = cv2.imread(str(shared_media / source))
        cv2.imwrite(str(folder / name), cv2.resize(image, (960, 658), interpolation=cv2.INTER_AREA))
    cfg = load_config(overrides=["source.kind=images", f"source.path={folder}", "engine.kind=auto", "sinks.0.kind=png",
                                 f"sinks.0.path={tmp_path / 'out'}", "effects.people={}",
                                 "effects.background.kind=color", "effects.background.color=#000000"])
    assert cfg.footage is Footage.PHOTOS
    pipeline = LivePipeline(cfg)
    assert isinstance(pipeline.engine, MediaPipeEngine) and "learned CPU engine" in pipeline.engine_description
    counts = []
    stabilize = pipeline.processor.stabilize
    pipeline.processor.stabilize = lambda inferred, owned=True: (
        (lambda t: counts.append(t.people.ids) or t)(stabilize(inferred, owned)))
    report = pipeline.run(show_progress=False)
    assert report.frames == 3 and len(list((tmp_path / "out").glob("*.png"))) == 3
    assert counts == [[1, 2, 3, 4], [1], [1, 2, 3, 4]]  # each photo's own people, numbered afresh


def test_auto_is_the_learned_engine_for_real_footage_without_weights_and_keying_only_when_asked(models, tmp_path):
    embedded = load_config()  # the synthetic scene: drawn figures on a green screen
    assert (embedded.footage is Footage.DRAWN
            and isinstance(open_engine(embedded.engine, embedded.footage)[0], KeyingEngine))
    real = load_config(overrides=["source.kind=file", f"source.path={tmp_path / 'talk.mp4'}"])  # the same preset
    engine, description = open_engine(real.engine, real.footage)
    assert isinstance(engine, MediaPipeEngine) and "no E2E-HIM weights installed" in description
    keyed = load_config(overrides=["source.kind=webcam", "engine.kind=keying"])
    assert isinstance(open_engine(keyed.engine, keyed.footage)[0], KeyingEngine)  # a green screen, when asked
    serve = load_config(Path(__file__).resolve().parents[1] / "configs" / "serve.yaml")
    assert isinstance(open_engine(serve.engine)[0], MediaPipeEngine)  # the demo page needs no empty room


def test_nobody_in_the_picture_gives_no_mattes(models):
    engine = MediaPipeEngine(engine_config().engine.mediapipe)
    found = engine.infer([np.full((360, 640, 3), 128, np.uint8)] * 3)
    assert [len(f) for f in found] == [0, 0, 0] and found[0].mattes.shape == (0, 360, 640)


def test_people_sitting_still_are_not_given_a_motion_by_their_first_read(models, shared_media):
    """The detector's square for a newcomer is rougher than the landmark model's; the step between them
    is no motion. Four people sit still on group1.jpg, each read every fourth frame: nobody's velocity
    reaches two pixels a frame (under one here; 4.6 when the first read counted the step, which pushed
    a square towards a neighbour for a second)."""
    picture = np.hstack([half_of_720p(shared_media, "group1.jpg"), np.full((720, 640, 3), 128, np.uint8)])
    engine = MediaPipeEngine(engine_config().engine.mediapipe)
    fastest = 0.0
    for _ in range(30):
        assert len(engine.infer([picture])[0]) == 4
        fastest = max(fastest, *(float(np.hypot(*p.velocity)) for p in engine.people))
    assert fastest < 2.0, fastest


def test_the_fusion_steadies_the_dancers_mattes_without_trailing_ghosts(models, shared_media):
    """Where the picture did not change, the fused mattes move at most 0.84x as much from frame to frame as
    the engine's own (0.82 measured, 0.85 when the fusion takes a carried matte as news; the engine's own
    carry most people by the picture's motion, which already steadies them), and hardly reach beyond
    them: where white clothes cross the white wall a fusion that holds too much trails outlines (0.09 %
    of the fused mass beyond 4 px measured; 0.17 % when a carried matte's change could not start a wait;
    the same engine output, tracked, fused and not)."""
    frames = dancers(shared_media)[:48]
    cfg = engine_config()
    engine = MediaPipeEngine(cfg.engine.mediapipe)
    modes = {mode: Stabilizer(Tracker.from_config(cfg.tracking), TemporalFuser(mode, fusion_params(cfg.temporal)))
             for mode in ("off", "causal")}
    mattes: dict[str, list[dict[int, np.ndarray]]] = {mode: [] for mode in modes}
    for pixels in frames:
        (found,) = engine.infer([pixels])
        for mode, stabilizer in modes.items():
            people = stabilizer.update(pixels, found.mattes, found.probs, fresh=found.fresh)
            mattes[mode].append({track: np.array(m) for track, m in zip(people.ids, people.mattes)})
    raw, fused = flicker(frames, mattes["off"]), flicker(frames, mattes["causal"])
    assert set(raw) == set(fused) == {1, 2, 3}
    assert np.mean(list(fused.values())) <= 0.84 * np.mean(list(raw.values())), (raw, fused)
    reach = round(4 * found.mattes.shape[2] / frames[0].shape[1])  # 4 frame pixels in the mattes' pixels
    assert beyond_share(mattes["causal"], mattes["off"], reach) <= 0.0013, "matte beyond the engine's: a ghost"


def test_the_engines_extents_and_picture_spare_the_fusion_a_search_and_a_scaling(models, shared_media):
    """Each person's extents hold all of their matte, and the frame the engine brought to the mattes' size
    is the frame at that size: the fusion given both fuses what it fuses when it has to find and scale them
    itself."""
    cfg = engine_config()
    engine = MediaPipeEngine(cfg.engine.mediapipe)
    given, searched = (Stabilizer(Tracker.from_config(cfg.tracking),
                                  TemporalFuser("causal", fusion_params(cfg.temporal))) for _ in range(2))
    for pixels in dancers(shared_media)[:24]:
        (found,) = engine.infer([pixels])
        for matte, (y0, y1, x0, x1) in zip(found.mattes, found.extents):
            inside = np.zeros(matte.shape, bool)
            inside[y0:y1, x0:x1] = True
            assert matte[~inside].max(initial=0.0) == 0.0 and matte[inside].max() > 0.5
        assert np.array_equal(found.picture, at_size(pixels, found.mattes.shape[1:]))
        with_both = given.update(found.picture, found.mattes, found.probs, found.extents)
        without = searched.update(pixels, found.mattes, found.probs)
        assert with_both.ids == without.ids and np.array_equal(with_both.mattes, without.mattes)


def test_a_frame_the_engine_skips_is_tracked_on_its_own_picture(models, shared_media):
    """engine.every hands the last people on to frames the engine does not read; tracking and fusion must
    see each frame's own picture, never the one those people were found in, and none of them as news."""
    frames = dancers(shared_media)[:12]
    cfg = engine_config("engine.every=3")
    processor = FrameProcessor(cfg, MediaPipeEngine(cfg.engine.mediapipe))
    seen = []
    update = processor.stabilizer.update
    processor.stabilizer.update = lambda picture, *rest: seen.append(picture) or update(picture, *rest)
    for i, pixels in enumerate(frames):
        inferred = processor.infer(Frame(pixels, i, time.monotonic_ns()))
        processor.stabilize(inferred)
        assert (seen[-1] is inferred.instances.picture) == (i % 3 == 0)  # read frames: the engine's, not scaled again
        assert inferred.instances.fresh.any() == (i % 3 == 0)
    grid = processor._last.mattes.shape[1:]
    assert all(np.array_equal(at_size(picture, grid), at_size(pixels, grid)) for picture, pixels in zip(seen, frames))


def test_dancers_not_read_on_a_frame_keep_their_limbs(models, shared_media):
    """With one landmark read a frame each dancer is read every third frame; in between their matte is
    carried by the picture's motion. It stays near what a fresh read gives: mean difference where either
    has matte <= 0.085 (0.069 measured; moved by the square's velocity, as before, 0.127)."""
    frames = dancers(shared_media)[:48]
    engines = {n: MediaPipeEngine(engine_config(f"engine.mediapipe.people_per_frame={n}").engine.mediapipe)
               for n in (1, 3)}
    differences = []
    for t, pixels in enumerate(frames):
        carried, read = (engines[n].infer([pixels])[0] for n in (1, 3))
        fresh = (int(read.fresh.sum()), int(carried.fresh.sum()))
        assert fresh in ([(3, 3)] if t == 0 else [(3, 1), (0, 0)]), fresh  # (0, 0): the detector's sweep
        carried, read = carried.mattes, read.mattes
        assert len(carried) == len(read) == 3
        for a, b in zip(carried, read):
            differences.append(np.abs(a - b)[(a > 0.01) | (b > 0.01)].mean())
    assert np.mean(differences) <= 0.085, np.mean(differences)


def test_the_detector_rests_on_a_still_picture_and_reads_where_people_appear(models, shared_media):
    """Four people sit still, the right half of the picture is a bare wall; then four more are there.
    While nothing changes the detector reads only the slow sweep's squares (frames 1, 9, 17, 25: where
    it read a square every other frame before), and on those frames nobody followed is read again (one
    model a frame) but right after the stream's start; the four newcomers change the picture where
    nobody followed is, and those squares are read first: all eight are found within 30 frames (the
    sweep alone reads 4 squares of 30 in that time). Half of the picture changing at once is a cut:
    on the sweep's frames after it the people followed are read again too."""
    halves = [half_of_720p(shared_media, name) for name in ("group1.jpg", "group2.jpg")]
    everyone = np.hstack(halves)
    left_only = np.hstack([halves[0], np.full_like(halves[1], 128)])
    engine = MediaPipeEngine(engine_config().engine.mediapipe)
    read_on: list[int] = []
    detect = engine.detector.detect

    def counted(frame, squares=None):
        read_on.append(engine._frame)
        return detect(frame, squares)

    engine.detector.detect = counted
    refreshed_on: list[int] = []
    refresh = engine._refresh
    engine._refresh = lambda person, frame: refreshed_on.append(engine._frame) or refresh(person, frame)
    found = [len(engine.infer([left_only if i < 30 else everyone])[0]) for i in range(60)]
    assert found[:30] == [4] * 30, found
    assert [n for n in read_on if n <= 30] == [1, 9, 17, 25]
    assert set(range(2, 31)) - set(refreshed_on) == {17, 25}, refreshed_on
    assert 33 in read_on and 33 in refreshed_on, (read_on, refreshed_on)
    assert found[59] == 8 and min(found[30:]) >= 4, found
