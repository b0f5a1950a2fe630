"""The WebRTC server's parts without a network: the newest-frame slot, the data-channel messages, uploads,
engine sharing, and peer sessions fed by a fake camera track (two at once, each with its own state)."""

from __future__ import annotations

import asyncio
import json
import time
from fractions import Fraction

import cv2
import numpy as np
import pytest

pytest.importorskip("aiortc", reason="the webrtc extra is not installed (pip install -e .[webrtc])")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402
from aiortc import MediaStreamTrack  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from av import VideoFrame  # noqa: E402

from livematte.config import ConfigError, PersonEffectConfig, load_config  # noqa: E402
from livematte.engine.batching import BatchingEngine  # noqa: E402
from livematte.engine.mediapipe_engine import MediaPipeEngine  # noqa: E402
from livematte.engine.torch_engine import TorchEngine  # noqa: E402
from livematte.model.e2ehim import E2EHIM  # noqa: E402
from livematte.webrtc import engines as engines_module  # noqa: E402
from livematte.webrtc.cli import SERVE_CONFIG  # noqa: E402
from livematte.webrtc.engines import PeerEngines  # noqa: E402
from livematte.webrtc.latest import Latest, LatestClosed  # noqa: E402
from livematte.webrtc.messages import ChangeEffect, MessageError, Select, parse_request  # noqa: E402
from livematte.webrtc.server import create_app  # noqa: E402
from livematte.webrtc.session import PeerSession  # noqa: E402
from livematte.webrtc.track import Output, ProcessedTrack  # noqa: E402
from livematte.webrtc.uploads import MAX_SIDE, UploadError, check_quota, decode_image, encoded  # noqa: E402
from pipelines.webrtc import servable  # noqa: E402
from tests.helpers.fake_camera import near, sample, scene_points, still_frame  # noqa: E402

MAGENTA, GREEN, ORANGE = (255, 0, 255), (0, 255, 0), (0, 140, 255)  # BGR
SETTINGS = ["engine.kind=keying", "engine.keying.mode=chroma", "effects.background.kind=color",
            "effects.background.color=#ff00ff", "effects.feather=0"]
WAIT_S = 30.0
PIXELS = 40_000_000  # serve.upload_limit_pixels


# --- the newest-frame slot ---------------------------------------------------------------------


def test_latest_hands_over_the_newest_item_and_counts_the_replaced():
    async def scenario():
        slot: Latest[int] = Latest()
        for item in (1, 2, 3):
            slot.put(item)
        newest = await slot.get()
        waiter = asyncio.create_task(slot.get())
        await asyncio.sleep(0)
        slot.put(4)
        later = await waiter
        slot.close()
        with pytest.raises(LatestClosed):
            await slot.get()
        return newest, later, slot.dropped

    assert asyncio.run(scenario()) == (3, 4, 2)


# --- messages ----------------------------------------------------------------------------------


def test_requests_are_validated():
    assert parse_request('{"type": "select", "x": 10, "y": 20}') == Select(type="select", x=10, y=20)
    change = parse_request('{"type": "effect", "track": 2, "effect": "tint", "tint": "#00ff00"}')
    assert isinstance(change, ChangeEffect) and change.track == 2
    for bad in ('{"type": "effect", "background": "/etc/passwd"}',  # no server paths from the page
                '{"type": "effect", "strength": 3}', '{"type": "dance"}', '{"type": "select", "x": -1, "y": 0}',
                "not json"):
        with pytest.raises(MessageError, match="unusable message"):
            parse_request(bad)


def test_effect_change_keeps_what_it_does_not_name(tmp_path):
    current = PersonEffectConfig(effect="blur", tint="#112233", strength=0.2, background=tmp_path / "own.png")
    changed = ChangeEffect(type="effect", track=1, effect="tint").apply_to(current)
    assert changed == PersonEffectConfig(effect="tint", tint="#112233", strength=0.2, background=tmp_path / "own.png")


# --- uploads, engines, config ------------------------------------------------------------------


