"""Background images uploaded by a page: bounded in bytes, pixels and disk, decoded by OpenCV (so only real
images pass), scaled down to what a background needs and stored as JPEG in the peer's own folder.

A small compressed file can hold a huge picture (a 1 MB PNG of 20000 x 20000 pixels takes 1.2 GB once
decoded), so the pixel count is read from the header (Pillow opens lazily) before anything is decoded,
and large JPEGs are decoded at a reduced scale directly.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import cv2
import numpy as np
from aiohttp import web
from PIL import Image, UnidentifiedImageError

MAX_SIDE = 1920  # a background never needs more than a full-HD frame; bigger images only cost memory
CHUNK = 64 * 1024
JPEG_QUALITY = 95
REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}
NOT_AN_IMAGE = "the upload is not an image: send a PNG, JPEG, WebP or BMP file"


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


def image_size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image's header; 415 for what is no image, 413 above `max_pixels`."""
    def too_many(size: str) -> UploadError:
        return UploadError(413, f"the image is {size}, more than the server's limit of {max_pixels / 1e6:g} "
                                "megapixels (serve.upload_limit_pixels): send a smaller picture")

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own limit (about 179 megapixels) is passed
        raise too_many(f"over {Image.MAX_IMAGE_PIXELS * 2 / 1e6:.0f} megapixels") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError(415, NOT_AN_IMAGE) from None
    if width * height > max_pixels:
        raise too_many(f"{width} x {height} pixels ({width * height / 1e6:.0f} megapixels)")
    return width, height


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """uint8 BGR, at most MAX_SIDE pixels on its long side; nothing decoded above `max_pixels`."""
    width, height = image_size(data, max_pixels)
    reduction = 2 ** min(3, max(0, int(math.log2(max(width, height) / MAX_SIDE))))  # JPEGs decode this much smaller
    image = cv2.imdecode(np.frombuffer(data, np.uint8), REDUCED.get(reduction, cv2.IMREAD_COLOR))
    if image is None:
        raise UploadError(415, NOT_AN_IMAGE)
    scale = MAX_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return image


def encoded(image: np.ndarray) -> bytes:
    """The background as it is stored: a JPEG (a photo as PNG takes about ten times the space)."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise UploadError(415, NOT_AN_IMAGE)
    return data.tobytes()


def stored_bytes(folder: Path) -> int:
    try:
        return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    except FileNotFoundError:  # a peer that left meanwhile
        return 0


def check_quota(adding: int, folder: Path, folders: list[Path], per_peer: int, total: int) -> None:
    """507 when `adding` bytes would take a peer's folder above `per_peer` or all `folders` above `total`."""
    if stored_bytes(folder) + adding > per_peer:
        raise UploadError(507, f"this page's backgrounds would take more than {per_peer / 2**20:.0f} MiB "
                               "(serve.disk_limit_bytes_per_peer): reload the page to start afresh")
    if sum(stored_bytes(f) for f in folders) + adding > total:
        raise UploadError(507, f"the server's backgrounds would take more than {total / 2**20:.0f} MiB "
                               "(serve.disk_limit_bytes): try again when someone leaves")


def save_image(data: bytes, folder: Path, name: str) -> Path:
    path = folder / f"{name}.jpg"
    try:
        path.write_bytes(data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise UploadError(507, f"cannot store the background in {folder} ({exc.strerror}): "
                               "check the disk space of the temp folder") from None
    return path
