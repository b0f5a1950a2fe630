"""The GPU path in one run: CUDA tests, E2E-HIM on CUDA, the whole pipeline, the WebRTC path, the kernels.

    python bench/gpu_check.py --out DIR [--device cuda|cpu] [--only STEP ...]

On a CUDA machine (torch with CUDA, CuPy) it runs six steps and writes DIR/gpu_check.json after each
one (a run cut short keeps what it measured), DIR/gpu_check.png and, from the tests, DIR/tests.log:
1. tests: `pytest -m gpu` over the CUDA tests (kernel parity with the CPU twins, CUDA graphs, the
   engine and the frame processor on CUDA);
2. model: E2E-HIM (random weights) at 640x352 and 640x640 (W x H), batch 1 and 4, fp32, fp16 autocast
   and fp16 + CUDA graphs: median/p95 by CUDA events, and the largest difference of alpha and p(human)
   from the CPU fp32 output on the same input;
3. pipeline: `livematte bench`'s pipeline runs on the synthetic scene at 1920x1080 and 1280x720, with
   every effect and a null sink: per-stage p50/p99, fps live and unpaced, capture-to-output latency,
   host<->device copies per frame (counted by CUPTI through torch's profiler), GPU memory; the people
   sweep 1/4/20 for the cost per person. E2E-HIM runs its full forward and post-processing on every
   frame, but random weights find no people, so its mattes are replaced by the scene's true ones,
   uploaded before the run: tracking, fusion and compositing see real people;
4. webrtc: four peers' sessions (the server's processing path, in process) on one shared CUDA engine;
5. kernels: the CuPy kernels alone at 1080p and 4K with 1, 4 and 20 people, and their parity;
6. streams: 8 and 16 live 720p streams at 30 fps on one E2E-HIM, batched against one frame at a time
   (`livematte bench --streams N`): streams held at 30 fps, the batching gain, latency.
`--device cpu` runs the same steps on the CPU at small sizes (tests in CI), so the script is known to
work before device time is spent. The packages a CUDA image lacks: scripts/gpu_wheels.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from aiortc import MediaStreamTrack  # noqa: E402
from av import VideoFrame  # noqa: E402
from kernels_gpu import bench_case, parity  # noqa: E402
from timing import call_ms, summary  # noqa: E402

from livematte.config import Config, load_config  # noqa: E402
from livematte.engine.base import Engine, Instances  # noqa: E402
from livematte.engine.torch_engine import TorchEngine  # noqa: E402
from livematte.frame import Frame  # noqa: E402
from livematte.model.e2ehim import E2EHIM  # noqa: E402
from livematte.processor import FrameProcessor  # noqa: E402
from livematte.sources import Source, SourceInfo  # noqa: E402
from livematte.synthetic import SyntheticScene  # noqa: E402
from pipelines.bench import pipeline_run  # noqa: E402
from pipelines.report import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FPS = 30.0
STEPS = ("tests", "model", "pipeline", "webrtc", "kernels", "streams")
CUDA_TESTS = ("tests/test_kernels_cuda.py", "tests/test_torch_engine.py", "tests/test_tensorrt.py",
              "tests/test_processor_network.py")
PATHS = {"fp32": {"fp16": False}, "fp16": {"fp16": True}, "fp16_cuda_graphs": {"fp16": True, "cuda_graphs": True}}
EFFECTS = {1: {"effect": "blur", "background": str(ROOT / "configs/backgrounds/beach.png")},
           2: {"effect": "pixelate"}, 3: {"effect": "tint"}, 4: {"effect": "spotlight"}, 5: {"effect": "hide"}}
TARGETS = {"model_640x352_fp16_graphs_batch1_ms": 8.0, "model_640x352_fp16_graphs_batch4_per_frame_ms": 4.0,
           "pipeline_1080p_4_people_capacity_fps": 120.0, "latency_beyond_engine_ms": 3.0,
           "copies_per_frame": 2.0, "composite_plus_fusion_1080p_ms": 1.0, "cost_20_vs_1_person": 1.1,
           "streams_held_at_30_fps": 16, "batched_over_one_at_a_time_8_streams": 2.0}


@dataclass(frozen=True)
class Sizes:
    """What each step runs at: full sizes on a GPU, small ones for the CPU rehearsal."""

    model: dict[str, tuple[int, int]]  # label -> (height, width)
    batches: tuple[int, ...]
    repeats: int
    network: tuple[int, int]  # E2E-HIM's input (height, width) in the pipeline and WebRTC steps
    pipeline: dict[str, tuple[int, int]]  # the first is the largest
    frames: int
    live_frames: int
    sweep_frames: int
    people: tuple[int, ...]
    kernels: dict[str, tuple[int, int]]
    peers: int
    peer_frames: int
    streams: tuple[int, ...]  # how many streams at once, the first compared batched against one at a time
    stream_frames: int


CUDA_SIZES = Sizes(model={"640x352": (352, 640), "640x640": (640, 640)}, batches=(1, 4), repeats=50,
                   network=(352, 640), pipeline={"1920x1080": (1080, 1920), "1280x720": (720, 1280)},
                   frames=240, live_frames=150, sweep_frames=60, people=(1, 4, 20),
                   kernels={"1080p": (1080, 1920), "4K": (2160, 3840)}, peers=4, peer_frames=60, streams=(8, 16),
                   stream_frames=90)
CPU_SIZES = Sizes(model={"160x96": (96, 160)}, batches=(1, 2), repeats=2, network=(96, 160),
                  pipeline={"320x192": (192, 320)}, frames=8, live_frames=6, sweep_frames=4, people=(1, 4),
                  kernels={"320x192": (192, 320)}, peers=2, peer_frames=3, streams=(2, 3), stream_frames=4)


# --- 1. tests --------------------------------------------------------------------------------------


def run_tests(out: Path, timeout_s: float) -> dict:
    """`pytest -m gpu` over the CUDA tests; the whole output goes to out/tests.log."""
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
               f"--junitxml={out / 'tests.xml'}", *CUDA_TESTS]
    started = time.perf_counter()
    try:
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
        log, code = run.stdout + run.stderr, run.returncode
    except subprocess.TimeoutExpired as exc:
        log, code = f"{exc.stdout or ''}{exc.stderr or ''}\nstopped after {timeout_s} s", None
    (out / "tests.log").write_text(log)
    print(log[-3000:], flush=True)
    return {"command": " ".join(command[1:]), "exit_code": code, "seconds": round(time.perf_counter() - started, 1),
            **junit_counts(out / "tests.xml")}


def junit_counts(path: Path) -> dict[str, int]:
    import xml.etree.ElementTree as ET

    if not path.is_file():
        return {}
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    return {**counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]}


# --- 2. model --------------------------------------------------------------------------------------


def check_model(sizes: Sizes, device: str) -> dict:
    """Each precision path against the CPU fp32 network on the same random input."""
    torch.manual_seed(0)
    model = E2EHIM().eval()
    cpu_model = copy.deepcopy(model)  # engines move and reformat the model they are given
    rows = []
    for label, (h, w) in sizes.model.items():
        image = torch.randn(max(sizes.batches), 3, h, w, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            reference = cpu_model(image)
        for path, options in PATHS.items():
            if device != "cuda" and path != "fp32":
                rows.append({"size": label, "path": path, "skipped": "needs CUDA"})
                continue
            engine = TorchEngine(model, device=device, input_size=(h, w), warmup=False, **options)
            for batch in sizes.batches:
                x = image[:batch].to(device).contiguous(memory_format=engine.memory_format)
                with torch.inference_mode():
                    times = call_ms(lambda: engine._forward(x), sizes.repeats, cuda=device == "cuda", warmup=3)
                    got = engine._forward(x)
                rows.append({"size": label, "path": path, "batch": batch, **summary(times, batch),
                             **differences(got, reference, batch)})
                print(json.dumps(rows[-1]), flush=True)
            engine = None  # its CUDA graphs' memory goes before the next path's
            if device == "cuda":
                torch.cuda.empty_cache()
    return {"weights": "random (torch.manual_seed(0))", "timing": "the network on a batch already on the device",
            "rows": rows, "top_kernels": top_kernels(model, sizes, device)}


def top_kernels(model: E2EHIM, sizes: Sizes, device: str, calls: int = 20) -> dict:
    """Where the GPU's time goes in one forward: the fastest path at the first size, batch 1."""
    if device != "cuda":
        return {"skipped": "needs CUDA"}
    label, size = next(iter(sizes.model.items()))
    engine = TorchEngine(model, device=device, input_size=size, **PATHS["fp16_cuda_graphs"])
    x = torch.zeros(1, 3, *size, device=device).contiguous(memory_format=engine.memory_format)

    def forwards() -> None:
        with torch.inference_mode():
            for _ in range(calls):
                engine._forward(x)

    found = trace_summary(profiled_trace(forwards), top=25)
    return {"size": label, "path": "fp16_cuda_graphs", "batch": 1,
            "kernel_ms_per_forward": round(found["kernel_ms"] / calls, 3),
            "kernels_ms_per_forward": {name: round(ms / calls, 4) for name, ms in found["top"].items()}}


