"""Turning whatever a user hands us into an RGB image the model can take, or a clear refusal.

Accepted: anything Pillow decodes (PNG, JPEG, GIF, WebP, TIFF, BMP, ...). Converted: EXIF
rotation applied; 16-bit and float images rescaled to 8 bits; CMYK, greyscale and palette images
to RGB; transparency composited on white; animations reduced to their first frame. Refused, with
a message saying why: empty or non-image files, truncated files, decompression bombs, images over
the host's pixel limit (40 megapixels unless set otherwise), images under 32 pixels a side, and
shapes longer than 8:1.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from viewer.errors import UserError
from viewer.limits import PIXEL_CEILING, Limits

MAX_PIXELS = Limits.max_pixels
MIN_SIDE = 32
MAX_ASPECT = 8.0
# Pillow's own bomb guard, for whatever else decodes an image in this process; ours is checked on
# the header, before any decoder allocates.
Image.MAX_IMAGE_PIXELS = PIXEL_CEILING


class ImageRejected(UserError):
    """An image we cannot use; the message is meant for the person who gave it."""


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, EXIF-upright
    notes: list[str] = field(default_factory=list)  # conversions made, for the page
    name: str = "image"  # the file's name, which exported figures carry


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}


def images_in(folder: Path) -> list[Path]:
    """Every image file below ``folder``, by its name's suffix, in sorted order."""
    return sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def open_image(source: str | Path | bytes, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode ``source`` (a path or the file's bytes) into an upright RGB image of at most ``max_pixels``."""
    data = source if isinstance(source, bytes) else _read(Path(source))
    if not data:
        raise ImageRejected("The file is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_pixels(image.size, max_pixels)
            notes = _first_frame(image)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"The image is too large to analyse safely (over {max_pixels:,} pixels).") from None
    except UnidentifiedImageError:
        raise ImageRejected("This file is not an image that can be read (try PNG, JPEG, WebP, GIF, TIFF or BMP).") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageRejected(f"The image file is truncated or corrupt ({error}).") from None
    orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    if orientation in TURNING_ORIENTATIONS:
        image = ImageOps.exif_transpose(image)
        notes.append("rotated upright as its EXIF orientation asks")
    elif orientation != 1:
        notes.append(f"its EXIF orientation ({orientation}) is not one of the valid 1-8, so it is shown as stored")
    rgb, conversion = _to_rgb(image)
    if conversion:
        notes.append(conversion)
    _check_shape(rgb.size)
    return LoadedImage(rgb, notes, "image" if isinstance(source, bytes) else Path(source).name)


EXIF_ORIENTATION = 0x0112
TURNING_ORIENTATIONS = range(2, 9)  # 1 is upright; the EXIF standard defines no other value


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ImageRejected(f"The file could not be read ({error.strerror}).") from None


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageRejected(f"The image is {width}×{height} = {width * height:,} pixels; "
                            f"this server's limit is {max_pixels:,}. Please downscale it.")


def _check_shape(size: tuple[int, int]) -> None:
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise ImageRejected(f"The image is {width}×{height} pixels; the model needs at least "
                            f"{MIN_SIDE} pixels on each side.")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageRejected(f"The image is {width}×{height} pixels, more than {MAX_ASPECT:.0f}:1; "
                            "crop it to a less extreme shape first.")


def _first_frame(image: Image.Image) -> list[str]:
    frames = getattr(image, "n_frames", 1)
    if frames > 1:
        image.seek(0)
        return [f"animated image: the first of its {frames} frames is used"]
    return []


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """RGB version of ``image`` and a note on what was converted (None when nothing was)."""
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _rescale_to_rgb(np.asarray(image, dtype=np.float64)), f"{mode} image rescaled to 8 bits"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), "transparency shown on white"
    return image.convert("RGB"), f"{mode} image converted to RGB"


def _rescale_to_rgb(values: np.ndarray) -> Image.Image:
    finite = np.isfinite(values)
    if not finite.any():
        raise ImageRejected("The image holds no finite pixel values.")
    low, high = values[finite].min(), values[finite].max()
    scaled = np.where(finite, values, low)
    scaled = (scaled - low) / (high - low) if high > low else np.zeros_like(scaled)
    grey = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    return Image.fromarray(grey, mode="L").convert("RGB")