def test_uploads_must_be_images_within_the_pixel_limit_and_are_scaled_to_a_background_size():
    with pytest.raises(UploadError, match="not an image") as refused:
        decode_image(b"GIF89a but not really", PIXELS)
    assert refused.value.status == 415
    big = cv2.imencode(".png", np.zeros((2000, 4000, 3), np.uint8))[1].tobytes()
    assert decode_image(big, PIXELS).shape == (MAX_SIDE // 2, MAX_SIDE, 3)
    with pytest.raises(UploadError, match="4000 x 2000 pixels.*serve.upload_limit_pixels") as refused:
        decode_image(big, 4000 * 2000 - 1)
    assert refused.value.status == 413
    photo = np.zeros((4000, 8000, 3), np.uint8)
    photo[:, ::2] = 255  # stripes: a JPEG decoded at reduced scale still averages them to grey
    reduced = decode_image(cv2.imencode(".jpg", photo)[1].tobytes(), PIXELS)
    assert reduced.shape == (MAX_SIDE // 2, MAX_SIDE, 3) and abs(float(reduced.mean()) - 127.5) < 3


def test_stored_backgrounds_are_held_to_a_quota_per_peer_and_in_all(tmp_path):
    mine, other = tmp_path / "mine", tmp_path / "other"
    for folder, size in ((mine, 600), (other, 300)):
        folder.mkdir()
        (folder / "background_1.jpg").write_bytes(b"x" * size)
    check_quota(400, mine, [mine, other], per_peer=1000, total=1300)  # 1000 and 1300: at the limits, accepted
    with pytest.raises(UploadError, match="disk_limit_bytes_per_peer") as refused:
        check_quota(401, mine, [mine, other], per_peer=1000, total=10_000)
    assert refused.value.status == 507
    with pytest.raises(UploadError, match="serve.disk_limit_bytes\\)"):
        check_quota(401, mine, [mine, other], per_peer=10_000, total=1300)
    check_quota(401, mine, [mine, tmp_path / "a peer that left"], per_peer=10_000, total=1300)


def test_each_peer_gets_its_own_learned_engine(models):
    engines = PeerEngines(load_config(SERVE_CONFIG).engine)  # no weights installed: the learned CPU engine
    first, second = engines.for_peer(), engines.for_peer()
    assert isinstance(first, MediaPipeEngine) and first is not second  # who is followed is per peer
    assert not engines.clean_plate  # nobody has to leave the picture first


def test_each_peer_gets_its_own_difference_keying_engine():
    engines = PeerEngines(load_config(SERVE_CONFIG, ["engine.kind=keying", "engine.keying.mode=difference"]).engine)
    assert engines.for_peer() is not engines.for_peer()
    assert engines.clean_plate  # a difference key's empty scene can be captured again from the page


def test_a_network_engine_is_one_batching_engine_shared_by_every_peer(monkeypatch):
    network = TorchEngine(E2EHIM(), device="cpu", input_size=(64, 64), warmup=False)
    monkeypatch.setattr(engines_module, "open_engine", lambda cfg: (network, "a network"))
    engines = PeerEngines(load_config(SERVE_CONFIG, ["engine.batch.max_batch=3"]).engine)
    first, second = engines.for_peer(), engines.for_peer()
    assert isinstance(first, BatchingEngine) and first is second and not engines.clean_plate
    assert first.max_batch == 3 and first.device == network.device  # peers upload their frames there
    first.infer([np.zeros((48, 64, 3), np.uint8)] * 2)
    assert engines.batches() == {"2": 1}
    engines.close()


def test_serve_config_defaults_to_loopback_and_refuses_what_webrtc_cannot_send():
    cfg = load_config(SERVE_CONFIG)
    assert (cfg.serve.host, cfg.serve.port, cfg.serve.ice_servers) == ("127.0.0.1", 8080, [])
    with pytest.raises(ConfigError, match="serve.bind: unknown key"):
        load_config(SERVE_CONFIG, ["serve.bind=0.0.0.0"])
    with pytest.raises(ConfigError, match="transparent"):
        servable(load_config(SERVE_CONFIG, ["effects.background.kind=transparent"]))
    assert servable(load_config(SERVE_CONFIG, ["effects.isolate=[1]"])).effects.isolate == []


# --- the HTTP side (loopback; no offer here gets as far as ICE) ----------------------------------


def test_server_serves_the_page_and_refuses_unusable_offers():
    async def scenario():
        cfg = load_config(SERVE_CONFIG, SETTINGS)
        async with TestClient(TestServer(create_app(cfg, PeerEngines(cfg.engine)), host="127.0.0.1")) as client:
            page, script = await client.get("/"), await client.get("/static/app.js")
            replies = [await client.post("/offer", data='{"sdp": "", "type": "offer"}',
                                         headers={"Content-Type": "text/plain"}),
                       await client.post("/offer", json={"sdp": "v=0", "type": "answer"}),
                       await client.post("/offer", json={"sdp": "v=0\r\ns=-\r\nt=0 0\r\n", "type": "offer"})]
            refusals = [(r.status, (await r.json())["error"]) for r in replies]
            status = await (await client.get("/status")).json()
            return page.status, await page.text(), script.status, refusals, status

    page_status, page, script_status, refusals, status = asyncio.run(scenario())
    assert page_status == 200 and 'id="processed"' in page and script_status == 200
    assert [code for code, _ in refusals] == [415, 400, 400]
    assert "application/json" in refusals[0][1] and "createOffer" in refusals[1][1] and "no video" in refusals[2][1]
    assert status["peers"] == 0 and status["max_peers"] == 4  # the refused offer left no peer behind


# --- the outgoing track ------------------------------------------------------------------------


def test_processed_track_sends_the_newest_frame_on_the_camera_timeline():
    async def scenario():
        outputs: Latest[Output] = Latest()
        sent: list[Output] = []
        track = ProcessedTrack(outputs, sent.append)
        images = [np.full((4, 6, 3), v, np.uint8) for v in (10, 20)]
        outputs.put(Output(images[0], 1.0, 0, 1))
        outputs.put(Output(images[1], 1 + 1 / 30, 0, 1))
        frame = await track.recv()
        outputs.close()
        with pytest.raises(MediaStreamError):
            await track.recv()
        return frame, sent, track.readyState

    frame, sent, state = asyncio.run(scenario())
    assert frame.pts == 93000 and frame.time_base == Fraction(1, 90000)
    assert np.array_equal(frame.to_ndarray(format="bgr24"), np.full((4, 6, 3), 20, np.uint8))
    assert len(sent) == 1 and state == "ended"


# --- peer sessions -----------------------------------------------------------------------------


class StillCamera(MediaStreamTrack):
    """The still two-person scene at 30 fps, as a browser's camera track arrives at the server."""

    kind = "video"

    def __init__(self):
        super().__init__()
        self.image = still_frame()[0]
        self.count = 0

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(1 / 30)
        frame = VideoFrame.from_ndarray(self.image, format="bgr24")
        frame.pts, frame.time_base = self.count * 3000, Fraction(1, 90000)
        self.count += 1
        return frame


class FakeChannel:
    """The server's end of the page's data channel: what the session registers and sends."""

    readyState = "open"

    def __init__(self):
        self.received: list[dict] = []
        self.handlers = {}

    def on(self, event: str):
        def register(handler):
            self.handlers[event] = handler
            return handler
        return register

    def send(self, text: str) -> None:
        self.received.append(json.loads(text))

    async def ask(self, request: dict) -> dict:
        """Send `request` as the page would and wait for the first reply that is not stats."""
        seen = len(self.received)
        self.handlers["message"](json.dumps(request))
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            replies = [m for m in self.received[seen:] if m["type"] != "stats"]
            if replies:
                return replies[0]
            await asyncio.sleep(0.02)
        raise TimeoutError(f"no reply to {request} within {WAIT_S} s")


class Peer:
    """A PeerSession wired to a fake camera and a fake data channel."""

    def __init__(self, *settings: str):
        cfg = load_config(SERVE_CONFIG, [*SETTINGS, *settings])
        self.session = PeerSession(f"test-{id(self)}", cfg, PeerEngines(cfg.engine).for_peer())
        self.channel = FakeChannel()
        self.session.attach_channel(self.channel)
        self.track = self.session.attach_track(StillCamera())
        self.points = scene_points()

    async def frame_where(self, check) -> tuple[dict[str, list], VideoFrame]:
        """Samples of the first processed frame that `check` accepts (or of the last one, after WAIT_S)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            frame = await asyncio.wait_for(self.track.recv(), WAIT_S)
            image = frame.to_ndarray(format="bgr24")
            samples = {"people": sample(image, self.points.people), "background": sample(image, self.points.background)}
            if check(samples) or time.monotonic() > deadline:
                return samples, frame


def keyed(samples) -> bool:
    """The screen keyed away and both people tracked and shown."""
    return (all(near(c, MAGENTA, 0) for c in samples["background"])
            and not any(near(c, MAGENTA) for c in samples["people"]))


def test_two_peers_keep_their_own_effects():
    async def scenario():
        one, two = Peer(), Peer()
        await one.frame_where(keyed)
        await two.frame_where(keyed)
        reply = await one.channel.ask({"type": "effect", "track": None, "effect": "hide"})
        hidden, _ = await one.frame_where(lambda s: all(near(c, MAGENTA, 0) for c in s["people"]))
        untouched, _ = await two.frame_where(keyed)
        for peer in (one, two):
            await peer.session.close()
        return reply, hidden, untouched

    reply, hidden, untouched = asyncio.run(scenario())
    assert reply == {"type": "effect", "track": None,
                     "state": {"effect": "hide", "tint": "#3070ff", "strength": 0.5, "own_background": False}}
    assert all(near(c, MAGENTA, 0) for c in hidden["people"])
    kept = sample(still_frame()[0], scene_points().people)
    assert all(near(c, k) for c, k in zip(untouched["people"], kept)), untouched


def test_a_person_gets_an_own_uploaded_background_and_the_folder_goes_with_the_peer():
    async def scenario():
        peer = Peer()
        first, frame = await peer.frame_where(keyed)
        x, y = peer.points.people[0]
        selected = await peer.channel.ask({"type": "select", "x": int(x * frame.width), "y": int(y * frame.height)})
        nobody = await peer.channel.ask({"type": "select", "x": 5, "y": 5})
        await peer.session.set_background(encoded(np.full((50, 80, 3), GREEN, np.uint8)), selected["track"])
        state = await peer.session.set_background(encoded(np.full((50, 80, 3), ORANGE, np.uint8)), selected["track"])
        files = sorted(p.name for p in peer.session.folder.iterdir())  # the replaced background is gone
        # the left part of the frame is nearest the left person and shows their background
        own, _ = await peer.frame_where(lambda s: near(s["background"][0], ORANGE, 2))
        plate = await peer.channel.ask({"type": "plate"})
        await peer.session.close()
        return first, frame, selected, nobody, state, files, own, plate, peer.session.folder

    first, frame, selected, nobody, state, files, own, plate, folder = asyncio.run(scenario())
    assert frame.time_base == Fraction(1, 90000) and frame.pts % 3000 == 0  # the camera's own timestamps
    assert selected["track"] is not None and selected["state"]["own_background"] is False
    assert nobody == {"type": "selected", "track": None, "state": None}
    assert state.own_background and files == ["background_2.jpg"]
    assert near(own["background"][0], ORANGE, 2) and near(own["background"][2], MAGENTA, 0), own  # stored as JPEG
    assert plate["type"] == "error" and "difference" in plate["message"]  # a chroma key has no empty scene
    assert not folder.exists()


def test_difference_keying_peers_can_capture_the_empty_scene_again():
    async def scenario():
        peer = Peer("engine.keying.mode=difference", "engine.keying.plate_frames=3")
        await peer.track.recv()
        reply = await peer.channel.ask({"type": "plate"})
        await peer.session.close()
        return reply

    assert asyncio.run(scenario()) == {"type": "plate", "frames": 3}
