"""Odd and hostile image files, generated, each with what the app must do with it.

``expect`` is None for files the app converts and analyses, or a piece of the message it must
give when it refuses them.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

RNG = np.random.default_rng(7)


@dataclass(frozen=True)
class Case:
    name: str
    suffix: str
    data: bytes
    expect: str | None  # None: analysed; otherwise part of the refusal message


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _photo(width: int = 320, height: int = 240, mode: str = "RGB") -> Image.Image:
    return Image.fromarray(RNG.integers(0, 255, (height, width, 3), dtype=np.uint8)).convert(mode)


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def exif_rotated(orientation: int) -> bytes:
    image = _photo(300, 200)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(image, "JPEG", exif=exif.tobytes())


def _animated_gif() -> bytes:
    frames = [_photo(128, 96).convert("P") for _ in range(3)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _sixteen_bit_png() -> bytes:
    values = (np.linspace(0, 65535, 200 * 160).reshape(160, 200)).astype(np.uint16)
    return _encode(Image.fromarray(values), "PNG")  # uint16 -> mode I;16


def _float_tiff_with_nan() -> bytes:
    values = RNG.normal(size=(120, 160)).astype(np.float32)
    values[10:20, 10:20] = np.nan
    values[30, 30] = 1e30
    return _encode(Image.fromarray(values), "TIFF")  # float32 -> mode F


def _palette_with_transparency() -> bytes:
    image = _photo(160, 120).convert("P")
    return _encode(image, "PNG", transparency=0)


def corpus() -> list[Case]:
    jpeg = _encode(_photo(), "JPEG")
    png = _encode(_photo(), "PNG")
    cases = [
        Case("not-an-image", ".jpg", b"this is plain text pretending to be a JPEG\n" * 20, "not an image"),
        Case("empty", ".png", b"", "empty"),
        Case("truncated-jpeg", ".jpg", jpeg[: len(jpeg) // 3], "truncated or corrupt"),
        Case("truncated-png", ".png", png[: len(png) // 3], "truncated or corrupt"),
        Case("decompression-bomb", ".png", _png_bomb(60_000, 60_000), "too large"),
        Case("one-pixel", ".png", _encode(_photo(1, 1), "PNG"), "at least 32"),
        Case("under-32", ".png", _encode(_photo(31, 200), "PNG"), "at least 32"),
        Case("extreme-aspect", ".png", _encode(_photo(20000, 32, "L"), "PNG"), "more than 8:1"),
        Case("sixteen-bit", ".png", _sixteen_bit_png(), None),
        Case("greyscale", ".png", _encode(_photo(mode="L"), "PNG"), None),
        Case("cmyk", ".jpg", _encode(_photo(mode="CMYK"), "JPEG"), None),
        Case("rgba", ".png", _encode(_photo(mode="RGBA"), "PNG"), None),
        Case("palette-transparency", ".png", _palette_with_transparency(), None),
        Case("animated-gif", ".gif", _animated_gif(), None),
        Case("float-tiff-nan", ".tiff", _float_tiff_with_nan(), None),
        Case("webp", ".webp", _encode(_photo(), "WEBP"), None),
        Case("bmp", ".bmp", _encode(_photo(), "BMP"), None),
        Case("exactly-32", ".png", _encode(_photo(32, 32), "PNG"), None),
        Case("eight-to-one", ".png", _encode(_photo(512, 64), "PNG"), None),
    ]
    cases += [Case(f"exif-orientation-{o}", ".jpg", exif_rotated(o), None) for o in range(2, 9)]
    return cases
