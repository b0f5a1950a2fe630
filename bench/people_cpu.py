"""The learned CPU engine on real people (../shared/media): engine time, the main job, memory, flicker.

    .venv/bin/python bench/people_cpu.py [--frames 600] [--out bench/results]

- engine: the 96-frame dancers' clip (1280x720, three people), engine alone, people_per_frame 1 and 2
  alternated frame by frame (two engines on the same frames, so both meet the same host moments);
  people found per frame.
- people: engine time with one person (woman.jpg) against eight (group1.jpg and group2.jpg side by
  side), both fitted into 1280x720, alternated frame by frame; the ratios of the medians and of the means.
- pipeline: the main job (configs/bench.yaml's effects: image background, a tint, a pixelation, an own
  background; null sink) behind a live 30 fps source: the clip looped at 720p and at 1080p, the eight
  people at 720p, one person (woman.jpg) at 720p; and a video call: one person, blurred background, no
  per-person effect. Frames per second once running, per-stage p50/p95/p99, capture-to-output latency.
- memory: 2,000 frames of the looped clip through the pipeline (offline, lossless): RSS after the
  first tenth, halfway and at the end.
- flicker: no-reference flicker (mean |alpha_t - alpha_t-1| over the pixels where the picture did not
  change, per person) of the raw engine output (temporal.mode=off) and of the fused mattes (causal), how
  far the fused mattes' centroids lag the raw ones (frames), and the share of the fused mattes lying
  beyond the raw ones (trails, ghosts); for reference, the ratio that medians over 3, 5 and 7 frames
  centred on each frame reach (they see 1-3 frames ahead: not for a live stream), where the flicker
  lies (by distance to the nearest pixel whose picture changed), and the ratio with every person read
  on every frame.

Writes bench/results/people_cpu_<date>.json. The clips the sources read are made with ffmpeg in a
temporary folder (the clip re-timed to 30 fps, upscaled, the photos as a still video).
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import psutil

from livematte.memory import tune_process

tune_process()  # before torch loads: libgomp reads then how its threads wait, as in livematte's commands
from kernels.letterbox import Letterbox
from livematte.config import Config, MediaPipeConfig, load_config
from livematte.engine.mediapipe_engine import MediaPipeEngine
from livematte.eval.metrics import UNCHANGED, beyond_share, flicker, flicker_by_distance
from livematte.frame import Frame
from livematte.processor import FrameProcessor
from pipelines.bench import percentiles, pipeline_run
from pipelines.report import machine, write_report

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT.parent / "shared" / "media"
CLIP = MEDIA / "video_test2.mp4"
W, H = 1280, 720


def clip_frames() -> list[np.ndarray]:
    with av.open(str(CLIP)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def fitted(image: np.ndarray, width: int = W, height: int = H) -> np.ndarray:
    """`image` scaled to fit a width x height canvas, centred on grey."""
    box = Letterbox.fit(*image.shape[:2], height, width)
    canvas = np.full((height, width, 3), 128, np.uint8)
    canvas[box.top:box.top + box.content_h, box.left:box.left + box.content_w] = cv2.resize(
        image, (box.content_w, box.content_h), interpolation=cv2.INTER_AREA)
    return canvas


def eight_people() -> np.ndarray:
    left, right = (fitted(cv2.imread(str(MEDIA / name)), W // 2, H) for name in ("group1.jpg", "group2.jpg"))
    return np.hstack([left, right])


def alternated(engines: dict[str, MediaPipeEngine], frames: dict[str, list[np.ndarray]], warmup: int = 5) -> dict:
    """Each engine on its frames, one frame of each in turn; ms (after `warmup` frames) and people found."""
    times = {name: [] for name in engines}
    found = {name: [] for name in engines}
    for i in range(max(len(f) for f in frames.values())):
        for name, engine in engines.items():
            frame = frames[name][i % len(frames[name])]
            start = time.perf_counter()
            (instances,) = engine.infer([frame])
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
                found[name].append(len(instances))
    return {name: {"ms": percentiles(times[name]), "mean_ms": round(float(np.mean(times[name])), 3),
                   "people_found": {str(n): found[name].count(n) for n in sorted(set(found[name]))}}
            for name in engines}


def engine_section(frames: list[np.ndarray]) -> dict:
    engines = {f"people_per_frame_{n}": MediaPipeEngine(MediaPipeConfig(people_per_frame=n)) for n in (1, 2)}
    return alternated(engines, {name: frames for name in engines}) | {"frames": len(frames), "size": f"{W}x{H}"}


def people_section(repeats: int = 60) -> dict:
    frames = {"one_person": [fitted(cv2.imread(str(MEDIA / "woman.jpg")))], "eight_people": [eight_people()]}
    engines = {name: MediaPipeEngine(MediaPipeConfig()) for name in frames}
    result = alternated(engines, {name: f * repeats for name, f in frames.items()})
    result["ratio_p50_eight_to_one"] = round(result["eight_people"]["ms"]["p50"] / result["one_person"]["ms"]["p50"], 3)
    # the detector runs every other frame, so the times are bimodal and a p50 falls on either mode: the means
    # compare the engines' cost steadily
    result["ratio_mean_eight_to_one"] = round(result["eight_people"]["mean_ms"] / result["one_person"]["mean_ms"], 3)
    return result


def video(path: Path, *ffmpeg_args: str) -> Path:
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", *ffmpeg_args, "-r", "30", "-c:v", "libx264", "-crf", "18",
                    "-pix_fmt", "yuv420p", "-g", "30", str(path)], check=True)
    return path


def job(path: Path, *extra: str) -> Config:
    return load_config(ROOT / "configs" / "bench.yaml", ["source.kind=file", f"source.path={path}", "source.loop=true",
                                                         "source.realtime=true", "engine.kind=mediapipe", *extra])


def pipeline_section(folder: Path, clip720: Path, frames: int) -> dict:
    clip1080 = video(folder / "clip1080.mp4", "-i", str(CLIP), "-vf", "setpts=N/30/TB,scale=1920:1080")
    cv2.imwrite(str(folder / "eight.png"), eight_people())
    eight = video(folder / "eight.mp4", "-loop", "1", "-i", str(folder / "eight.png"), "-frames:v", "90")
    cv2.imwrite(str(folder / "one.png"), fitted(cv2.imread(str(MEDIA / "woman.jpg"))))
    one = video(folder / "one.mp4", "-loop", "1", "-i", str(folder / "one.png"), "-frames:v", "90")
    runs = {"clip_720p": job(clip720), "eight_people_720p": job(eight), "clip_1080p": job(clip1080),
            "one_person_720p": job(one),
            "video_call_720p": job(one, "effects.background.kind=blur", "effects.people={}")}
    return {name: pipeline_run(cfg, frames)[0] for name, cfg in runs.items()}


def memory_section(clip720: Path, frames: int = 2000) -> dict:
    cfg = job(clip720, "source.realtime=false")
    process, samples, done = psutil.Process(), [], threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append(process.memory_info().rss / 2**20)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run, _ = pipeline_run(cfg, frames)
    done.set()
    sampler.join()
    tenth, half = samples[len(samples) // 10], samples[len(samples) // 2]
    return {"frames": run["frames"], "fps": run["fps"], "rss_mb_after_first_tenth": round(tenth, 1),
            "rss_mb_at_end": round(samples[-1], 1), "rss_mb_max": round(max(samples), 1),
            "growth_mb_after_first_tenth": round(samples[-1] - tenth, 1),
            # a one-time step (the allocator keeping a larger buffer once it was needed) can fall after the
            # first tenth; a leak grows in the second half too
            "growth_mb_second_half": round(samples[-1] - half, 1)}


def tracked_mattes(frames: list[np.ndarray], mode: str, *extra: str) -> list[dict[int, np.ndarray]]:
    """Per frame, each track id's matte (the whole product path up to the compositor)."""
    cfg = load_config(overrides=["engine.kind=mediapipe", f"temporal.mode={mode}", "effects.people={}", *extra])
    processor = FrameProcessor(cfg, MediaPipeEngine(cfg.engine.mediapipe))
    out = []
    for i, pixels in enumerate(frames):
        people = processor.track(Frame(pixels, i, time.monotonic_ns())).people
        out.append(dict(zip(people.ids, np.asarray(people.mattes))))
    return out