def differences(got, reference, batch: int) -> dict[str, float]:
    """Largest |difference| of alpha and of p(human) from the CPU fp32 output."""
    alpha = (got.alpha.float().cpu() - reference.alpha[:batch]).abs().max()
    probs = (got.class_logits.float().softmax(-1).cpu() - reference.class_logits[:batch].softmax(-1)).abs().max()
    return {"max_abs_diff_alpha": round(float(alpha), 6), "max_abs_diff_p_human": round(float(probs), 6)}


# --- 3. pipeline -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clip:
    """The synthetic scene rendered once: its frames and each frame's true mattes (N, H, W)."""

    images: np.ndarray  # (T, H, W, 3) uint8 BGR
    alphas: np.ndarray  # (T, N, H, W) float32

    @classmethod
    def render(cls, h: int, w: int, people: int, frames: int) -> "Clip":
        scene = SyntheticScene(w, h, people, seed=people)
        rendered = [scene.render(i) for i in range(frames)]
        return cls(np.stack([r[0] for r in rendered]), np.stack([r[1] for r in rendered]))


class ClipSource(Source):
    """The clip's frames, paced at 30 fps (live: the newest wins) or unpaced (lossless): a source that costs
    nothing, so the pipeline's own capacity is measured (the synthetic scene renders 4 people at 1080p in
    15-25 ms a frame on a CPU core, which would cap an unpaced run below the target)."""

    def __init__(self, clip: Clip, frames: int, realtime: bool):
        super().__init__(SourceInfo(f"clip {clip.images.shape[2]}x{clip.images.shape[1]}", FPS, realtime),
                         lossless=not realtime)
        self.clip, self.frames, self.realtime = clip, frames, realtime

    def _produce(self) -> Iterator[Frame]:
        for i in range(self.frames):
            if self.realtime:
                self._pace(i / FPS)
            yield self._frame(self.clip.images[i % len(self.clip.images)], i / FPS)


