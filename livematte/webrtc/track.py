"""The video track a peer receives: always the newest processed frame, on the camera's own timeline."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from livematte.webrtc.latest import Latest, LatestClosed

TIME_BASE = Fraction(1, 90000)  # the RTP clock of video


@dataclass(frozen=True)
class Output:
    """One processed frame, ready to leave."""

    image: np.ndarray  # uint8 BGR
    seconds: float  # presentation time on the peer's timeline (from the camera frame's timestamp)
    arrived_ns: int  # time.monotonic_ns() when its camera frame reached the server
    people: int


class ProcessedTrack(MediaStreamTrack):
    """aiortc's sender pulls frames with recv(); frames it was too slow for were already replaced."""

    kind = "video"

    def __init__(self, outputs: Latest[Output], on_sent: Callable[[Output], None]):
        super().__init__()
        self._outputs = outputs
        self._on_sent = on_sent

    async def recv(self) -> VideoFrame:
        try:
            out = await self._outputs.get()
        except LatestClosed:
            self.stop()
            raise MediaStreamError from None
        frame = VideoFrame.from_ndarray(out.image, format="bgr24")
        frame.pts = round(out.seconds / TIME_BASE)
        frame.time_base = TIME_BASE
        self._on_sent(out)
        return frame
