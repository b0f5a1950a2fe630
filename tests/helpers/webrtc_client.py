"""An aiortc client for the server tests; runs inside the test's network namespace and prints JSON.

python -m tests.helpers.webrtc_client URL: sends the still synthetic scene as its camera, reads the
processed video back, selects a person, changes effects, uploads backgrounds (good and bad), tries
a second connection past the peer limit, leaves, and reports what it saw at each step. The test
asserts on the report; waits here end early once the expected picture shows, or time out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import traceback
from fractions import Fraction
from typing import Any, Callable

import aiohttp
import cv2
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from tests.helpers.fake_camera import near, sample, scene_points, still_frame

MAGENTA, GREEN, ORANGE = (255, 0, 255), (0, 255, 0), (0, 140, 255)  # BGR
WAIT_S = 30.0


class StillCamera(VideoStreamTrack):
    def __init__(self) -> None:
        super().__init__()
        self.image = still_frame()[0]

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self.image, format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        return frame


class Received:
    """The processed video: the newest picture and every frame's timestamp."""

    def __init__(self) -> None:
        self.image: np.ndarray | None = None
        self.pts: list[int] = []
        self.time_bases: set[Fraction] = set()

    async def read(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                self.image = frame.to_ndarray(format="bgr24")
                self.pts.append(frame.pts)
                self.time_bases.add(frame.time_base)
        except MediaStreamError:
            pass

    async def until(self, points, check: Callable[[dict[str, list]], bool]) -> dict[str, Any]:
        """Samples of the newest picture once `check` accepts them (or the last ones, after WAIT_S)."""
        deadline = time.monotonic() + WAIT_S
        samples: dict[str, Any] = {"people": [], "background": [], "waited_s": 0.0}
        start = time.monotonic()
        while time.monotonic() < deadline:
            if self.image is not None:
                samples = {"people": sample(self.image, points.people),
                           "background": sample(self.image, points.background)}
                if check(samples):
                    break
            await asyncio.sleep(0.1)
        samples["waited_s"] = round(time.monotonic() - start, 2)
        return samples


async def reply(replies: asyncio.Queue, kind: str) -> dict[str, Any] | None:
    """The next data-channel message of type `kind` (others, such as stats, are skipped)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            message = await asyncio.wait_for(replies.get(), deadline - time.monotonic())
        except asyncio.TimeoutError:
            return None
        if message["type"] == kind:
            return message
    return None


async def offer(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection) -> tuple[int, dict]:
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(f"{url}/offer", json={"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}) as r:
        return r.status, await r.json()


async def post(http: aiohttp.ClientSession, url: str, data: bytes) -> dict[str, Any]:
    try:
        async with http.post(url, data=data, headers={"Content-Type": "application/octet-stream"}) as r:
            return {"status": r.status, "body": await r.json()}
    except aiohttp.ClientError as exc:
        return {"status": None, "body": {"error": f"{type(exc).__name__}: {exc}"}}


async def server_status(http: aiohttp.ClientSession, url: str, check: Callable[[dict], bool]) -> dict | None:
    """/status once `check` accepts it (the server may still be starting), or None after WAIT_S."""
    deadline = time.monotonic() + WAIT_S * 2
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{url}/status") as r:
                status = await r.json()
                if check(status):
                    return status
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    return None


async def run(url: str, upload_limit: int, report: dict[str, Any]) -> None:
    """Fills `report` step by step, so a failing step still leaves what came before it."""
    points = scene_points()
    async with aiohttp.ClientSession() as http:
        report["status"] = await server_status(http, url, lambda s: True)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        channel = pc.createDataChannel("control")
        replies: asyncio.Queue = asyncio.Queue()
        channel.on("message", lambda text: replies.put_nowait(json.loads(text)))
        pc.addTrack(StillCamera())
        received = Received()
        reading: list[asyncio.Task] = []
        pc.on("track", lambda track: reading.append(asyncio.create_task(received.read(track))))
        status, answer = await offer(http, url, pc)
        report["offer_status"] = status
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        peer = answer["peer"]

        def keyed(s):
            return all(near(c, MAGENTA) for c in s["background"]) and not any(near(c, MAGENTA) for c in s["people"])

        report["first"] = await received.until(points, keyed)
        while not replies.empty():  # stats sent before the first picture arrived say nothing about it
            replies.get_nowait()
        report["stats"] = await reply(replies, "stats")

        second = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        second.addTrack(StillCamera())
        report["second_offer"] = dict(zip(("status", "body"), await offer(http, url, second)))
        await second.close()

        x, y = points.people[0]
        height, width = received.image.shape[:2]
        channel.send(json.dumps({"type": "select", "x": int(x * width), "y": int(y * height)}))
        report["selected"] = await reply(replies, "selected")
        track = report["selected"]["track"] if report["selected"] else None
        channel.send(json.dumps({"type": "effect", "track": track, "effect": "tint", "tint": "#00ff00", "strength": 1}))
        report["tinted"] = await reply(replies, "effect")
        channel.send(json.dumps({"type": "effect", "track": None, "effect": "hide"}))
        report["hidden"] = await reply(replies, "effect")
        channel.send(json.dumps({"type": "effect", "track": None, "background": "/etc/hostname"}))
        report["bad_message"] = await reply(replies, "error")
        report["effects"] = await received.until(
            points, lambda s: near(s["people"][0], GREEN) and near(s["people"][1], MAGENTA))

        background = f"{url}/peers/{peer}/background"
        png = cv2.imencode(".png", np.full((90, 160, 3), ORANGE, np.uint8))[1].tobytes()
        report["upload_text"] = await post(http, background, b"a text file, not an image\n")
        report["upload_oversize"] = await post(http, background, png + bytes(upload_limit))
        report["upload_unknown_peer"] = await post(http, f"{url}/peers/nobody/background", png)
        report["upload_bad_track"] = await post(http, f"{background}?track=%C2%B3", png)  # a superscript 3
        report["upload_image"] = await post(http, background, png)
        report["uploaded"] = await received.until(
            points, lambda s: all(near(c, ORANGE) for c in s["background"]) and near(s["people"][1], ORANGE))
        report["during"] = await server_status(http, url, lambda s: True)

        await pc.close()
        for task in reading:
            task.cancel()
        report["after_close"] = await server_status(http, url, lambda s: s["peers"] == 0)
    pts = np.array(received.pts, np.int64)
    report["frames"] = len(pts)
    report["pts_steps"] = sorted({int(d) for d in np.diff(pts) % 2**32})
    report["time_bases"] = sorted(str(tb) for tb in received.time_bases)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--upload-limit", type=int, required=True)
    args = parser.parse_args()
    report: dict[str, Any] = {}
    try:
        asyncio.run(run(args.url, args.upload_limit, report))
    except Exception:
        report["error"] = traceback.format_exc()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
