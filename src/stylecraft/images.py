"""Images in and out: files, bytes and PIL images <-> float tensors, safely.

Inside stylecraft an image is a float32 tensor, RGB, shape (1, 3, H, W), values in [0, 1]. This module is
the only place that decodes and encodes image files: it normalises every readable mode (grey, alpha, palette,
CMYK, 16-bit, EXIF-rotated) to RGB, refuses what cannot be read with one clear line, resizes, and saves
results through :mod:`.files`, atomically, so that an output is either the complete new picture or the old
file untouched. Colour maths is in :mod:`.colour`.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import png
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from .choices import BIT_DEPTHS, MAX_PIXELS
from .errors import ImageError
from .files import atomic_write_bytes, check_writable

ImageInput = str | os.PathLike[str] | Image.Image | bytes

#: File extensions we can write, mapped to Pillow format names.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF"}

METADATA_KEY = "stylecraft"

#: The profile every picture is read into and every result is tagged with.
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
SRGB_BYTES: bytes = SRGB.tobytes()
#: The formats that hold 16 bits a channel.
DEEP_FORMATS = ("PNG", "TIFF")

def _describe(source: ImageInput) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return "the image"


def _open(source: ImageInput) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes):
        if not source:
            raise ImageError("the image data is empty (0 bytes)")
        return Image.open(io.BytesIO(source))
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes)")
    return Image.open(path)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited over white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        if image.mode == "F" and array.max() <= 1.0:
            top = 1.0
        else:
            top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert a picture with an embedded colour profile other than sRGB into sRGB (a damaged or unusable
    profile is ignored, as browsers do)."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return image
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if ImageCms.getProfileDescription(profile).strip().lower().startswith("srgb"):  # already sRGB
            return image
        output = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, profile, SRGB, outputMode=output)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image
    return converted if converted is not None else image


def load_image(source: ImageInput, max_pixels: int = MAX_PIXELS, max_side: int | None = None) -> Image.Image:
    """Read an image from a path, bytes or a PIL image and return it as upright 8-bit sRGB (an embedded
    colour profile is applied).

    Raises ImageError with a one-line reason for anything that is not a complete, readable picture of at
    most ``max_pixels`` pixels; the size is checked from the header, before the pixels are decoded. With
    ``max_side``, a larger picture is shrunk to that long side (a JPEG already while it is decoded, which
    takes a fraction of the memory).
    """
    name = _describe(source)
    image = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = _open(source)
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(f"{name}: {width} x {height} pixels is more than the limit of "
                                 f"{max_pixels:,} pixels (a decompression bomb?)")
            if max_side is not None and image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))
            image.load()
            picture = _to_rgb(_to_srgb(ImageOps.exif_transpose(image)))
            if max_side is not None and max(picture.size) > max_side:
                picture = picture.resize(fit_long_side(*picture.size, max_side), Image.Resampling.LANCZOS)
            return picture
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: more pixels than the limit of {max_pixels:,} (a decompression bomb?)") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{name}: not an image file stylecraft can read") from exc
    except PermissionError as exc:
        raise ImageError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: the image is truncated or corrupt ({exc})") from exc
    finally:
        if image is not None and image is not source:
            image.close()


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image -> a (1, 3, H, W) float32 tensor in [0, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """A (1, 3, H, W) or (3, H, W) tensor in [0, 1] -> an RGB PIL image (values are clamped)."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def fit_long_side(width: int, height: int, long_side: int) -> tuple[int, int]:
    """The (width, height) that gives the long side ``long_side`` pixels at the same aspect ratio."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_pixels(size: tuple[int, int], what: str, option: str = "size", max_pixels: int = MAX_PIXELS) -> None:
    """An ImageError, before anything of that size is allocated, when a picture of ``size`` (width, height) would
    have more than ``max_pixels`` pixels (the limit every input has too), naming the largest long side that fits
    as the value of ``option``."""
    width, height = size
    if width * height > max_pixels:
        fits = int(max(size) * math.sqrt(max_pixels / (width * height)))
        raise ImageError(f"{what}: {width} x {height} pixels is more than the limit of {max_pixels:,}; use "
                         f"`{option}` {fits} or less")


def resize(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a (N, C, H, W) image tensor to ``size`` = (width, height), antialiased when shrinking."""
    width, height = size
    if tensor.shape[-2:] == (height, width):
        return tensor
    return F.interpolate(tensor, size=(height, width), mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 1)


