"""A small PNG codec in pure Python (no image library in the layer): the header's size, decoding 8-bit
greyscale/RGB/RGBA non-interlaced images, encoding RGB. Used for keyframes (genjobs.media.keyframe) and by
the local runner's image drawing."""

from __future__ import annotations

import struct
import zlib


class UnsupportedImage(ValueError):
    pass


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 6: 4}  # greyscale, RGB, RGBA (8 bits per channel)


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


