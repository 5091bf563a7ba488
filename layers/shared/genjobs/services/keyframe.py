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
import struct
import zlib

logger = logging.getLogger("genjobs.keyframe")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 6: 4}  # greyscale, RGB, RGBA (8 bits per channel)


class UnsupportedImage(ValueError):
    pass


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, or None when the data is not a PNG."""
    if not data.startswith(PNG_SIGNATURE) or len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, line: bytearray, prev: bytearray, bpp: int) -> bytearray:
    """Undo one row's PNG filter (None, Sub, Up, Average, Paeth), given the previous decoded row."""
    stride = len(line)
    if kind == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:
        line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
    elif kind == 3:
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:
        for i in range(stride):
            if i >= bpp:
                line[i] = (line[i] + _paeth(line[i - bpp], prev[i], prev[i - bpp])) & 0xFF
            else:
                line[i] = (line[i] + prev[i]) & 0xFF
    elif kind != 0:
        raise UnsupportedImage(f"unknown PNG filter {kind}")
    return line


def decode_png(data: bytes) -> tuple[int, int, int, bytearray]:
    """(width, height, channels, pixel bytes row by row) of an 8-bit, non-interlaced grey/RGB/RGBA PNG."""
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR":
        raise UnsupportedImage("not a PNG")
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or color not in _CHANNELS or interlace != 0:
        raise UnsupportedImage(f"PNG with bit depth {depth}, colour type {color}, interlace {interlace}")
    bpp = _CHANNELS[color]
    stride = width * bpp
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    if len(raw) < height * (stride + 1):
        raise UnsupportedImage("truncated PNG data")
    pixels = bytearray(height * stride)
    prev = bytearray(stride)
    pos = 0
    for y in range(height):
        line = _unfilter(raw[pos], bytearray(raw[pos + 1:pos + 1 + stride]), prev, bpp)
        pos += stride + 1
        pixels[y * stride:(y + 1) * stride] = line
        prev = line
    return width, height, bpp, pixels


def encode_png(width: int, height: int, rgb: bytes | bytearray) -> bytes:
    stride = width * 3
    raw = b"".join(b"\x00" + bytes(rgb[y * stride:(y + 1) * stride]) for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


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


def frame_size(dimension: str | None, default: tuple[int, int] = (1280, 720)) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        w, h = (int(part) for part in str(dimension).lower().split("x"))
    except ValueError:
        return default
    return (w, h) if w > 0 and h > 0 else default