class SceneMattes(Engine):
    """E2E-HIM's full forward and post-processing on every frame, answering with the clip's true mattes.

    Random weights find nobody, and tracking, fusion and compositing cost what the people cost; the true
    mattes are on the device before the run starts, so the frame's own copies are the only ones counted.
    Calls are counted as frame indices: exact for an unpaced (lossless) source, a frame or two off when a
    live source drops frames (the timings do not depend on it)."""

    def __init__(self, network: TorchEngine, clip: Clip):
        self.network = network
        cuda = network.device.type == "cuda"
        self._mattes = torch.from_numpy(clip.alphas).to(network.device) if cuda else clip.alphas
        self.clip_bytes = clip.alphas.nbytes if cuda else 0  # on the device for the whole run
        people = clip.alphas.shape[1]
        self._probs = torch.ones(people, device=network.device) if cuda else np.ones(people, np.float32)
        self._calls = 0

    def rewind(self) -> None:
        """Back to the clip's first frame, for the next run."""
        self._calls = 0

    @property
    def input_size(self) -> tuple[int, int]:
        return self.network.input_size

    @property
    def device(self) -> torch.device:
        return self.network.device

    def infer(self, frames: Sequence[Any]) -> list[Instances]:
        self.network.infer(frames)
        found = []
        for _ in frames:
            found.append(Instances(self._mattes[self._calls % len(self._mattes)], self._probs))
            self._calls += 1
        return found


