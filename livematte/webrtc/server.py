"""The demo server: the page, the offer/answer exchange, background uploads and the registry of peers.

Every peer is one browser: its RTCPeerConnection and its PeerSession. A peer is freed, and its slot
given back, when its connection closes or fails or when the page says goodbye (a beacon on leaving).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from pydantic import ValidationError

from livematte.config import Config, Strict
from livematte.webrtc.engines import PeerEngines
from livematte.webrtc.session import PeerSession
from livematte.webrtc.uploads import UploadError, decode_image, read_limited

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
OFFER_LIMIT = 256 * 1024  # an SDP offer is a few kB; uploads are streamed with their own limit
PERSON_ID = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit also takes "³", which int() refuses


class Offer(Strict):
    sdp: str
    type: Literal["offer"]


@dataclass
class Peer:
    pc: RTCPeerConnection
    session: PeerSession
    closing: bool = False


def refuse(status: int, message: str) -> web.Response:
    """Errors are JSON with a sentence the page shows as it is."""
    return web.json_response({"error": message}, status=status)


class DemoServer:
    def __init__(self, cfg: Config, engines: PeerEngines):
        self.cfg = cfg
        self.engines = engines
        self.peers: dict[str, Peer] = {}

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def status(self, request: web.Request) -> web.Response:
        serve = self.cfg.serve
        return web.json_response({"peers": len(self.peers), "max_peers": serve.max_peers,
                                  "engine": self.engines.description, "clean_plate": self.engines.clean_plate,
                                  "ice_servers": serve.ice_servers, "upload_limit_bytes": serve.upload_limit_bytes})

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
                await self.close_peer(peer_id)

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type=offer.type))
            if not any(t.kind == "video" for t in pc.getTransceivers()):
                raise ValueError("it sends no video: the page must add its camera track before creating the offer")
            await pc.setLocalDescription(await pc.createAnswer())
        except (ValueError, InvalidAccessError, InvalidStateError, OperationError) as exc:
            await self.close_peer(peer_id)
            return refuse(400, f"cannot use this offer: {exc}")
        log.info("peer %s joined (%d of %d)", peer_id[:8], len(self.peers), limit)
        return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "peer": peer_id})

    async def background(self, request: web.Request) -> web.Response:
        """POST /peers/{peer}/background[?track=ID]: the body is the image file."""
        peer = self.peers.get(request.match_info["peer"])
        if peer is None:
            return refuse(404, "unknown peer: uploads belong to a connected page; reload the page")
        track = request.query.get("track")
        if track is not None and not PERSON_ID.fullmatch(track):
            return refuse(400, f"track must be a person's id (a whole number), got {track!r}")
        try:
            data = await read_limited(request, self.cfg.serve.upload_limit_bytes)
            image = await asyncio.get_running_loop().run_in_executor(None, decode_image, data)
            state = await peer.session.set_background(image, None if track is None else int(track))
        except UploadError as exc:
            return refuse(exc.status, str(exc))
        return web.json_response({"track": None if track is None else int(track),
                                  "state": None if state is None else state.model_dump(),
                                  "width": image.shape[1], "height": image.shape[0]})

    async def leave(self, request: web.Request) -> web.Response:
        """The page's goodbye (navigator.sendBeacon on pagehide): free the peer now, not at ICE timeout."""
        await self.close_peer(request.match_info["peer"])
        return web.json_response({"peers": len(self.peers)})

    async def close_peer(self, peer_id: str) -> None:
        peer = self.peers.get(peer_id)
        if peer is None or peer.closing:
            return
        peer.closing = True
        await peer.pc.close()
        await peer.session.close()
        del self.peers[peer_id]
        log.info("peer %s left (%d of %d)", peer_id[:8], len(self.peers), self.cfg.serve.max_peers)

    async def shutdown(self, app: web.Application) -> None:
        await asyncio.gather(*(self.close_peer(peer_id) for peer_id in list(self.peers)))


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
    app.on_shutdown.append(server.shutdown)
    return app