def centroids(mattes: list[dict[int, np.ndarray]], track: int) -> np.ndarray:
    points = []
    for frame in mattes:
        alpha = frame.get(track)
        if alpha is None or alpha.sum() == 0:
            points.append((np.nan, np.nan))
            continue
        ys, xs = np.indices(alpha.shape)
        points.append(((alpha * xs).sum() / alpha.sum(), (alpha * ys).sum() / alpha.sum()))
    return np.array(points)


def lag(raw: np.ndarray, fused: np.ndarray, most: int = 5) -> int:
    """The delay (frames) at which the fused centroids best follow the raw ones."""
    errors = [np.nanmean(np.hypot(*(fused[shift:] - raw[:len(raw) - shift]).T)) for shift in range(most + 1)]
    return int(np.argmin(errors))


def ratio(before: dict[int, float], after: dict[int, float]) -> float:
    """Mean flicker after over before (flicker()'s figures per person), over the people both hold."""
    people = sorted(set(before) & set(after))
    return round(float(np.mean([after[t] for t in people]) / np.mean([before[t] for t in people])), 3)


def centred_medians(frames: list[np.ndarray], raw: list[dict[int, np.ndarray]], length: int) -> float:
    """The flicker ratio of each raw matte's median over `length` frames centred on its own: a filter that
    sees (length - 1) / 2 frames ahead, which no live stream may wait for; where the causal fusion stands
    against what a filter that may look ahead reaches. Over the frames with a full window."""
    half = length // 2
    shape = next(alpha.shape for people in raw for alpha in people.values())
    tracks = sorted({t for people in raw for t in people})
    stacks = {t: np.stack([people.get(t, np.zeros(shape, np.float32)) for people in raw]) for t in tracks}
    kept = range(half, len(raw) - half)
    medians = [{t: np.median(stacks[t][i - half:i + half + 1], axis=0) for t in raw[i]} for i in kept]
    window = [frames[i] for i in kept]
    return ratio(flicker(window, [raw[i] for i in kept]), flicker(window, medians))


