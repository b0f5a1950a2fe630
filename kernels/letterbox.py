"""Letterbox geometry shared by pre-processing (frame -> network input) and its inverse."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Letterbox:
    """A frame of src size scaled by `scale` (aspect kept) and centred in an out-size canvas.

    The content occupies rows [top, top + content_h) and columns [left, left + content_w) of the
    network input; the rest is padding (zero after normalisation).
    """

    src_h: int
    src_w: int
    out_h: int
    out_w: int
    scale: float
    top: int
    left: int
    content_h: int
    content_w: int

    @classmethod
    def fit(cls, src_h: int, src_w: int, out_h: int, out_w: int) -> "Letterbox":
        if min(src_h, src_w, out_h, out_w) <= 0:
            raise ValueError(f"letterbox sizes must be positive, got source {src_w}x{src_h} and output {out_w}x{out_h}")
        scale = min(out_h / src_h, out_w / src_w)
        content_h = min(out_h, max(1, round(src_h * scale)))
        content_w = min(out_w, max(1, round(src_w * scale)))
        return cls(src_h, src_w, out_h, out_w, scale,
                   (out_h - content_h) // 2, (out_w - content_w) // 2, content_h, content_w)


def input_size_for(src_h: int, src_w: int, long_side: int = 640, multiple: int = 32) -> tuple[int, int]:
    """Network input (h, w) that follows the source aspect: the long side is `long_side`, the short
    side the multiple of `multiple` at or below the scaled size (1280x720 -> 352x640)."""
    if src_w >= src_h:
        short = max(multiple, int(long_side * src_h / src_w) // multiple * multiple)
        return short, long_side
    short = max(multiple, int(long_side * src_w / src_h) // multiple * multiple)
    return long_side, short
