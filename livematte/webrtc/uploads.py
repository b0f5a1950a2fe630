"""Background images uploaded by a page: size-limited, decoded by OpenCV (so only real images pass),
scaled down to what a background needs and saved as PNG in the peer's own folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from aiohttp import web

MAX_SIDE = 1920  # a background never needs more than a full-HD frame; bigger images only cost memory
CHUNK = 64 * 1024


class UploadError(Exception):
    """An upload that is refused: `status` is the HTTP status, the message says what to send instead."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    too_big = UploadError(413, f"the upload is larger than the server's limit of {limit} bytes "
                               f"({limit / 2**20:.1f} MiB): send a smaller image (serve.upload_limit_bytes)")
    if request.content_length is not None and request.content_length > limit:
        raise too_big
    data = bytearray()
    async for chunk in request.content.iter_chunked(CHUNK):
        data += chunk
        if len(data) > limit:
            raise too_big
    if not data:
        raise UploadError(400, "the upload is empty: send the image file as the request body")
    return bytes(data)


def decode_image(data: bytes) -> np.ndarray:
    """uint8 BGR, at most MAX_SIDE pixels on its long side."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise UploadError(415, "the upload is not an image: send a PNG, JPEG, WebP or BMP file")
    scale = MAX_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def save_image(image: np.ndarray, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    if not cv2.imwrite(str(path), image):
        raise UploadError(500, f"cannot write the background to {folder}: check the disk space of the temp folder")
    return path
