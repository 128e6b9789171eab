"""Image decoding shared by training data loading and deploy (predict, serve): one code path, not a copy.

As in the original project: OpenCV grayscale read, resize to ``image_size`` with INTER_AREA, kept as uint8.
Scaling to the model's range happens inside the models (a Rescaling layer), so a saved model takes these
uint8 arrays (as float) directly.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mritune.trainables.errors import UserInputError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
# A decoded image larger than this is refused before any resize: a guard for servers and odd files.
MAX_PIXELS = 4096 * 4096


class ImageDecodeError(UserInputError):
    """A file or payload that is not a decodable image; the message says why."""


def decode_image(source: str | Path | bytes | np.ndarray, image_size: int) -> np.ndarray:
    """Return a grayscale uint8 array of shape (image_size, image_size) from a path, encoded bytes or an array."""
    if isinstance(source, np.ndarray):
        gray = _array_to_gray(source)
    else:
        data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
        gray = decode_bytes(data)
    return resize(gray, image_size)


def decode_bytes(data: bytes) -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to a grayscale uint8 array at its own size."""
    if not data:
        raise ImageDecodeError("empty file")
    buffer = np.frombuffer(data, dtype=np.uint8)
    # Check the header's size before decoding the pixels, so a decompression bomb is refused cheaply.
    header_ok, _ = _peek_size(buffer)
    if not header_ok:
        raise ImageDecodeError("not an image OpenCV can decode (truncated, corrupt or not an image)")
    _check_complete(data)
    gray = cv2.imdecode(buffer, cv2.IMREAD_GRAYSCALE)
    if gray is None or gray.size == 0:
        raise ImageDecodeError("not an image OpenCV can decode (truncated, corrupt or not an image)")
    _check_pixels(*gray.shape)  # formats whose header was not read above (BMP, TIFF, WebP)
    return gray


def resize(gray: np.ndarray, image_size: int) -> np.ndarray:
    if gray.shape != (image_size, image_size):
        gray = cv2.resize(gray, (image_size, image_size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray, dtype=np.uint8)


def _array_to_gray(array: np.ndarray) -> np.ndarray:
    image = np.asarray(array)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] in (3, 4):
        image = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_BGR2GRAY if image.shape[-1] == 3 else cv2.COLOR_BGRA2GRAY)
    if image.ndim != 2 or image.size == 0:
        raise ImageDecodeError(f"array of shape {array.shape} is not a grayscale or colour image")
    if image.size > MAX_PIXELS:
        raise ImageDecodeError(f"image of {image.size} pixels is over the limit of {MAX_PIXELS}")
    if image.dtype != np.uint8:
        if not np.isfinite(image).all():
            raise ImageDecodeError("array holds NaN or inf values")
        image = np.clip(image, 0, 255).astype(np.uint8)
    return image


def _peek_size(buffer: np.ndarray) -> tuple[bool, tuple[int, int] | None]:
    """Cheap sanity check of an encoded image before full decoding: known magic and a size within MAX_PIXELS."""
    head = buffer[:32].tobytes()
    if head.startswith(b"\x89PNG") and len(head) >= 24:
        width = int.from_bytes(head[16:20], "big")
        height = int.from_bytes(head[20:24], "big")
        _check_pixels(height, width)
        return True, (height, width)
    if head.startswith(b"\xff\xd8"):
        size = _jpeg_size(buffer.tobytes())
        if size is not None:
            _check_pixels(*size)
        return True, size
    known = (b"BM", b"II*\x00", b"MM\x00*", b"RIFF")
    return head.startswith(known), None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's start-of-frame segment, or None when the markers cannot be followed."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2:position + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height = int.from_bytes(data[position + 5:position + 7], "big")
            width = int.from_bytes(data[position + 7:position + 9], "big")
            return height, width
        position += 2 + length
    return None


def _check_pixels(height: int, width: int) -> None:
    if height * width > MAX_PIXELS:
        raise ImageDecodeError(f"image of {width}x{height} pixels is over the limit of {MAX_PIXELS}")


def _check_complete(data: bytes) -> None:
    """Refuse a truncated JPEG or PNG: OpenCV half-decodes those (grey lower part) with only a stderr warning."""
    # Some writers pad files with zeros or a newline after the end marker; that is still a complete image.
    tail = data[-64:].rstrip(b"\x00\r\n ")
    if data.startswith(b"\xff\xd8") and not tail.endswith(b"\xff\xd9"):
        raise ImageDecodeError("truncated JPEG (no end-of-image marker)")
    if data.startswith(b"\x89PNG") and b"IEND" not in tail[-12:]:
        raise ImageDecodeError("truncated PNG (no IEND chunk)")
