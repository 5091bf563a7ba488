"""The keyframe fitter: a pure-Python PNG decoder (every filter type) and the fit into the video frame."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from genjobs.media.keyframe import fit_keyframe, frame_size
from genjobs.media.png import PNG_SIGNATURE, decode_png, png_size

from local_runner.media import render_png

COLOR_TYPE = {1: 0, 3: 2, 4: 6}


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def encode(width: int, height: int, pixels: bytes, bpp: int) -> bytes:
    """A PNG whose rows cycle through the five filter types (so decoding exercises each)."""
    stride, out, prev = width * bpp, bytearray(), bytes(width * bpp)
    for y in range(height):
        line, kind = pixels[y * stride:(y + 1) * stride], y % 5
        out.append(kind)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            out.append((line[i] - (0, a, b, (a + b) >> 1, _paeth(a, b, c))[kind]) & 0xFF)
        prev = line

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPE[bpp], 0, 0, 0)
    return PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(out))) + chunk(b"IEND", b"")


@pytest.mark.parametrize("bpp", [1, 3, 4])
def test_decoding_undoes_every_filter_type(bpp: int) -> None:
    # Given random pixels encoded with all five PNG filters
    rng = random.Random(bpp)
    pixels = bytes(rng.getrandbits(8) for _ in range(17 * 11 * bpp))
    # When decoded, Then the pixels come back exactly
    assert decode_png(encode(17, 11, pixels, bpp)) == (17, 11, bpp, bytearray(pixels))


def test_a_square_image_is_scaled_and_centred_on_its_background() -> None:
    # Given a 100x100 image: background colour in the corner, a red centre
    pixels = bytearray(b"\x10\x20\x30" * 100 * 100)
    for y in range(40, 60):
        for x in range(40, 60):
            pixels[(y * 100 + x) * 3:(y * 100 + x) * 3 + 3] = b"\xff\x00\x00"
    # When fitted to 1280x720
    keyframe = fit_keyframe(encode(100, 100, bytes(pixels), 3), 1280, 720)
    # Then it is a 1280x720 PNG: the image fills the height in the middle, the sides are background
    width, height, bpp, out = decode_png(keyframe)
    assert (width, height, bpp) == (1280, 720, 3)

    def at(x: int, y: int) -> bytes:
        return bytes(out[(y * width + x) * 3:(y * width + x) * 3 + 3])

    assert at(640, 360) == b"\xff\x00\x00" and at(5, 360) == at(1275, 10) == b"\x10\x20\x30"
    assert at(640 - 360 + 5, 5) == b"\x10\x20\x30"


def test_rgba_and_grey_images_become_rgb_keyframes() -> None:
    grey = encode(8, 8, bytes(range(64)), 1)
    rgba = encode(8, 8, b"\x01\x02\x03\xff" * 64, 4)
    assert decode_png(fit_keyframe(grey, 32, 18))[2] == 3
    assert decode_png(fit_keyframe(rgba, 32, 18))[3][:3] == b"\x01\x02\x03"


def test_images_it_cannot_or_need_not_fit_pass_through() -> None:
    right_size = render_png(1, 16)
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 20
    sixteen_bit = bytearray(encode(2, 2, b"\x00" * 12, 3))
    sixteen_bit[24] = 16  # bit depth in IHDR (the CRC no longer matters: chunks are read, not verified)
    assert fit_keyframe(right_size, 16, 16) is right_size
    assert fit_keyframe(jpeg, 1280, 720) is jpeg
    assert fit_keyframe(bytes(sixteen_bit), 1280, 720) == bytes(sixteen_bit)
    assert png_size(right_size) == (16, 16) and png_size(jpeg) is None


def test_frame_size() -> None:
    assert frame_size("1280x720") == (1280, 720)
    assert frame_size(None) == frame_size("bad") == frame_size("0x5") == (1280, 720)