def pipeline_config(people: int) -> Config:
    """bench.yaml with every effect: a blurred background, one person with an own background too."""
    cfg = load_config(ROOT / "configs/bench.yaml")
    effects = cfg.effects.model_validate({"background": {"kind": "blur"}, "people": EFFECTS})
    return cfg.model_copy(update={"source": cfg.source.model_copy(update={"people": people}), "effects": effects})


def check_pipeline(sizes: Sizes, device: str, network: TorchEngine) -> dict:
    """Live (paced at 30 fps) and unpaced runs per frame size with 4 people, the people sweep at the
    largest size, and the host<->device copies of a frame at the largest size."""
    runs = {}

    def run(label: str, clip: Clip, engine: SceneMattes, frames: int, realtime: bool) -> dict:
        people = clip.alphas.shape[1]
        engine.rewind()
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        report, _ = pipeline_run(pipeline_config(people), frames,
                                 (engine, "E2E-HIM (random weights) with the scene's mattes"),
                                 ClipSource(clip, frames, realtime))
        report.update(frame=f"{clip.images.shape[2]}x{clip.images.shape[1]}", people=people,
                      paced=f"{FPS:g} fps" if realtime else "unpaced",
                      gpu_memory=gpu_memory(device, engine.clip_bytes))
        runs[label] = report
        print(label, json.dumps({k: report[k] for k in ("fps", "stage_ms", "latency_ms")}), flush=True)
        return report

    largest, (h, w) = next(iter(sizes.pipeline.items()))
    for label, (height, width) in sizes.pipeline.items():
        clip = Clip.render(height, width, 4, sizes.frames)
        engine = SceneMattes(network, clip)
        # the first frames compile the CUDA kernels, the first at a new size allocate (seconds): not timed
        warm_up = run(f"{label} 4 people warm-up", clip, engine, sizes.live_frames, realtime=False)
        if label == largest:
            first_frame_s, shown = warm_up["first_frame_s"], people_shown(clip, engine)
        run(f"{label} 4 people live", clip, engine, sizes.live_frames, realtime=True)
        run(f"{label} 4 people unpaced", clip, engine, sizes.frames, realtime=False)
        if label == largest:
            activity = gpu_activity(lambda n: run(f"{label} 4 people profiled ({n} frames)", clip, engine, n,
                                                  realtime=False), sizes.frames // 2, device)
        clip = engine = None  # the clip's host and device memory go before the next is rendered
    for people in sizes.people:
        if people != 4:
            clip = Clip.render(h, w, people, sizes.sweep_frames)
            run(f"{largest} {people} people unpaced", clip, SceneMattes(network, clip), sizes.sweep_frames,
                realtime=False)
            clip = None
    return {"source": "the synthetic scene pre-rendered (ClipSource)", "first_frame_s": first_frame_s,
            "people_shown": shown, "runs": runs, "gpu_activity": activity,
            "per_person": per_person(runs, largest, sizes.people)}


def people_shown(clip: Clip, engine: SceneMattes, frames: int = 6) -> list[int]:
    """People in each output frame of a FrameProcessor on the clip: tracking keeps the scene's people."""
    engine.rewind()
    processor = FrameProcessor(pipeline_config(clip.alphas.shape[1]), engine)
    shown = [processor.process(Frame(clip.images[i], i, 0, i / FPS)).people for i in range(frames)]
    processor.close()
    return shown


def gpu_memory(device: str, clip_bytes: int) -> dict[str, float]:
    """The run's peak of torch's allocations, the clip's true mattes (uploaded before it) left out, and
    what CuPy's pool holds (the fusion state and compositing buffers)."""
    if device != "cuda":
        return {}
    import cupy

    return {"torch_peak_mb": round((torch.cuda.max_memory_allocated() - clip_bytes) / 2**20, 1),
            "cupy_pool_mb": round(cupy.get_default_memory_pool().total_bytes() / 2**20, 1)}


def gpu_activity(run: Callable[[int], dict], frames: int, device: str) -> dict:
    """What the GPU does for one frame: host<->device copies (count, bytes), kernel and copy time, the
    kernels that take it. CUPTI's activity of runs of n and 2n frames, differenced, so the start-up's
    work (warm-up, constants) cancels out."""
    if device != "cuda":
        return {"skipped": "no CUDA device: nothing to count"}
    traces = [profiled_trace(lambda: run(n)) for n in (frames, 2 * frames)]
    first, second = (trace_summary(t) for t in traces)
    per_frame = {kind: {k: round((second["copies"][kind][k] - first["copies"][kind][k]) / frames, 3)
                        for k in ("copies", "bytes")} for kind in first["copies"]}
    busy = {k: round((second[k] - first[k]) / frames, 3) for k in ("kernel_ms", "memcpy_ms")}
    return {"frames": [frames, 2 * frames], "copies_per_frame": per_frame, "gpu_ms_per_frame": busy,
            "top_kernels_ms_per_frame": {name: round(ms / (2 * frames), 4) for name, ms in second["top"].items()}}


def profiled_trace(work: Callable[[], object]) -> dict:
    """The chrome trace of torch's profiler (CUPTI: every kernel and copy in the process, CuPy's too)."""
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "trace.json"
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
            work()
            torch.cuda.synchronize()
        profile.export_chrome_trace(str(trace))
        return json.loads(trace.read_text())


def trace_summary(trace: dict, top: int = 15) -> dict:
    """Copies and bytes each way ("Memcpy HtoD ..." events), kernel and copy milliseconds, the `top`
    kernels by time."""
    copies = {"HtoD": {"copies": 0, "bytes": 0}, "DtoH": {"copies": 0, "bytes": 0}}
    kernels: dict[str, float] = {}
    memcpy_us = 0.0
    for event in trace.get("traceEvents", []):
        name, category = str(event.get("name", "")), event.get("cat")
        if category == "kernel":
            kernels[name[:80]] = kernels.get(name[:80], 0.0) + float(event.get("dur", 0)) / 1e3
        elif category == "gpu_memcpy":
            memcpy_us += float(event.get("dur", 0))
            for kind, tally in copies.items():
                if name.startswith(f"Memcpy {kind}"):
                    tally["copies"] += 1
                    tally["bytes"] += int(event.get("args", {}).get("bytes", 0))
    ranked = dict(sorted(kernels.items(), key=lambda item: -item[1])[:top])
    return {"copies": copies, "kernel_ms": sum(kernels.values()), "memcpy_ms": memcpy_us / 1e3, "top": ranked}


def per_person(runs: dict, size: str, people: tuple[int, ...]) -> dict:
    """Engine + fusion + composite p50 at each number of people, and the most against one person."""
    cost = {}
    for n in people:
        stages = runs[f"{size} {n} people unpaced"]["stage_ms"]
        cost[n] = round(sum(stages[s]["p50"] for s in ("engine", "stabilize", "composite")), 3)
    return {"ms_by_people": cost, "most_vs_one": round(cost[max(people)] / cost[min(people)], 3)}


# --- 4. webrtc -------------------------------------------------------------------------------------


def check_webrtc(sizes: Sizes, device: str, model: E2EHIM, folder: Path) -> dict:
    """Peers' sessions on one shared engine, as `livematte serve` makes them, fed by scene cameras."""
    from safetensors.torch import save_file

    from livematte.webrtc.engines import PeerEngines
    from livematte.webrtc.session import PeerSession

    weights = folder / "random.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    cfg = load_config(ROOT / "configs/serve.yaml", [
        "engine.kind=e2ehim", f"engine.e2ehim.weights={weights}", f"engine.e2ehim.device={device}",
        f"engine.e2ehim.input_size=[{sizes.network[0]}, {sizes.network[1]}]"])
    engines = PeerEngines(cfg.engine)
    h, w = next(iter(sizes.pipeline.values()))
    clip = Clip.render(h, w, 4, frames=30)

    async def peer(index: int) -> dict:
        session = PeerSession(f"gpu-check-{index}", cfg, engines.for_peer())
        track = session.attach_track(SceneCamera(clip))
        started = time.perf_counter()
        try:
            shapes = {(await track.recv()).to_ndarray(format="bgr24").shape for _ in range(sizes.peer_frames)}
        finally:
            await session.close()
        seconds = time.perf_counter() - started
        return {"frames": sizes.peer_frames, "fps": round(sizes.peer_frames / seconds, 2),
                "output_shapes": sorted(map(list, shapes)), "uploads_to": str(session.processor._device)}

    async def all_peers() -> list[dict]:
        return await asyncio.gather(*(peer(i) for i in range(sizes.peers)))

    peers = asyncio.run(all_peers())
    ok = all(p["output_shapes"] == [[h, w, 3]] and p["uploads_to"] == device for p in peers)
    return {"engine": engines.description, "frame": f"{w}x{h}", "peers": peers, "ok": ok}


