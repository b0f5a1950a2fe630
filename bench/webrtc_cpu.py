"""The WebRTC server's work per peer on CPU, with 1, 2 or 4 peers served at once.

    .venv/bin/python bench/webrtc_cpu.py [--peers 1 2 4] [--seconds 15] [--out bench/results]

No network and no browser: each peer is a PeerSession whose camera track arrives VP8-encoded at 30 fps
and is decoded on a thread (as aiortc's receiver does), and whose processed track is pulled and
VP8-encoded on a thread (as aiortc's sender does). So every frame costs what it costs the server:
decode, keying engine, tracking + fusion, compositing, encode. Scene: the synthetic scene, 640x360,
2 people in a video call (motion 0.05), chroma key, blurred background. Figures come from the stats
messages the pages get (one per second; the first WARMUP_S are skipped).

Each case runs three times, each in its own process, with OpenMP's threads (numba's kernels) waiting
between kernels three ways: spinning (OMP_WAIT_POLICY=ACTIVE), sleeping at once (PASSIVE), and
livematte's own setting (a spin of about 0.1 ms, livematte/__init__.py). Ratios: aggregate fps (all
peers together) of each over ACTIVE, and N peers over one peer with livematte's setting. Writes
bench/results/webrtc_cpu_<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import aiortc
import av
import numba
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from keying_cpu import cpu_model

from livematte.memory import tune_process

tune_process()  # before torch loads (the livematte imports below): the child's OpenMP wait, unless set for it

from livematte.config import load_config
from livematte.synthetic import SyntheticScene
from livematte.webrtc.cli import SERVE_CONFIG
from livematte.webrtc.engines import PeerEngines
from livematte.webrtc.session import PeerSession
from pipelines.report import environment_with_openmp_wait, write_report

WIDTH, HEIGHT, PEOPLE, FPS, LOOP = 640, 360, 2, 30, 60
WARMUP_S = 3
# how OpenMP's threads wait -> the variables the child process gets (livematte's own: none, it sets them)
WAITS = {"ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}, "livematte": {}}
SETTINGS = ["engine.kind=keying", "engine.keying.mode=chroma", "effects.background.kind=blur",
            "serve.stats_interval_s=1"]


def camera_payloads() -> list[bytes]:
    """LOOP frames of the scene, VP8-encoded once (a key frame first), as a browser would send them."""
    scene = SyntheticScene(WIDTH, HEIGHT, PEOPLE, seed=0, fps=FPS, motion=0.05)
    encoder = Vp8Encoder()
    payloads = []
    for index in range(LOOP):
        frame = av.VideoFrame.from_ndarray(scene.render(index)[0], format="bgr24")
        frame.pts, frame.time_base = index * 3000, Fraction(1, 90000)
        packets, _ = encoder.encode(frame, force_keyframe=index == 0)
        payloads.append(b"".join(VpxPayloadDescriptor.parse(p)[1] for p in packets))
    return payloads


class ReceivedCamera(MediaStreamTrack):
    """A browser's camera as the server receives it: VP8 at 30 fps, decoded on a thread."""

    kind = "video"

    def __init__(self, payloads: list[bytes]):
        super().__init__()
        self.payloads, self.decoder, self.index = payloads, Vp8Decoder(), 0
        self.start = None

    async def recv(self) -> av.VideoFrame:
        loop = asyncio.get_running_loop()
        self.start = self.start if self.start is not None else loop.time()
        await asyncio.sleep(max(0.0, self.start + self.index / FPS - loop.time()))
        packet = JitterFrame(data=self.payloads[self.index % LOOP], timestamp=self.index * 3000)
        self.index += 1
        frames = await loop.run_in_executor(None, self.decoder.decode, packet)
        return frames[-1]


class StatsChannel:
    """The page's end of the data channel, keeping the stats messages."""

    readyState = "open"

    def __init__(self):
        self.stats: list[dict] = []

    def on(self, event: str):
        return lambda handler: handler

    def send(self, text: str) -> None:
        message = json.loads(text)
        if message["type"] == "stats":
            self.stats.append(message)


async def send_processed(track: MediaStreamTrack) -> None:
    """Pull and encode the processed track as aiortc's sender does, until cancelled."""
    encoder, loop = Vp8Encoder(), asyncio.get_running_loop()
    while True:
        await loop.run_in_executor(None, encoder.encode, await track.recv())


