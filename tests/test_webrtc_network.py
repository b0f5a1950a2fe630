"""`livematte serve` end to end, over real WebRTC: an aiortc client and headless Chromium.

Everything that touches the network runs inside a network namespace made for the test (see
tests/helpers/netns.py): the server, the clients and the browser talk over loopback and a private
veth pair, and nothing else is reachable. The helpers print JSON reports; the assertions are here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from tests.helpers.fake_camera import near, sample, scene_points, still_frame, write_y4m
from tests.helpers.netns import Namespace, network_namespace

pytest.importorskip("aiortc", reason="the webrtc extra is not installed (pip install -e .[webrtc])")

REPO = Path(__file__).resolve().parents[1]
MAGENTA, GREEN, ORANGE = (255, 0, 255), (0, 255, 0), (0, 140, 255)  # BGR
UPLOAD_LIMIT = 64 * 1024
URL = "http://127.0.0.1:8080"  # the server's default address, inside the namespace
SETTINGS = [  # the still two-person green-screen scene keyed onto magenta; one browser at a time
    "engine.kind=keying", "engine.keying.mode=chroma", "effects.background.kind=color",
    "effects.background.color=#ff00ff", "effects.feather=0", "serve.max_peers=1",
    f"serve.upload_limit_bytes={UPLOAD_LIMIT}", "serve.stats_interval_s=0.5",
]


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    with network_namespace() as ns:
        yield ns


@contextmanager
def served(ns: Namespace, tmp_path: Path, settings: list[str] = SETTINGS) -> Iterator[Path]:
    """`livematte serve` inside the namespace until the block ends; yields the server's temp folder,
    which must be empty again once every peer has left. Stopped with Ctrl-C, as a user would."""
    temp = tmp_path / "server-tmp"
    temp.mkdir()
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "livematte.cli", "serve", *(f"--set={s}" for s in settings)]
    server = subprocess.Popen(ns.command(*command), cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "TMPDIR": str(temp)})
    try:
        yield temp
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    assert server.returncode == 0, (tmp_path / "server.log").read_text()


def helper(ns: Namespace, module: str, *args: str) -> dict:
    result = subprocess.run(ns.command(sys.executable, "-m", f"tests.helpers.{module}", URL, *args), cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout)
    assert "error" not in report, report["error"] + json.dumps(report)
    return report


def kept_colours() -> list[list[int]]:
    """What the people look like when kept as filmed (the still scene at their points)."""
    return sample(still_frame()[0], scene_points().people)


def test_aiortc_client_gets_processed_video_and_controls_it(namespace, tmp_path):
    with served(namespace, tmp_path) as server_temp:
        report = helper(namespace, "webrtc_client", "--upload-limit", str(UPLOAD_LIMIT))
    assert report["status"]["peers"] == 0 and report["offer_status"] == 200

    first = report["first"]  # green screen keyed away onto magenta, people kept as filmed
    assert all(near(c, MAGENTA) for c in first["background"]), first
    assert all(near(c, kept) for c, kept in zip(first["people"], kept_colours())), first

    stats = report["stats"]
    assert stats["frames"] > 0 and stats["width"] == 640 and stats["height"] == 360
    assert set(stats["stages_ms"]) == {"engine", "stabilize", "composite"}

    second = report["second_offer"]
    assert second["status"] == 503 and "at most 1 browser" in second["body"]["error"]

    selected = report["selected"]  # a click on the left person names their track and effect
    assert selected["track"] is not None and selected["state"]["effect"] == "keep"
    assert report["tinted"]["track"] == selected["track"] and report["tinted"]["state"]["tint"] == "#00ff00"
    assert report["hidden"]["track"] is None and report["hidden"]["state"]["effect"] == "hide"
    assert "background" in report["bad_message"]["message"]  # messages cannot name server files
    effects = report["effects"]
    assert near(effects["people"][0], GREEN) and near(effects["people"][1], MAGENTA), effects

    assert report["upload_text"]["status"] == 415 and "not an image" in report["upload_text"]["body"]["error"]
    assert report["upload_oversize"]["status"] == 413 and "limit" in report["upload_oversize"]["body"]["error"]
    assert report["upload_unknown_peer"]["status"] == 404
    assert report["upload_bad_track"]["status"] == 400 and "whole number" in report["upload_bad_track"]["body"]["error"]
    assert report["upload_image"]["status"] == 200
    uploaded = report["uploaded"]  # the image behind everyone, the hidden person included; the tint stays
    assert all(near(c, ORANGE) for c in uploaded["background"]), uploaded
    assert near(uploaded["people"][1], ORANGE) and near(uploaded["people"][0], GREEN), uploaded

    # the camera's timing carried through: steps of whole 30 fps frame periods (aiortc's encoders round
    # each timestamp by a tick), in the RTP video clock
    assert report["frames"] > 5 and report["time_bases"] == ["1/90000"]
    assert all(min(step % 3000, -step % 3000) <= 2 and step >= 2998 for step in report["pts_steps"]), \
        report["pts_steps"]

    assert report["during"]["peers"] == 1 and report["after_close"]["peers"] == 0
    assert list(server_temp.iterdir()) == []  # the peer's upload folder is gone


@pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                    reason="Debian's chromium and chromium-driver are not installed (scripts/apt-test-packages.txt)")
def test_browser_demo_page(namespace, tmp_path):
    pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")
    camera = write_y4m(tmp_path / "camera.y4m")
    background = tmp_path / "orange.png"
    cv2.imwrite(str(background), np.full((90, 160, 3), ORANGE, np.uint8))
    with served(namespace, tmp_path) as server_temp:
        report = helper(namespace, "browser_client", "--camera", str(camera), "--background", str(background))

    first = report["first"]  # the page connected and shows the processed video
    assert all(near(c, MAGENTA) for c in first["background"]), first
    assert all(near(c, kept) for c, kept in zip(first["people"], kept_colours())), first

    assert report["selected"] and report["selection_text"] == f"Person {report['selected']}"
    effects = report["effects"]  # the clicked person tinted green, everyone else hidden
    assert near(effects["people"][0], GREEN) and near(effects["people"][1], MAGENTA), effects
    uploaded = report["uploaded"]
    assert all(near(c, ORANGE) for c in uploaded["background"]) and near(uploaded["people"][0], GREEN), uploaded
    assert report["upload_message"].startswith("Background set for everyone")
    stats = report["stats"]  # live figures from the server's stats messages and the browser's WebRTC statistics
    assert float(stats["server fps"]) > 0 and float(stats["glass-to-glass ms (estimate)"]) > 0, stats
    assert {"engine ms", "tracking + fusion ms", "compositing ms"} <= set(stats), stats

    assert report["peers_connected"] == 1
    assert "server is busy" in report["busy_message"]
    assert "unreachable" in report["unreachable_message"]
    assert report["peers_after_close"] == 0  # closing the page freed its peer
    assert report["denied_message"].startswith("Camera access was denied") and report["peers_when_denied"] == 0
    assert list(server_temp.iterdir()) == []


GROUP = (640, 438)  # group1.jpg as the camera: four people sitting shoulder to shoulder
GROUP_FACES = [(450, 475), (788, 563), (1120, 562), (1550, 600)]  # in the photo's 1920x1315 pixels
GROUP_BACKGROUND = [(1000, 150), (1800, 150), (60, 560)]  # sky, sky, trees


def test_browser_demo_page_mattes_real_people_one_by_one(namespace, tmp_path, shared_media, models):
    """serve.yaml as shipped (the learned engine, no empty room): a click on one of four people sitting
    shoulder to shoulder selects that person alone, and hiding them leaves the other three."""
    pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")
    photo = cv2.imread(str(shared_media / "group1.jpg"))
    camera = write_y4m(tmp_path / "group.y4m", image=cv2.resize(photo, GROUP, interpolation=cv2.INTER_AREA))
    points = tmp_path / "points.json"
    height, width = photo.shape[:2]
    points.write_text(json.dumps({"people": [(x / width, y / height) for x, y in GROUP_FACES],
                                  "background": [(x / width, y / height) for x, y in GROUP_BACKGROUND]}))
    screenshot = tmp_path / "page.png"
    settings = ["effects.background.kind=color", "effects.background.color=#ff00ff", "effects.feather=0"]
    with served(namespace, tmp_path, settings):
        report = helper(namespace, "browser_people", "--camera", str(camera), "--points", str(points),
                        "--screenshot", str(screenshot))
    first = report["first"]  # the four people on the keyed background
    assert all(near(c, MAGENTA) for c in first["background"]) and not any(near(c, MAGENTA) for c in first["people"])
    assert report["selection_text"] == f"Person {report['selected']}", report
    hidden = report["hidden"]  # the first face is gone, the other three stay
    assert near(hidden["people"][0], MAGENTA) and not any(near(c, MAGENTA) for c in hidden["people"][1:]), hidden
    assert screenshot.stat().st_size > 10_000


class PlayingVideo:
    """Stands in for the WebDriver of tests.helpers.browser_client: each script run finds the next picture
    of the processed video (the last one stays), as on a live page between two script runs."""

    def __init__(self, *pictures: np.ndarray):
        self.pictures = list(pictures)

    def execute_script(self, script: str, groups: dict[str, list]) -> dict[str, list]:
        picture = self.pictures.pop(0) if len(self.pictures) > 1 else self.pictures[0]
        return {name: sample(picture, points) for name, points in groups.items()}


def test_browser_samples_people_and_background_from_one_picture():
    """Chromium paints a starting <video> all black for a moment before its first frame. A sample that drew
    the video twice took the people from that black and the background from the next picture (the server's
    first frame: the keyed background, nobody confirmed yet), and passed black people as the processed video."""
    pytest.importorskip("selenium", reason="selenium is not installed (the dev extra)")
    from tests.helpers.browser_client import grab, shows_processed_video, wait

    image, alphas = still_frame()
    keyed = np.full_like(image, MAGENTA)
    processed = np.where(alphas.max(axis=0)[..., None] > 0.5, image, keyed)
    video = PlayingVideo(np.zeros_like(image), keyed, processed)
    first, _ = wait(lambda: grab(video, scene_points()), shows_processed_video)
    assert all(near(c, MAGENTA) for c in first["background"]), first
    assert all(near(c, kept) for c, kept in zip(first["people"], kept_colours())), first


# --- hostile input (tests/helpers/hostile_client.py) ---------------------------------------------

HOSTILE = [*SETTINGS, "serve.connect_timeout_s=2"]


def test_malformed_and_mutated_offers_are_refused_and_leave_nothing_behind(namespace, tmp_path):
    """The offers that once got a 500 and kept their slot (one slot here: a leak locks out the next), and
    seeded random mutations of a real aiortc offer: every answer is 4xx or 200, and nothing stays."""
    from tests.helpers.hostile_client import CORPUS

    with served(namespace, tmp_path, HOSTILE) as server_temp:
        report = helper(namespace, "hostile_client", "fuzz", "--mutations", "150", "--seed", "7")
        left = list(server_temp.iterdir())
    statuses = report["statuses"]
    assert len(statuses) == len(CORPUS) + 150 + 5
    assert {n: c for n, c in statuses.items() if not (c == 200 or 400 <= c < 500)} == {}, report["errors"]
    issue_cases = ["setup bogus", "no setup", "rtpmap without clock rate", "m-line without formats",
                   "m-line port not a number", "duplicate mids"]
    assert [statuses[name] for name in issue_cases] == [400] * 6, report["errors"]
    assert all("cannot use this offer" in report["errors"][name] for name in issue_cases)
    assert sum(c == 200 for c in statuses.values()) >= 10  # the mutations reach past validation, into aiortc
    assert report["status"]["peers"] == 0 and report["status"]["freed"]["bad_offer"] >= 6
    assert left == []  # no peer folder left behind
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_peers_that_never_connect_give_their_slots_back(namespace, tmp_path):
    """Offers that never connect hold every slot until serve.connect_timeout_s; a peer still waiting when
    the server stops is closed quietly, its folder removed."""
    with served(namespace, tmp_path, [*HOSTILE, "serve.max_peers=2"]) as server_temp:
        report = helper(namespace, "hostile_client", "slots", "--peers", "2")
    assert report["held"] == [200, 200] and report["busy"] == 503 and report["full"]["peers"] == 2
    assert report["freed"]["peers"] == 0 and report["freed"]["freed"]["timed_out"] == 2, report
    assert report["again"] == 200 and report["status"]["peers"] == 1
    assert list(server_temp.iterdir()) == [] and "Traceback" not in (tmp_path / "server.log").read_text()


def test_a_decompression_bomb_is_refused_before_it_is_decoded(namespace, tmp_path):
    """A 1 MB PNG declaring 20000 x 20000 pixels (1.2 GB decoded) under the byte limit: 413 from its header,
    and the server's memory stays where it was."""
    psutil = pytest.importorskip("psutil")
    settings = [*HOSTILE, f"serve.upload_limit_bytes={8 * 2**20}"]
    with served(namespace, tmp_path, settings):
        (server,) = [p for p in psutil.Process().children(recursive=True) if "serve" in p.cmdline()]
        helper(namespace, "hostile_client", "ready")
        before = server.memory_info().rss  # up and idle
        rss = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                rss.append(server.memory_info().rss)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            report = helper(namespace, "hostile_client", "bomb")
        finally:
            done.set()
            sampler.join()
    assert report["offer"] == 200 and report["bytes"] < 8 * 2**20
    assert report["upload"]["status"] == 413 and "upload_limit_pixels" in report["upload"]["body"]["error"]
    assert max(rss) - before < 100 * 2**20, (before, max(rss))
    assert report["status"]["peers"] == 0


def test_serve_names_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "livematte.cli", "serve", "--set", "engine.kind=keying",
                                 "--set", f"serve.port={port}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"cannot listen on http://127.0.0.1:{port}" in " ".join(result.stderr.split())