class SceneCamera(MediaStreamTrack):
    """A browser's camera track as the server receives it: a clip's frames, looped, at 30 fps on the RTP
    clock (pre-rendered: rendering here would run on the server's event loop)."""

    kind = "video"

    def __init__(self, clip: Clip):
        super().__init__()
        self.clip, self.count = clip, 0

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(1 / FPS)
        frame = VideoFrame.from_ndarray(self.clip.images[self.count % len(self.clip.images)], format="bgr24")
        frame.pts, frame.time_base = self.count * 3000, Fraction(1, 90000)
        self.count += 1
        return frame


# --- 5. kernels ------------------------------------------------------------------------------------


def check_kernels(sizes: Sizes, device: str) -> dict:
    xp = __import__("cupy") if device == "cuda" else np
    cases = [bench_case(label, h, w, n, sizes.repeats, xp) for label, (h, w) in sizes.kernels.items()
             for n in sizes.people]
    return {"cases": cases, "parity_max_abs_diff": parity() if device == "cuda" else {"skipped": "needs CUDA"}}


# --- 6. streams ------------------------------------------------------------------------------------


def check_streams(sizes: Sizes, device: str, model: E2EHIM, folder: Path) -> dict:
    """`livematte bench --streams N` on the device: live 30 fps scenes at the pipeline's second size on one
    E2E-HIM, batched against one frame at a time (pipelines/bench_streams.py)."""
    from safetensors.torch import save_file

    from pipelines.bench_streams import streams_bench

    weights = folder / "streams.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    h, w = list(sizes.pipeline.values())[-1]
    cfg = load_config(ROOT / "configs/bench.yaml", [
        f"source.width={w}", f"source.height={h}", "engine.kind=e2ehim", f"engine.e2ehim.weights={weights}",
        f"engine.e2ehim.device={device}", f"engine.e2ehim.input_size=[{sizes.network[0]}, {sizes.network[1]}]"])
    runs = {}
    for n in sizes.streams:
        report, _ = streams_bench(cfg, n, sizes.stream_frames, folder, name=f"streams_{n}")
        runs[str(n)] = {k: v for k, v in report.items() if k not in ("config", "device")}
    return {"frame": f"{w}x{h}", "runs": runs}