def flicker_section(frames: list[np.ndarray]) -> dict:
    raw, fused = tracked_mattes(frames, "off"), tracked_mattes(frames, "causal")
    raw_flicker, fused_flicker = flicker(frames, raw), flicker(frames, fused)
    people = sorted(set(raw_flicker) & set(fused_flicker))
    raw_bands, fused_bands = flicker_by_distance(frames, raw), flicker_by_distance(frames, fused)
    everyone = [f"engine.mediapipe.people_per_frame={len(people)}"]
    raw_everyone, fused_everyone = (flicker(frames, tracked_mattes(frames, mode, *everyone))
                                    for mode in ("off", "causal"))
    return {
        "unchanged_below_grey_levels": UNCHANGED,
        "raw": {str(t): round(raw_flicker[t], 5) for t in people},
        "fused": {str(t): round(fused_flicker[t], 5) for t in people},
        "ratio_fused_to_raw": ratio(raw_flicker, fused_flicker),
        "ratio_centred_median_to_raw": {str(n): centred_medians(frames, raw, n) for n in (3, 5, 7)},
        "centroid_lag_frames": {str(t): lag(centroids(raw, t), centroids(fused, t)) for t in people},
        # what holding costs: fused matte more than 3 pixels of the mattes (6 of a 720p frame) from the raw's
        "fused_beyond_raw_share": round(beyond_share(fused, raw, reach=3), 5),
        "by_distance_to_a_changed_pixel": {  # bands (0, 1.5], (1.5, 4], beyond, in pixels of the mattes
            "raw_share": [round(b / sum(raw_bands), 3) for b in raw_bands],
            "fused_share": [round(b / sum(fused_bands), 3) for b in fused_bands],
            "ratio_fused_to_raw": [round(f / r, 3) for f, r in zip(fused_bands, raw_bands)],
        },
        "everyone_read_every_frame": {  # people_per_frame = the people: no matte carried by the flow
            "raw_mean": round(float(np.mean(list(raw_everyone.values()))), 5),
            "ratio_fused_to_raw": ratio(raw_everyone, fused_everyone),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=600, help="frames per pipeline run (default 600)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if not CLIP.exists():
        raise SystemExit(f"the shared media are not at {MEDIA}; this benchmark needs them")
    frames = clip_frames()
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "device": machine(),
              "engine": engine_section(frames), "people": people_section(), "flicker": flicker_section(frames)}
    with tempfile.TemporaryDirectory() as tmp:
        clip720 = video(Path(tmp) / "clip720.mp4", "-i", str(CLIP), "-vf", "setpts=N/30/TB")
        report["pipeline"] = pipeline_section(Path(tmp), clip720, args.frames)
        report["memory"] = memory_section(clip720)
    report["device_after"] = machine()
    print(write_report(report, args.out, "people_cpu"))


if __name__ == "__main__":
    main()
