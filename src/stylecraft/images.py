"""Images in and out: files, bytes and PIL images <-> float tensors, safely.

Inside stylecraft an image is a float32 tensor, RGB, shape (1, 3, H, W), values in [0, 1]. This module is
the only place that touches image files: it normalises every readable mode (grey, alpha, palette, CMYK,
16-bit, EXIF-rotated) to RGB, refuses what cannot be read with one clear line, and writes results
atomically so that an output is either the complete new picture or the old file untouched.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import tempfile
import time
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np
import png
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from .errors import ImageError, UsageError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: stale temporary files are told by their age instead of a lock
    fcntl = None

ImageInput = str | os.PathLike[str] | Image.Image | bytes

#: Largest image accepted, in pixels: above any camera, below Pillow's own decompression-bomb refusal (2 x
#: Image.MAX_IMAGE_PIXELS, about 179 MP), which a larger ``max_pixels`` cannot lift.
MAX_PIXELS = 178_000_000

#: File extensions we can write, mapped to Pillow format names.
WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF",
                 ".tiff": "TIFF"}

METADATA_KEY = "stylecraft"

#: The profile every picture is read into and every result is tagged with.
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
SRGB_BYTES: bytes = SRGB.tobytes()
#: Bit depths a result can be written in, and the formats that hold 16 bits a channel.
BIT_DEPTHS = (8, 16)
DEEP_FORMATS = ("PNG", "TIFF")

#: A temporary file of an atomic write that is unlocked and this many seconds old was left by a dead writer;
#: where files cannot be locked, one this old.
FRESH_PART_AGE, STALE_PART_AGE = 5, 3600


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


def check_writable(path: str | os.PathLike[str], inputs: Iterable[object] = ()) -> Path:
    """Fail early if a file cannot be created at ``path``: the folder is missing, not a folder, or read-only;
    or ``path`` is the same file as one of ``inputs`` (paths; other kinds of input are ignored), which the
    output would destroy."""
    path = Path(path)
    if path.exists():
        for source in inputs:
            if isinstance(source, (str, os.PathLike)) and Path(source).exists() and os.path.samefile(path, source):
                raise UsageError(f"{path}: is the input {source} itself; write the result to another file")
    folder = path.parent
    if not folder.exists():
        raise ImageError(f"{path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ImageError(f"{path}: {folder} is not a folder")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".stylecraft-probe-"):
            pass
    except OSError as exc:
        raise ImageError(f"{path}: cannot write in {folder} ({exc.strerror or exc})") from exc
    return path


def _read_umask() -> int:
    """The process's umask, read once at import: Linux shows it in /proc; elsewhere it is set and restored
    before any thread of ours can create files."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: New files get the permissions the user's umask allows (mkstemp alone would make them private).
FILE_MODE = 0o666 & ~_read_umask()


def _remove_stale_parts(path: Path) -> None:
    """Remove the temporary files of earlier writes of ``path`` whose writer died (a kill -9 during a save):
    a live writer holds a lock on its file."""
    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        try:
            if time.time() - part.stat().st_mtime < (FRESH_PART_AGE if fcntl else STALE_PART_AGE):
                continue  # a writer may have just made it and not locked it yet
            with open(part, "rb") as stream:
                if fcntl is not None:
                    fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
                part.unlink()
        except OSError:  # locked by a live writer, or already gone
            continue


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary stream to a temporary file beside ``path``, renamed over ``path`` when the block ends
    normally and removed when it raises: ``path`` is complete or as it was.

    The temporary file is locked while it is written, so that the next write of ``path`` can tell (and
    remove) those left behind by a process that was killed.
    """
    path = Path(path)
    _remove_stale_parts(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w+b") as stream:
            if fcntl is not None:
                fcntl.flock(stream, fcntl.LOCK_EX)
            yield stream
            stream.flush()
            os.chmod(temp, FILE_MODE)
            os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as stream:
        stream.write(data)


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


def rgb_to_yuv(image: torch.Tensor) -> torch.Tensor:
    """RGB -> YUV (BT.601): Y is luminance, U and V the colour; used for colour-preserving transfer."""
    matrix = image.new_tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
    return torch.einsum("ij,njhw->nihw", matrix, image)


def yuv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """YUV (BT.601) -> RGB, the inverse of :func:`rgb_to_yuv`."""
    matrix = image.new_tensor([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]])
    return torch.einsum("ij,njhw->nihw", matrix, image)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """The luminance of an RGB image, repeated on three channels so that VGG can read it."""
    return rgb_to_yuv(image)[:, :1].expand(-1, 3, -1, -1).contiguous()


def match_luminance(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Shift and scale ``source``'s luminance to ``reference``'s mean and spread (Gatys et al. 2016, sec. 3)."""
    src, ref = source[:, :1], reference[:, :1]
    scaled = (src - src.mean()) * (ref.std() / src.std().clamp_min(1e-6)) + ref.mean()
    return scaled.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def restore_colour(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Combine the luminance of ``result`` with the colour (U, V) of ``content``.

    The luminance is clamped per pixel to the range in which that pixel's colour stays a valid RGB value,
    so the content's colour is kept exactly instead of being distorted by clamping RGB afterwards.
    """
    colour = rgb_to_yuv(content)[:, 1:]
    u, v = colour[:, :1], colour[:, 1:]
    offsets = torch.cat([1.13983 * v, -0.39465 * u - 0.58060 * v, 2.03211 * u], dim=1)
    low, high = (-offsets).amax(dim=1, keepdim=True), (1 - offsets).amin(dim=1, keepdim=True)
    luma = torch.maximum(torch.minimum(rgb_to_yuv(result)[:, :1], high), low)
    return yuv_to_rgb(torch.cat([luma, colour], dim=1)).clamp(0, 1)


def _sqrtm(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = torch.linalg.eigh(matrix)
    root: torch.Tensor = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    return root


def match_colour(picture: torch.Tensor, references: torch.Tensor | Sequence[torch.Tensor],
                 weights: Sequence[float] | None = None) -> torch.Tensor:
    """``picture`` ((1, 3, H, W) in [0, 1]) with its colours moved so that their mean and covariance are those
    of ``references``' (the mixture of their colours, in proportion to ``weights``, equal by default): the
    Monge-Kantorovich linear map (Pitie and Kokaram 2007), the least change of colours that matches both,
    which keeps each pixel's relation to its neighbours (edges, shading)."""
    references = [references] if isinstance(references, torch.Tensor) else list(references)
    shares = weights if weights is not None else [1.0] * len(references)
    total = sum(shares)
    mean = torch.zeros(3, 1, dtype=torch.float64, device=picture.device)
    second = torch.zeros(3, 3, dtype=torch.float64, device=picture.device)
    for reference, share in zip(references, shares, strict=True):
        colours = reference[0].flatten(1).double().to(picture.device)
        mean += share / total * colours.mean(1, keepdim=True)
        second += share / total * (colours @ colours.T) / colours.shape[1]
    source = picture[0].flatten(1).double()
    eye = 1e-5 * torch.eye(3, dtype=torch.float64, device=picture.device)
    source_cov, target_cov = source.cov(correction=0) + eye, second - mean @ mean.T + eye
    root = _sqrtm(source_cov)
    inverse_root = torch.linalg.inv(root)
    transform = inverse_root @ _sqrtm(root @ target_cov @ root) @ inverse_root
    moved: torch.Tensor = transform @ (source - source.mean(1, keepdim=True)) + mean
    return moved.reshape(picture.shape).to(picture.dtype).clamp(0, 1)