# --- report ----------------------------------------------------------------------------------------


def device_info(device: str) -> dict:
    info = {"host": machine(), "torch": torch.__version__, "python": platform.python_version(), "numpy": np.__version__}
    if device == "cuda":
        import cupy

        info.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    cupy=cupy.__version__, cuda_runtime=cupy.cuda.runtime.runtimeGetVersion())
    return info


def against_targets(report: dict) -> dict:
    """Each target of the GPU issue with what was measured (None where its step did not run)."""
    def find(get: Callable[[], float]) -> float | None:
        try:
            return get()
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
            return None

    model = report.get("model", {}).get("rows", [])
    graphs = {r["batch"]: r for r in model if r.get("size") == "640x352" and r.get("path") == "fp16_cuda_graphs"}
    runs = report.get("pipeline", {}).get("runs", {})
    unpaced = runs.get("1920x1080 4 people unpaced", {})
    live = runs.get("1920x1080 4 people live", {})
    copies = report.get("pipeline", {}).get("gpu_activity", {}).get("copies_per_frame", {})
    kernels = report.get("kernels", {}).get("cases", [])
    streams = report.get("streams", {}).get("runs", {})
    measured = {
        "model_640x352_fp16_graphs_batch1_ms": find(lambda: graphs[1]["median_ms"]),
        "model_640x352_fp16_graphs_batch4_per_frame_ms": find(lambda: graphs[4]["per_frame_ms"]),
        "pipeline_1080p_4_people_capacity_fps": find(lambda: unpaced["fps"]),
        "latency_beyond_engine_ms": find(
            lambda: round(live["latency_ms"]["p50"] - live["stage_ms"]["engine"]["p50"], 3)),
        "copies_per_frame": find(lambda: copies["HtoD"]["copies"] + copies["DtoH"]["copies"]),
        "composite_plus_fusion_1080p_ms": find(lambda: max(c["composite_plus_fusion_ms"] for c in kernels
                                                           if c["size"] == "1080p" and c["people"] <= 4)),
        "cost_20_vs_1_person": find(lambda: report["pipeline"]["per_person"]["most_vs_one"]),
        "streams_held_at_30_fps": find(lambda: max(max(r["streams_held"] for r in run["modes"]["batched"])
                                                   for run in streams.values())),
        "batched_over_one_at_a_time_8_streams": find(lambda: streams["8"]["batched_over_single"]["total_fps"]),
    }
    at_least = {"pipeline_1080p_4_people_capacity_fps", "streams_held_at_30_fps",
                "batched_over_one_at_a_time_8_streams"}
    return {name: {"measured": value, "target": TARGETS[name],
                   "met": None if value is None else (
                       value >= TARGETS[name] if name in at_least else value <= TARGETS[name])}
            for name, value in measured.items()}