async def serve_peers(peers: int, seconds: float, payloads: list[bytes]) -> dict:
    cfg = load_config(SERVE_CONFIG, SETTINGS)
    engines = PeerEngines(cfg.engine)
    sessions, channels, senders = [], [], []
    for index in range(peers):
        session = PeerSession(f"bench-peer-{index}", cfg, engines.for_peer())
        channel = StatsChannel()
        session.attach_channel(channel)
        senders.append(asyncio.create_task(send_processed(session.attach_track(ReceivedCamera(payloads)))))
        sessions.append(session)
        channels.append(channel)
    await asyncio.sleep(seconds + WARMUP_S)
    for task in senders:
        task.cancel()
    for session in sessions:
        await session.close()
    stats = [s for channel in channels for s in channel.stats[WARMUP_S:]]
    fps = [statistics.median(s["fps"] for s in channel.stats[WARMUP_S:]) for channel in channels]
    stages = {stage: round(statistics.median(s["stages_ms"][stage] for s in stats if stage in s["stages_ms"]), 2)
              for stage in ("engine", "stabilize", "composite")}
    return {"peers": peers, "fps_per_peer": [round(f, 1) for f in fps], "aggregate_fps": round(sum(fps), 1),
            "stages_ms": stages,
            "arrival_to_sent_ms": round(statistics.median(s["server_ms"] for s in stats
                                                          if s["server_ms"] is not None), 1),
            "stale_frames_dropped": [channel.stats[-1]["dropped"] for channel in channels]}


def measure(peers: int, seconds: float) -> dict:
    """One case in this process (run as a child, so each case gets its own OpenMP set-up)."""
    payloads = camera_payloads()
    asyncio.run(serve_peers(1, 2, payloads))  # the numba kernels load (or compile) on first use: not measured
    return asyncio.run(serve_peers(peers, seconds, payloads))


def child(wait: str, peers: int, seconds: float) -> dict:
    command = [sys.executable, __file__, "--child", str(peers), "--seconds", str(seconds)]
    result = subprocess.run(command, env=environment_with_openmp_wait(WAITS[wait]), capture_output=True, text=True,
                            check=True)
    return {"openmp_wait": wait, **json.loads(result.stdout)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--child", type=int, metavar="PEERS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.seconds)))
        return 0

    load_before = os.getloadavg()
    runs = [child(wait, n, args.seconds) for n in args.peers for wait in WAITS]
    load_after = os.getloadavg()
    by_case = {(r["openmp_wait"], r["peers"]): r for r in runs}
    report = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": {"cpu": cpu_model(), "logical_cores": os.cpu_count()},
        "versions": {"python": platform.python_version(), "aiortc": aiortc.__version__, "av": av.__version__,
                     "numpy": np.__version__, "numba": numba.__version__},
        "load_average_1m": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "note": ("CPU shared with other work during the run (1-minute load average before it above 0.5), so "
                 "figures are lower bounds" if load_before[0] > 0.5 else
                 "CPU idle before the run (the load average after it is this benchmark's own)"),
        "scene": {"width": WIDTH, "height": HEIGHT, "people": PEOPLE, "camera_fps": FPS, "settings": SETTINGS},
        "seconds_measured": args.seconds,
        "runs": runs,
        "aggregate_fps_vs_active": {wait: {str(n): round(by_case[wait, n]["aggregate_fps"]
                                                         / by_case["ACTIVE", n]["aggregate_fps"], 2)
                                           for n in args.peers}
                                    for wait in WAITS if wait != "ACTIVE"},
        "aggregate_fps_vs_one_peer": {str(n): round(by_case["livematte", n]["aggregate_fps"]
                                                    / by_case["livematte", args.peers[0]]["aggregate_fps"], 2)
                                      for n in args.peers},
    }
    path = write_report(report, args.out, "webrtc_cpu")
    for r in runs:
        print(f"OpenMP wait {r['openmp_wait']:<9} {r['peers']} peer(s): {r['fps_per_peer']} fps each "
              f"({r['aggregate_fps']} together), stages {r['stages_ms']} ms, "
              f"arrival to sent {r['arrival_to_sent_ms']} ms")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
