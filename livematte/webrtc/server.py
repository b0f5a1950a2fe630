"""The demo server: the page, the offer/answer exchange, background uploads and the registry of peers.

Every peer is one browser: its RTCPeerConnection and its PeerSession. A peer exists only while it is
alive: it is freed, and its slot given back, when its connection closes or fails, when the page says
goodbye (a beacon on leaving), when it has not connected `serve.connect_timeout_s` after its answer,
and at once when its offer cannot be used (aiortc raises many kinds of errors on a malformed SDP:
every one is the offer's fault, answered 400). /status counts why peers were freed, for operators.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from pydantic import ValidationError

from livematte.config import Config, Strict
from livematte.webrtc.engines import PeerEngines
from livematte.webrtc.session import PeerSession
from livematte.webrtc.uploads import UploadError, check_quota, decode_image, encoded, read_limited

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
OFFER_LIMIT = 256 * 1024  # an SDP offer is a few kB; uploads are streamed with their own limit
PERSON_ID = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit also takes "³", which int() refuses
Reason = Literal["closed", "failed", "timed_out", "bad_offer"]  # why a peer was freed
REASONS: tuple[Reason, ...] = ("closed", "failed", "timed_out", "bad_offer")


class Offer(Strict):
    sdp: str
    type: Literal["offer"]


@dataclass
class Peer:
    pc: RTCPeerConnection
    session: PeerSession
    deadline: asyncio.Task | None = None  # closes the peer unless it has connected by serve.connect_timeout_s
    uploading: bool = False  # one upload decodes at a time per peer
    closing: bool = False


def refuse(status: int, message: str) -> web.Response:
    """Errors are JSON with a sentence the page shows as it is."""
    return web.json_response({"error": message}, status=status)


class DemoServer:
    def __init__(self, cfg: Config, engines: PeerEngines):
        self.cfg = cfg
        self.engines = engines
        self.peers: dict[str, Peer] = {}
        self.freed: Counter[Reason] = Counter({reason: 0 for reason in REASONS})
        self._decodes = asyncio.Semaphore(cfg.serve.upload_decodes)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def status(self, request: web.Request) -> web.Response:
        serve = self.cfg.serve
        return web.json_response({"peers": len(self.peers), "max_peers": serve.max_peers, "freed": self.freed,
                                  "connect_timeout_s": serve.connect_timeout_s,
                                  "engine": self.engines.description, "clean_plate": self.engines.clean_plate,
                                  "ice_servers": serve.ice_servers, "upload_limit_bytes": serve.upload_limit_bytes,
                                  "upload_limit_pixels": serve.upload_limit_pixels,
                                  "batches": self.engines.batches()})

    async def offer(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":  # other sites' pages cannot send JSON here without CORS
            return refuse(415, "send the offer as application/json")
        try:
            offer = Offer.model_validate_json(await request.read())
        except ValidationError:
            return refuse(400, "expected JSON {sdp, type: \"offer\"} from RTCPeerConnection.createOffer()")
        limit = self.cfg.serve.max_peers
        if len(self.peers) >= limit:  # no await between this check and the registration below
            return refuse(503, f"the server is busy: it serves at most {limit} browser{'s' * (limit > 1)} at once "
                               "(serve.max_peers); try again when someone leaves")
        peer_id = secrets.token_urlsafe(16)
        pc = RTCPeerConnection(RTCConfiguration(
            iceServers=[RTCIceServer(urls=url) for url in self.cfg.serve.ice_servers]))
        session = PeerSession(peer_id, self.cfg, self.engines.for_peer())
        self.peers[peer_id] = Peer(pc, session)
        pc.on("datachannel", session.attach_channel)

        @pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":
                pc.addTrack(session.attach_track(track))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.close_peer(peer_id, pc.connectionState)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
            if not any(t.kind == "video" for t in pc.getTransceivers()):
                raise ValueError("it sends no video: the page must add its camera track before creating the offer")
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # whatever aiortc raises on it, the offer is at fault; the peer must not stay
            await self.close_peer(peer_id, "bad_offer")
            log.info("refused an offer: %s: %s", type(exc).__name__, exc)
            return refuse(400, f"cannot use this offer: {_described(exc)}")
        peer = self.peers.get(peer_id)
        if peer is None:  # its connection failed while the answer was made
            return refuse(400, "cannot use this offer: the connection failed while it was answered")
        peer.deadline = asyncio.create_task(self._connected_in_time(peer_id, pc))
        log.info("peer %s joined (%d of %d)", peer_id[:8], len(self.peers), limit)
        return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "peer": peer_id})

    async def _connected_in_time(self, peer_id: str, pc: RTCPeerConnection) -> None:
        await asyncio.sleep(self.cfg.serve.connect_timeout_s)
        if pc.connectionState != "connected":
            log.info("peer %s did not connect within %g s (serve.connect_timeout_s)", peer_id[:8],
                     self.cfg.serve.connect_timeout_s)
            await self.close_peer(peer_id, "timed_out")

    async def background(self, request: web.Request) -> web.Response:
        """POST /peers/{peer}/background[?track=ID]: the body is the image file."""
        peer = self.peers.get(request.match_info["peer"])
        if peer is None:
            return refuse(404, "unknown peer: uploads belong to a connected page; reload the page")
        track = request.query.get("track")
        if track is not None and not PERSON_ID.fullmatch(track):
            return refuse(400, f"track must be a person's id (a whole number), got {track!r}")
        if peer.uploading:
            return refuse(429, "an upload of this page is still being read: send one image at a time")
        serve = self.cfg.serve
        peer.uploading = True
        try:
            data = await read_limited(request, serve.upload_limit_bytes)
            async with self._decodes:
                image = await asyncio.get_running_loop().run_in_executor(None, decode_image, data,
                                                                         serve.upload_limit_pixels)
                stored = await asyncio.get_running_loop().run_in_executor(None, encoded, image)
            check_quota(len(stored), peer.session.folder, [p.session.folder for p in self.peers.values()],
                        serve.disk_limit_bytes_per_peer, serve.disk_limit_bytes)
            state = await peer.session.set_background(stored, None if track is None else int(track))
        except UploadError as exc:
            return refuse(exc.status, str(exc))
        finally:
            peer.uploading = False
        return web.json_response({"track": None if track is None else int(track),
                                  "state": None if state is None else state.model_dump(),
                                  "width": image.shape[1], "height": image.shape[0]})

    async def leave(self, request: web.Request) -> web.Response:
        """The page's goodbye (navigator.sendBeacon on pagehide): free the peer now, not at ICE timeout."""
        await self.close_peer(request.match_info["peer"], "closed")
        return web.json_response({"peers": len(self.peers)})

    async def close_peer(self, peer_id: str, reason: Reason) -> None:
        """Free the peer whatever state its connection is in: its slot, its worker, its folder."""
        peer = self.peers.get(peer_id)
        if peer is None or peer.closing:
            return
        peer.closing = True
        if peer.deadline is not None and peer.deadline is not asyncio.current_task():
            peer.deadline.cancel()
        try:
            await peer.pc.close()
        except Exception as exc:  # a connection that never came up can fail to close; the peer goes regardless
            log.info("peer %s: closing its connection: %s: %s", peer_id[:8], type(exc).__name__, exc)
        finally:
            await peer.session.close()
            del self.peers[peer_id]
            self.freed[reason] += 1
        log.info("peer %s freed: %s (%d of %d)", peer_id[:8], reason, len(self.peers), self.cfg.serve.max_peers)

    async def startup(self, app: web.Application) -> None:
        """aiortc connects a peer in a task of its own, which fails on some offers that it accepted (no DTLS
        fingerprint: an AssertionError) and nobody awaits: one line instead of asyncio's traceback; the
        peer is freed when its connection fails or times out."""
        loop = asyncio.get_running_loop()
        default = loop.get_exception_handler()

        def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
            task = context.get("future")
            if isinstance(task, asyncio.Task) and task.get_coro().__qualname__.startswith("RTCPeerConnection."):
                log.info("a peer's connection stopped: %r", context.get("exception"))
            elif default is not None:
                default(loop, context)
            else:
                loop.default_exception_handler(context)

        loop.set_exception_handler(handle)

    async def shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(self.close_peer(peer_id, "closed") for peer_id in list(self.peers)))


def _described(exc: Exception) -> str:
    """A sentence for the page: a ValueError's message; for any other error, that the SDP does not parse,
    and aiortc's error (its KeyError('setup') alone would read 'setup')."""
    if isinstance(exc, ValueError):
        return str(exc)
    return f"its SDP does not parse ({type(exc).__name__}{': ' if str(exc) else ''}{str(exc)[:200]})"


def create_app(cfg: Config, engines: PeerEngines) -> web.Application:
    server = DemoServer(cfg, engines)
    app = web.Application(client_max_size=OFFER_LIMIT)
    app.add_routes([
        web.get("/", server.index),
        web.get("/status", server.status),
        web.post("/offer", server.offer),
        web.post("/peers/{peer}/background", server.background),
        web.post("/peers/{peer}/leave", server.leave),
        web.static("/static", STATIC),
    ])
    app.on_startup.append(server.startup)
    app.on_shutdown.append(server.shutdown)
    return app