def plot(report: dict, path: Path) -> None:
    """Left: the network per frame by path and batch; right: the pipeline's stages (p50) per run."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rows = [r for r in report.get("model", {}).get("rows", []) if "per_frame_ms" in r]
    left.barh([f"{r['size']} {r['path']} b{r['batch']}" for r in rows], [r["per_frame_ms"] for r in rows])
    left.set_xlabel("E2E-HIM ms per frame")
    left.tick_params(labelsize=7)
    runs = {k: v for k, v in report.get("pipeline", {}).get("runs", {}).items()
            if "profiled" not in k and "warm-up" not in k}
    bottom = np.zeros(len(runs))
    for stage in ("engine", "stabilize", "composite", "sinks"):
        values = np.array([r["stage_ms"].get(stage, {}).get("p50", 0.0) for r in runs.values()])
        right.barh(list(runs), values, left=bottom, label=stage)
        bottom += values
    right.set_xlabel("pipeline stage p50, ms")
    right.tick_params(labelsize=7)
    right.legend(fontsize=7)
    fig.suptitle(report["device"].get("gpu", "CPU rehearsal"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json, its plot and logs")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--only", nargs="+", choices=STEPS, default=list(STEPS), help="steps to run (default all)")
    parser.add_argument("--tests-timeout", type=float, default=150.0, help="seconds for the tests step")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device; run with --device cpu for the rehearsal", file=sys.stderr)
        return 2
    sizes = CUDA_SIZES if args.device == "cuda" else CPU_SIZES
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "device": device_info(args.device), "errors": {}, "seconds": {}}
    model = E2EHIM().eval()
    network: TorchEngine | None = None

    def pipeline_engine() -> TorchEngine:
        nonlocal network
        if network is None:
            network = TorchEngine(model, device=args.device, input_size=sizes.network,
                                  cuda_graphs=args.device == "cuda")
        return network

    with tempfile.TemporaryDirectory() as scratch:
        steps = {"tests": lambda: run_tests(args.out, args.tests_timeout),
                 "model": lambda: check_model(sizes, args.device),
                 "pipeline": lambda: check_pipeline(sizes, args.device, pipeline_engine()),
                 "webrtc": lambda: check_webrtc(sizes, args.device, model, Path(scratch)),
                 "kernels": lambda: check_kernels(sizes, args.device),
                 "streams": lambda: check_streams(sizes, args.device, model, Path(scratch))}
        for name in (s for s in STEPS if s in args.only):
            print(f"--- {name}", flush=True)
            started = time.perf_counter()
            try:
                report[name] = steps[name]()
            except Exception:  # one step failing must not cost the others' device time
                report["errors"][name] = traceback.format_exc()
                print(report["errors"][name], file=sys.stderr, flush=True)
            report["seconds"][name] = round(time.perf_counter() - started, 1)
            report["targets"] = against_targets(report)
            (args.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    plot(report, args.out / "gpu_check.png")
    print(json.dumps(report["targets"], indent=2))
    return 1 if report["errors"] or report.get("tests", {}).get("exit_code", 0) != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
