"""The keyframe of an image-to-video request: the approved image fitted to the video's frame.

Amazon Nova Reel takes a starting keyframe of exactly the video's dimension (1280x720); the variations are
square. `fit_keyframe` scales a PNG to fit the frame (nearest neighbour) and centres it on a background of
the image's own top-left colour (the variations are drawn on a plain background), in pure Python: no image
library in the layer. Decoding is the costly part (~1-2 s for a 1024x1024 image in Lambda), paid once per
state-videos job. PNGs it does not handle (palette, 16-bit, interlaced) and JPEGs are passed through as
they are; so is an image that already has the frame's size.
"""

from __future__ import annotations

import logging
import zlib

from genjobs.media.png import UnsupportedImage, decode_png, encode_png, png_size

logger = logging.getLogger("genjobs.keyframe")


def fit_keyframe(image: bytes, width: int, height: int) -> bytes:
    """The image scaled to fit width x height and centred (RGB PNG); unsupported images unchanged."""
    if png_size(image) in (None, (width, height)):
        return image
    try:
        src_w, src_h, bpp, pixels = decode_png(image)
    except (UnsupportedImage, zlib.error) as exc:
        logger.warning("keyframe passed through unchanged: %s", exc)
        return image
    scale = min(width / src_w, height / src_h)
    fit_w, fit_h = max(1, round(src_w * scale)), max(1, round(src_h * scale))
    left, top = (width - fit_w) // 2, (height - fit_h) // 2
    # source byte offsets of the R, G, B of each output pixel of a row (grey repeats its one channel)
    xs = [min(src_w - 1, int((x + 0.5) / scale)) for x in range(fit_w)]
    channels = (0, 0, 0) if bpp == 1 else (0, 1, 2)
    picks = [x * bpp + c for x in xs for c in channels]
    background = bytes(pixels[c] for c in channels)
    blank_row = background * width
    pad_left, pad_right = background * left, background * (width - fit_w - left)
    src_stride = src_w * bpp
    rows = [blank_row] * top
    for y in range(fit_h):
        sy = min(src_h - 1, int((y + 0.5) / scale))
        source = pixels[sy * src_stride:(sy + 1) * src_stride]
        rows.append(pad_left + bytes(map(source.__getitem__, picks)) + pad_right)
    rows += [blank_row] * (height - top - fit_h)
    return encode_png(width, height, b"".join(rows))


# Luma Ray2's frame heights by resolution (model-parameters-luma.html: "540p", "720p")
_RESOLUTION_HEIGHTS = {"540p": 540, "720p": 720}


def video_frame(family: str, parameters: dict[str, object]) -> tuple[int, int]:
    """The frame the first keyframe is fitted to: Nova Reel's `dimension` (the keyframe must match it
    exactly); for Luma Ray2 the resolution's height at the aspect ratio (e.g. 720p 16:9 -> 1280x720), so the
    image is not cropped or stretched by the model."""
    if family == "luma_ray":
        height = _RESOLUTION_HEIGHTS.get(str(parameters.get("resolution", "720p")), 720)
        try:
            w_ratio, h_ratio = (int(p) for p in str(parameters.get("aspect_ratio", "16:9")).split(":"))
        except ValueError:
            w_ratio, h_ratio = 16, 9
        if w_ratio <= 0 or h_ratio <= 0:
            w_ratio, h_ratio = 16, 9
        width = round(height * w_ratio / h_ratio / 2) * 2  # even, as video frames are
        return width, height
    return frame_size(str(parameters["dimension"]) if parameters.get("dimension") else None)


def frame_size(dimension: str | None, default: tuple[int, int] = (1280, 720)) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        w, h = (int(part) for part in str(dimension).lower().split("x"))
    except ValueError:
        return default
    return (w, h) if w > 0 and h > 0 else default
