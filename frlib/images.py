"""Image decoding and face cropping: any image file → clean RGB uint8 arrays."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Refuse images beyond this many pixels (a 50,000 x 50,000 PNG would need 7.5 GB decoded).
MAX_PIXELS = 64_000_000


class ImageError(ValueError):
    """An input that is not a usable image; the message names it and says why."""


ImageInput = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray


def _open(data: bytes | str | os.PathLike, name: str) -> Image.Image:
    source = io.BytesIO(bytes(data)) if isinstance(data, bytes | bytearray | memoryview) else data
    try:
        image = Image.open(source)
    except FileNotFoundError as exc:
        raise ImageError(f"{name}: file not found") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image (or a format Pillow cannot read)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{name}: beyond the {MAX_PIXELS:,}-pixel limit (a decompression bomb?); resize it first"
        ) from exc
    except OSError as exc:
        raise ImageError(f"{name}: truncated or corrupt image ({exc})") from exc
    width, height = image.size
    if width * height > MAX_PIXELS or width <= 0 or height <= 0:
        image.close()
        raise ImageError(
            f"{name}: {width}x{height} pixels is beyond the {MAX_PIXELS:,}-pixel limit "
            "(a decompression bomb or a huge scan); resize it first"
        )
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """First frame, EXIF orientation applied, palette/alpha/CMYK/greyscale converted to RGB."""
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_image(source: ImageInput, name: str | None = None) -> np.ndarray:
    """Decode a path, bytes, PIL image or array into an HxWx3 uint8 RGB array.

    Raises:
        ImageError: not an image, truncated, too large, or an array of the wrong shape.
    """
    name = name or (str(source) if isinstance(source, str | os.PathLike) else type(source).__name__)
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name)
    if isinstance(source, Image.Image):
        image = source
    else:
        image = _open(source if not isinstance(source, Path) else str(source), name)
    try:
        image.load()
        return np.asarray(to_rgb(image), dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: refused as a decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, struct.error) as exc:
        # Pillow's decoders raise all of these on corrupt data (e.g. SyntaxError: broken PNG).
        raise ImageError(f"{name}: truncated or corrupt image data ({exc})") from exc


def _array_to_rgb(array: np.ndarray, name: str) -> np.ndarray:
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(f"{name}: expected an HxW, HxWx3 or HxWx4 array, got {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    array = array[..., :3]
    if array.dtype != np.uint8:
        scale = 255.0 if array.max(initial=0) <= 1.0 else 1.0
        array = np.clip(array.astype(np.float32) * scale, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def crop_box(
    shape: tuple[int, ...], box: tuple[float, float, float, float], margin: float
) -> tuple[int, int, int, int]:
    """Pixel square (x0, y0, x1, y1) around a normalised box grown by `margin` per side.

    Square so that resizing never distorts the face; it may reach past the image's edges
    (crop_face pads there), and is at least one pixel wide.
    """
    height, width = shape[:2]
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * margin)
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    side = max(int(round(side)), 1)
    return left, top, left + side, top + side


def crop_face(
    image: np.ndarray, box: tuple[float, float, float, float] | None, size: int, margin: float = 0.2
) -> np.ndarray:
    """Crop the face in normalised `box` (None: the whole image) and resize to size x size.

    Where the square crop reaches past the image, the edge pixels are repeated.
    """
    if box is not None:
        left, top, right, bottom = crop_box(image.shape, box, margin)
        height, width = image.shape[:2]
        cl, ct = min(max(left, 0), width - 1), min(max(top, 0), height - 1)
        cr, cb = max(min(right, width), cl + 1), max(min(bottom, height), ct + 1)
        crop = image[ct:cb, cl:cr]
        pad = ((ct - top, bottom - cb), (cl - left, right - cr), (0, 0))
        pad = tuple((max(a, 0), max(b, 0)) for a, b in pad)
        image = np.pad(crop, pad, mode="edge") if any(map(any, pad)) else crop
    return resize(image, size)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Square-resize an RGB array with a good antialiasing filter."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    pil = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(pil, dtype=np.uint8)
