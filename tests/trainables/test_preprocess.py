"""The one image-decoding path shared by training and deploy: sizes, limits and refusals."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mritune.trainables.data.preprocess import MAX_PIXELS, ImageDecodeError, decode_image


def encoded(suffix: str, shape: tuple[int, int], value: int = 0) -> bytes:
    ok, buffer = cv2.imencode(suffix, np.full(shape, value, np.uint8))
    assert ok
    return buffer.tobytes()


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp"])
def test_images_decode_to_grayscale_uint8_of_the_requested_size(suffix):
    image = decode_image(encoded(suffix, (176, 208), 120), 64)
    assert image.shape == (64, 64) and image.dtype == np.uint8
    assert abs(int(image.mean()) - 120) <= 2


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp"])
def test_images_over_the_pixel_limit_are_refused(suffix):
    side = int(MAX_PIXELS**0.5) + 16
    with pytest.raises(ImageDecodeError, match="over the limit"):
        decode_image(encoded(suffix, (side, side)), 64)


def test_colour_arrays_and_bad_inputs():
    colour = np.zeros((40, 30, 3), np.uint8)
    colour[..., 2] = 255  # pure red in OpenCV's BGR order
    assert decode_image(colour, 16).shape == (16, 16)
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_image(b"", 16)
    with pytest.raises(ImageDecodeError, match="not an image"):
        decode_image(b"%PDF-1.4 not an image", 16)
    with pytest.raises(ImageDecodeError, match="truncated"):
        decode_image(encoded(".jpg", (64, 64), 90)[:-40], 16)
