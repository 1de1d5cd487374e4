"""Image preprocessing for the VLM: qwen-vl-utils' resize rules, then a base64 data URL.

The server would resize the image anyway; doing it here with the same rules (both sides
multiples of ``2 * patch_size``, pixel count within ``[min_pixels, max_pixels]``, aspect
kept) means the client knows the exact grid the model sees. That is what turns a
Qwen2.5-VL box (absolute pixels of its input) back into original-image pixels. vLLM's
processor leaves an image that already satisfies the rules unchanged.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from PIL import Image

#: ``fetch_image`` in qwen-vl-utils merges 2x2 patches into one token.
SPATIAL_MERGE_SIZE = 2


@dataclass(frozen=True)
class PreparedImage:
    """What is sent: the data URL, the size the model sees, and the original size."""

    data_url: str
    size: tuple[int, int]
    original_size: tuple[int, int]


def resized_size(
    size: tuple[int, int], min_pixels: int, max_pixels: int, patch_size: int = 14
) -> tuple[int, int]:
    """``(width, height)`` after qwen-vl-utils' ``smart_resize``.

    Raises ``ValueError`` for images it rejects (aspect ratio above 200).
    """
    from qwen_vl_utils.vision_process import smart_resize  # imports torch: keep it lazy

    if min_pixels > max_pixels:
        raise ValueError(f"vlm.min_pixels ({min_pixels}) exceeds vlm.max_pixels ({max_pixels})")
    w, h = size
    rh, rw = smart_resize(
        h,
        w,
        factor=patch_size * SPATIAL_MERGE_SIZE,
        min_pixels=int(min_pixels),
        max_pixels=int(max_pixels),
    )
    return rw, rh


def prepare_image(
    image: Image.Image,
    min_pixels: int,
    max_pixels: int,
    patch_size: int = 14,
    image_format: str = "JPEG",
    quality: int = 95,
) -> PreparedImage:
    """Resize like qwen-vl-utils (RGBA on white, bicubic) and encode as a data URL."""
    from qwen_vl_utils.vision_process import to_rgb

    rgb = to_rgb(image)
    size = resized_size(rgb.size, min_pixels, max_pixels, patch_size)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.BICUBIC)
    fmt = image_format.upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in ("JPEG", "PNG", "WEBP"):
        raise ValueError(f"vlm.image_format must be JPEG, PNG or WEBP, got {image_format!r}")
    buf = io.BytesIO()
    if fmt == "PNG":
        rgb.save(buf, format=fmt)
    else:
        rgb.save(buf, format=fmt, quality=int(quality))
    encoded = base64.b64encode(buf.getvalue()).decode("ascii")
    return PreparedImage(
        data_url=f"data:image/{fmt.lower()};base64,{encoded}",
        size=size,
        original_size=image.size,
    )