def resize_long_side(tensor: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize an image tensor so that its long side is ``long_side`` pixels."""
    height, width = tensor.shape[-2:]
    return resize(tensor, fit_long_side(width, height, long_side))


def check_output_path(path: str | os.PathLike[str], inputs: Iterable[object] = (), bit_depth: int = 8) -> Path:
    """Fail early, before any work, if ``path`` cannot receive an image: unknown type, no folder, no access,
    it is one of the ``inputs``, or its type cannot hold ``bit_depth`` bits a channel."""
    path = Path(path)
    if path.suffix.lower() not in WRITE_FORMATS:
        raise ImageError(f"{path}: unknown image type {path.suffix or '(none)'!r}; use one of "
                         + ", ".join(sorted(WRITE_FORMATS)))
    if bit_depth not in BIT_DEPTHS:
        raise ImageError(f"`bit_depth` must be one of {', '.join(map(str, BIT_DEPTHS))} (got {bit_depth})")
    if bit_depth == 16 and WRITE_FORMATS[path.suffix.lower()] not in DEEP_FORMATS:
        raise ImageError(f"{path}: 16 bits a channel are written to .png or .tif files")
    return check_writable(path, inputs)


def encode_image(image: Image.Image, fmt: str, metadata: dict[str, Any] | None = None) -> bytes:
    """Encode ``image`` in Pillow format ``fmt``; PNGs carry ``metadata`` as a JSON text chunk."""
    buffer = io.BytesIO()
    options: dict[str, Any] = {}
    if fmt == "PNG" and metadata is not None:
        info = PngImagePlugin.PngInfo()
        info.add_text(METADATA_KEY, json.dumps(metadata, sort_keys=True))
        options["pnginfo"] = info
    if fmt == "JPEG":
        options["quality"] = 95
    if fmt != "BMP":
        options["icc_profile"] = SRGB_BYTES
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def encode_deep(tensor: torch.Tensor, fmt: str, metadata: dict[str, Any] | None = None) -> bytes:
    """A (1, 3, H, W) or (3, H, W) tensor in [0, 1] as a 16-bit-per-channel sRGB PNG (with ``metadata`` as
    a JSON text chunk) or TIFF: 65,536 levels a channel for prints and further editing."""
    if tensor.dim() == 4:
        tensor = tensor[0]
    array = tensor.detach().float().clamp(0, 1).mul(65535).round().to(torch.int32).permute(1, 2, 0).cpu().numpy()
    array = array.astype(np.uint16)
    buffer = io.BytesIO()
    if fmt == "TIFF":
        tifffile.imwrite(buffer, array, photometric="rgb", iccprofile=SRGB_BYTES)
        return buffer.getvalue()
    height, width = array.shape[:2]
    png.Writer(width, height, greyscale=False, bitdepth=16).write(buffer, array.reshape(height, width * 3))
    chunks = list(png.Reader(bytes=buffer.getvalue()).chunks())
    extra = [(b"iCCP", b"sRGB\0\0" + zlib.compress(SRGB_BYTES))]
    if metadata is not None:
        extra.append((b"tEXt", METADATA_KEY.encode() + b"\0" + json.dumps(metadata, sort_keys=True).encode()))
    out = io.BytesIO()
    png.write_chunks(out, [chunks[0], *extra, *chunks[1:]])
    return out.getvalue()


def save_image(image: Image.Image | torch.Tensor, path: str | os.PathLike[str],
               metadata: dict[str, Any] | None = None, bit_depth: int = 8) -> Path:
    """Save atomically, tagged sRGB; the settings in ``metadata`` go into the PNG, or a ``.json`` sidecar for
    other types. ``bit_depth`` 16 (a tensor, to PNG or TIFF) keeps 16 bits a channel.

    The picture is complete or absent: a failure never leaves a half-written or clobbered file.
    """
    path = check_output_path(path, bit_depth=bit_depth)
    fmt = WRITE_FORMATS[path.suffix.lower()]
    try:
        if bit_depth == 16:
            data = encode_deep(image if isinstance(image, torch.Tensor) else to_tensor(image), fmt, metadata)
        else:
            data = encode_image(to_pil(image) if isinstance(image, torch.Tensor) else image, fmt, metadata)
        atomic_write_bytes(path, data)
        sidecar = path.with_name(path.name + ".json")
        if metadata is not None and fmt != "PNG":
            atomic_write_bytes(sidecar, json.dumps(metadata, indent=2, sort_keys=True).encode())
        else:
            sidecar.unlink(missing_ok=True)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The settings stylecraft recorded with an image it wrote, or None."""
    path = Path(path)
    sidecar = path.with_name(path.name + ".json")
    if sidecar.exists():
        recorded: dict[str, Any] = json.loads(sidecar.read_text())
        return recorded
    with Image.open(path) as image:
        text = getattr(image, "text", {}).get(METADATA_KEY)
    return json.loads(text) if text else None
