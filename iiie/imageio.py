"""Image loading that turns odd inputs into RGB or into one clear error.

Real benchmark folders hold RGBA PNGs, 16-bit TIFFs, grayscale and palette images, EXIF
rotations and the odd truncated download. Everything downstream expects 8-bit RGB, so this
module is the one door images come through.

Two decodings (``decode=``):

* ``friendly`` (users' own images): EXIF orientation applied, transparency composited over
  white, 16-bit and float images rescaled (:func:`to_rgb`).
* ``reference`` (benchmark data, and outputs scored against it): what the published
  evaluation scripts do, ``Image.open(path).convert("RGB")``: EXIF orientation ignored
  (so a PIE-Bench run-length mask, drawn on the stored pixel order, stays aligned) and
  PIL's own conversion of every mode (alpha dropped, not composited).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from iiie.errors import ImageLoadError

#: Refuse images above this many pixels (a decompression bomb or a mistake); configurable.
DEFAULT_MAX_PIXELS = 64_000_000
#: Refuse images smaller than this on either side: no model or metric works on them.
DEFAULT_MIN_SIDE = 8
#: The decodings :func:`load_image` offers (see the module docstring).
DECODE_MODES = ("friendly", "reference")


def check_decode(decode: str, key: str = "data.decode") -> str:
    """``decode`` if it names a decoding, else a ValueError naming the config ``key``."""
    if decode not in DECODE_MODES:
        raise ValueError(f"{key} must be one of {DECODE_MODES}, got {decode!r}")
    return decode


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB.

    Alpha is composited over ``background`` (not dropped: a transparent area would
    otherwise show whatever colour the encoder left there). 16/32-bit and float images are
    rescaled by their value range, not clipped.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if mode.startswith("I;16") or (mode == "I" and arr.max(initial=0) > 255):
            arr = arr / 65535.0 * 255.0
        elif mode == "F" and arr.max(initial=0) <= 1.0:
            arr = arr * 255.0
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def load_image(
    source: str | os.PathLike | bytes | Image.Image,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
    decode: str = "friendly",
) -> Image.Image:
    """Open ``source`` (path, bytes or PIL image) as an 8-bit RGB image.

    ``decode="friendly"`` applies EXIF orientation and :func:`to_rgb`; ``"reference"``
    is ``Image.open(...).convert("RGB")`` as the benchmarks' scoring scripts do.

    Raises :class:`~iiie.errors.ImageLoadError` with the path and the reason for missing,
    corrupt, truncated, too large or too small images.
    """
    check_decode(decode, "decode")
    name = "<image>"
    try:
        if isinstance(source, Image.Image):
            img = source
        else:
            if isinstance(source, (bytes, bytearray)):
                fh = io.BytesIO(source)
            else:
                name = str(source)
                path = Path(source)
                if not path.is_file():
                    raise ImageLoadError(f"{name}: no such image file")
                fh = open(path, "rb")  # noqa: SIM115 - closed below after load()
            with fh, warnings.catch_warnings():
                # our own size check below gives the clear error; PIL's warning would only
                # print beside it
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(fh)
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageLoadError(
                        f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}; "
                        "downscale the image first (the limit is iiie.imageio.DEFAULT_MAX_PIXELS)"
                    )
                img.load()
        if decode == "friendly":
            img = ImageOps.exif_transpose(img) or img
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{name}: too large to decode safely ({exc}); downscale the image first") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageLoadError(f"{name}: cannot read image ({exc.__class__.__name__}: {exc})") from exc
    w, h = img.size
    if min(w, h) < min_side:
        raise ImageLoadError(f"{name}: image is {w}x{h}; both sides must be at least {min_side} px")
    if w * h > max_pixels:
        raise ImageLoadError(f"{name}: {w}x{h} exceeds the limit of {max_pixels} pixels")
    if decode == "reference":
        try:
            return img if img.mode == "RGB" else img.convert("RGB")
        except (ValueError, OSError) as exc:
            raise ImageLoadError(f"{name}: cannot convert {img.mode} to RGB ({exc})") from exc
    return to_rgb(img)
