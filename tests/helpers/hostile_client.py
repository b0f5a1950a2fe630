"""A hostile client for the server tests; runs inside the test's network namespace and prints JSON.

python -m tests.helpers.hostile_client URL MODE:
- fuzz [--mutations N] [--seed S]: a corpus of malformed offers (each one an SDP aiortc once answered with
  HTTP 500) and N seeded random mutations of a real aiortc offer, each POSTed in turn; a peer that is
  answered leaves at once. Reports every status and /status afterwards.
- slots --peers K: K valid offers that never connect (their answers are dropped), one more (refused:
  busy), then, once /status shows the slots freed by serve.connect_timeout_s, another (answered, and
  left for the server's shutdown to close).
- bomb: a valid offer, then an upload of a 1 MB PNG that declares 20000 x 20000 pixels.
- ready: /status once the server answers.
Every mode first waits for the server to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import time
import zlib

import aiohttp
from aiortc import RTCPeerConnection, VideoStreamTrack

from tests.helpers.webrtc_client import server_status

WAIT_S = 60.0
BOMB_SIDE = 20000
# (name, what is done to the offer's lines); every one of these once made the server answer 500
CORPUS = {
    "setup bogus": lambda lines: [("a=setup:bogus" if line.startswith("a=setup:") else line) for line in lines],
    "no setup": lambda lines: [line for line in lines if not line.startswith("a=setup:")],
    "rtpmap without clock rate": lambda lines: [(line.rsplit("/", 1)[0] if line.startswith("a=rtpmap:") else line)
                                                for line in lines],
    "m-line without formats": lambda lines: [(" ".join(line.split()[:3]) if line.startswith("m=") else line)
                                             for line in lines],
    "m-line port not a number": lambda lines: [(" ".join([line.split()[0], "nine", *line.split()[2:]])
                                                if line.startswith("m=") else line) for line in lines],
    "duplicate mids": lambda lines: lines + [line for line in lines if line.startswith("m=") or
                                             line.startswith("a=mid:")],
    "no fingerprint": lambda lines: [line for line in lines if not line.startswith("a=fingerprint:")],
    "fingerprint garbage": lambda lines: [("a=fingerprint:sha-256 ZZ" if line.startswith("a=fingerprint:") else line)
                                          for line in lines],
    "no ice credentials": lambda lines: [line for line in lines if not line.startswith(("a=ice-ufrag", "a=ice-pwd"))],
    "candidate garbage": lambda lines: lines + ["a=candidate:1 1 udp notanumber 999.1.1.1 -5 typ host"],
    "bundle of unknown mid": lambda lines: [("a=group:BUNDLE 7 8" if line.startswith("a=group:") else line)
                                            for line in lines],
    "rtcp-fb garbage": lambda lines: lines + ["a=rtcp-fb:* nack pli extra tokens here"],
    "fmtp garbage": lambda lines: lines + ["a=fmtp:97 apt=notapt;;;=="],
    "extmap garbage": lambda lines: lines + ["a=extmap:x urn:nothing"],
    "ssrc garbage": lambda lines: lines + ["a=ssrc:abc cname:x", "a=ssrc-group:FID 1"],
    "direction inactive": lambda lines: [("a=inactive" if line in ("a=sendrecv", "a=sendonly") else line)
                                         for line in lines],
    "application only": lambda lines: ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
                                       "m=application 9 DTLS/SCTP 5000", "c=IN IP4 0.0.0.0", "a=mid:0"],
    "audio only": lambda lines: ["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "m=audio 9 UDP/TLS/RTP/SAVPF 0",
                                 "c=IN IP4 0.0.0.0", "a=mid:0", "a=rtpmap:0 PCMU/8000", "a=setup:actpass"],
    "only a version": lambda lines: ["v=0"],
    "empty": lambda lines: [],
    "huge line": lambda lines: lines + ["a=" + "x" * 100_000],
    "nul bytes": lambda lines: [line.replace("a=", "a=\x00", 1) for line in lines],
    "lf only": lambda lines: ["\n".join(lines)],
}
WEIRD_TOKENS = ["", "bogus", "-1", "0", "99999999999999999999", "ÿ", "\u00b3", "a" * 300, "IN", "/", ":", "97"]
WEIRD_LINES = ["a=setup:bogus", "a=rtpmap:97 VP8", "m=video 9 UDP/TLS/RTP/SAVPF", "m=video x RTP/AVP 96",
               "a=mid:0", "a=fingerprint:sha-256", "a=ice-ufrag:", "a=candidate:garbage", "c=IN IP4 999.1.1.1",
               "a=msid:", "a=rtcp:abc", "b=AS:-5", "a=sctp-port:x", "a=max-message-size:-1", "a=ice-options:"]


def mutated(lines: list[str], rng: random.Random) -> list[str]:
    """One to three random edits of an offer's lines."""
    out = list(lines)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(6)
        i = rng.randrange(len(out)) if out else 0
        if kind == 0 and out:
            del out[i]
        elif kind == 1 and out:
            out.insert(i, out[i])
        elif kind == 2 and len(out) > 1:
            j = rng.randrange(len(out))
            out[i], out[j] = out[j], out[i]
        elif kind == 3 and out:
            tokens = out[i].split(" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(WEIRD_TOKENS)
            out[i] = " ".join(tokens)
        elif kind == 4:
            out.insert(i, rng.choice(WEIRD_LINES))
        elif out:
            text = "\r\n".join(out)
            cut = rng.randrange(len(text))
            out = text[:cut].split("\r\n") if rng.random() < 0.5 else \
                (text[:cut] + chr(rng.randrange(32, 127)) + text[cut + 1:]).split("\r\n")
    return out


async def real_offer() -> list[str]:
    """The lines of an offer as aiortc's browser-like client makes it (camera track, data channel)."""
    pc = RTCPeerConnection()
    pc.addTrack(VideoStreamTrack())
    pc.createDataChannel("control")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return [line for line in sdp.split("\r\n") if line]


async def post_offer(http: aiohttp.ClientSession, url: str, body) -> tuple[int, dict]:
    kwargs = {"json": body} if not isinstance(body, bytes) else {"data": body,
                                                                 "headers": {"Content-Type": "application/json"}}
    async with http.post(f"{url}/offer", **kwargs) as response:
        try:
            payload = await response.json(content_type=None)
        except (json.JSONDecodeError, aiohttp.ContentTypeError):
            payload = {"text": (await response.text())[:200]}
        return response.status, payload


async def status(http: aiohttp.ClientSession, url: str) -> dict:
    async with http.get(f"{url}/status") as response:
        return await response.json()


async def ready(url: str) -> dict:
    async with aiohttp.ClientSession() as http:
        return await server_status(http, url, lambda s: True) or {"error": "the server did not answer"}


async def fuzz(url: str, mutations: int, seed: int) -> dict:
    await ready(url)
    lines = await real_offer()
    rng = random.Random(seed)
    cases = {name: "\r\n".join(edit(lines)) + "\r\n" for name, edit in CORPUS.items()}
    cases.update({f"mutation {k}": "\r\n".join(mutated(lines, rng)) + "\r\n" for k in range(mutations)})
    bodies: dict[str, object] = {name: {"sdp": sdp, "type": "offer"} for name, sdp in cases.items()}
    bodies.update({"not json": b"{sdp", "a list": [1, 2], "sdp a number": {"sdp": 5, "type": "offer"},
                   "an answer": {"sdp": cases["no setup"], "type": "answer"},
                   "an extra key": {"sdp": "v=0", "type": "offer", "peer": "x"}})
    statuses: dict[str, int] = {}
    errors: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        for name, body in bodies.items():
            code, payload = await post_offer(http, url, body)
            statuses[name] = code
            if "peer" in payload:  # answered: leave at once, as a closed page does
                async with http.post(f"{url}/peers/{payload['peer']}/leave"):
                    pass
            elif code != 200:
                errors[name] = str(payload.get("error", payload))[:200]
        return {"statuses": statuses, "errors": errors, "status": await status(http, url)}


async def until_free(http: aiohttp.ClientSession, url: str) -> tuple[dict, float]:
    start = time.monotonic()
    while time.monotonic() - start < WAIT_S:
        now = await status(http, url)
        if now["peers"] == 0:
            break
        await asyncio.sleep(0.25)
    return now, round(time.monotonic() - start, 2)


async def slots(url: str, peers: int) -> dict:
    await ready(url)
    offer = {"sdp": "\r\n".join(await real_offer()) + "\r\n", "type": "offer"}
    async with aiohttp.ClientSession() as http:
        held = [(await post_offer(http, url, offer))[0] for _ in range(peers)]
        busy, _ = await post_offer(http, url, offer)
        full = await status(http, url)
        freed, waited = await until_free(http, url)
        again, _ = await post_offer(http, url, offer)  # held when the server stops
        return {"held": held, "busy": busy, "full": full, "freed": freed, "waited_s": waited, "again": again,
                "status": await status(http, url)}


def bomb_png(side: int) -> bytes:
    """A valid PNG of side x side black pixels, compressed row by row (never held whole)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row, parts = zlib.compressobj(9), b"\x00" * (1 + 3 * side), []
    for _ in range(side):
        parts.append(compressor.compress(row))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


async def bomb(url: str) -> dict:
    await ready(url)
    offer = {"sdp": "\r\n".join(await real_offer()) + "\r\n", "type": "offer"}
    data = bomb_png(BOMB_SIDE)
    async with aiohttp.ClientSession() as http:
        code, payload = await post_offer(http, url, offer)
        async with http.post(f"{url}/peers/{payload['peer']}/background", data=data) as response:
            upload = {"status": response.status, "body": await response.json(content_type=None)}
        async with http.post(f"{url}/peers/{payload['peer']}/leave"):
            pass
        return {"offer": code, "bytes": len(data), "upload": upload, "status": await status(http, url)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("mode", choices=["fuzz", "slots", "bomb", "ready"])
    parser.add_argument("--mutations", type=int, default=150)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peers", type=int, default=2)
    args = parser.parse_args()
    work = {"fuzz": lambda: fuzz(args.url, args.mutations, args.seed), "slots": lambda: slots(args.url, args.peers),
            "bomb": lambda: bomb(args.url), "ready": lambda: ready(args.url)}[args.mode]
    print(json.dumps(asyncio.run(work())))


if __name__ == "__main__":
    main()
