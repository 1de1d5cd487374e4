"""Every odd input either becomes 8-bit RGB or one clear ImageLoadError."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from iiie.errors import ImageLoadError
from iiie.imageio import load_image, to_rgb


def _png_bytes(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt)
    return buf.getvalue()


def test_rgba_is_composited_over_white(tmp_path):
    arr = np.zeros((16, 16, 4), np.uint8)
    arr[..., 0] = 200
    arr[..., 3] = 255
    arr[:8, :, 3] = 0  # top half fully transparent
    p = tmp_path / "a.png"
    Image.fromarray(arr, "RGBA").save(p)
    out = load_image(p)
    assert out.mode == "RGB" and out.size == (16, 16)
    got = np.asarray(out)
    assert (got[:8] == 255).all()  # transparent -> white background
    assert (got[8:, :, 0] == 200).all() and (got[8:, :, 1] == 0).all()


def test_16bit_grayscale_is_rescaled_not_clipped():
    g = np.full((12, 10), 65535 // 2, np.uint16)
    g[0, 0] = 65535
    out = load_image(_png_bytes(Image.fromarray(g)))
    arr = np.asarray(out)
    assert out.mode == "RGB" and arr.shape == (12, 10, 3)
    assert arr[0, 0, 0] == 255
    assert abs(int(arr[5, 5, 0]) - 127) <= 1  # mid-gray stays mid-gray (clipping would give 255)


def test_grayscale_and_palette_become_rgb():
    gray = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16), "L")
    assert load_image(_png_bytes(gray)).mode == "RGB"
    pal = gray.convert("P")
    assert load_image(_png_bytes(pal)).mode == "RGB"
    assert to_rgb(Image.new("CMYK", (9, 9))).mode == "RGB"


def test_truncated_and_garbage_files_raise_clear_errors(tmp_path):
    data = _png_bytes(Image.new("RGB", (64, 64), (10, 20, 30)))
    p = tmp_path / "cut.png"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="cut.png"):
        load_image(p)
    q = tmp_path / "junk.jpg"
    q.write_bytes(b"this is not an image")
    with pytest.raises(ImageLoadError, match="cannot read image"):
        load_image(q)
    with pytest.raises(ImageLoadError, match="no such image file"):
        load_image(tmp_path / "missing.png")


def test_tiny_and_huge_images_are_refused():
    with pytest.raises(ImageLoadError, match="at least"):
        load_image(_png_bytes(Image.new("RGB", (1, 1))))
    with pytest.raises(ImageLoadError, match="exceeds"):
        load_image(_png_bytes(Image.new("RGB", (300, 300))), max_pixels=300 * 299)


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (20, 10), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif)
    assert load_image(buf.getvalue()).size == (10, 20)
