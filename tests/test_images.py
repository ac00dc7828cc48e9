"""Image input and output (images.py): every readable mode to RGB, one-line errors, atomic writes."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from stylecraft import images
from stylecraft.errors import ImageError, UsageError
from stylecraft.images import (
    check_output_path,
    fit_long_side,
    load_image,
    read_metadata,
    resize,
    resize_long_side,
    save_image,
    to_pil,
    to_tensor,
)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


def noise_image(width: int = 64, height: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG that claims ``width`` x ``height`` RGB pixels but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit, colour type 2 (RGB)
    idat = zlib.compress(b"\x00" * 16)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def assert_one_line_error(path, **kwargs) -> str:
    with pytest.raises(ImageError) as info:
        load_image(path, **kwargs)
    message = str(info.value)
    assert os.path.basename(str(path)) in message
    assert "\n" not in message
    return message


# --------------------------------------------------------------------------------------------------- reading


def test_rgb_png(tmp_path):
    image = noise_image(9, 7)
    image.save(tmp_path / "rgb.png")
    loaded = load_image(tmp_path / "rgb.png")
    assert loaded.mode == "RGB"
    assert loaded.size == (9, 7)
    assert np.array_equal(pixels(loaded), pixels(image))


def test_grey(tmp_path):
    Image.new("L", (5, 4), 100).save(tmp_path / "grey.png")
    loaded = load_image(str(tmp_path / "grey.png"))
    assert loaded.mode == "RGB"
    assert loaded.size == (5, 4)
    assert (pixels(loaded) == 100).all()


def test_rgba_transparent_becomes_white(tmp_path):
    image = Image.new("RGBA", (3, 1))
    image.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red: white
    image.putpixel((1, 0), (0, 0, 255, 255))  # opaque blue: blue
    image.putpixel((2, 0), (0, 0, 0, 128))  # half-transparent black: mid grey
    image.save(tmp_path / "alpha.png")
    loaded = pixels(load_image(tmp_path / "alpha.png"))
    assert loaded.shape == (1, 3, 3)
    assert loaded[0, 0].tolist() == [255, 255, 255]
    assert loaded[0, 1].tolist() == [0, 0, 255]
    assert np.all(np.abs(loaded[0, 2] - 127) <= 1)


def test_grey_with_alpha(tmp_path):
    image = Image.new("LA", (2, 1))
    image.putpixel((0, 0), (0, 0))
    image.putpixel((1, 0), (50, 255))
    image.save(tmp_path / "la.png")
    assert pixels(load_image(tmp_path / "la.png"))[0].tolist() == [[255, 255, 255], [50, 50, 50]]


def test_palette(tmp_path):
    image = Image.new("P", (2, 2))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    image.putdata([0, 1, 1, 0])
    image.save(tmp_path / "palette.png")
    loaded = pixels(load_image(tmp_path / "palette.png"))
    assert loaded[0, 0].tolist() == [255, 0, 0]
    assert loaded[0, 1].tolist() == [0, 255, 0]
    assert loaded[1, 0].tolist() == [0, 255, 0]


def test_palette_transparency_becomes_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 0, 0, 255] + [0, 0, 0] * 254)
    image.putdata([0, 1])
    image.save(tmp_path / "palette.gif", transparency=0)
    loaded = pixels(load_image(tmp_path / "palette.gif"))
    assert loaded[0].tolist() == [[255, 255, 255], [0, 0, 255]]


def test_cmyk_jpeg(tmp_path):
    image = Image.new("CMYK", (16, 8), (0, 0, 0, 0))  # no ink: white
    image.paste((255, 0, 0, 0), (8, 0, 16, 8))  # full cyan on the right half
    image.save(tmp_path / "cmyk.jpg", quality=95)
    with Image.open(tmp_path / "cmyk.jpg") as raw:
        assert raw.mode == "CMYK"
    loaded = pixels(load_image(tmp_path / "cmyk.jpg"))
    assert loaded.shape == (8, 16, 3)
    assert np.all(np.abs(loaded[4, 2] - [255, 255, 255]) <= 8)
    assert np.all(np.abs(loaded[4, 13] - [0, 255, 255]) <= 8)


def test_sixteen_bit_grey(tmp_path):
    array = np.array([[0, 65535, 32768, 257]], dtype=np.uint16)
    Image.fromarray(array).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as raw:
        assert raw.mode.startswith("I")
    loaded = pixels(load_image(tmp_path / "deep.png"))
    assert loaded.shape == (1, 4, 3)
    # Scaled from 0-65535 to 0-255, not clipped: 65535 -> 255, 32768 -> 128, 257 -> 1.
    assert loaded[0, :, 0].tolist() == [0, 255, 128, 1]
    assert (loaded[..., 0] == loaded[..., 2]).all()


def test_exif_rotation(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    loaded = load_image(tmp_path / "rotated.jpg")
    assert loaded.size == (20, 40)
    array = pixels(loaded)
    # Turned clockwise, the left (red) half ends up on top.
    assert array[5, 10, 0] > 200 and array[5, 10, 2] < 60
    assert array[35, 10, 2] > 200 and array[35, 10, 0] < 60


def test_bytes_and_pil_input(tmp_path):
    image = noise_image(8, 6)
    image.save(tmp_path / "x.png")
    from_bytes = load_image((tmp_path / "x.png").read_bytes())
    assert np.array_equal(pixels(from_bytes), pixels(image))
    from_pil = load_image(Image.new("L", (3, 2), 7))
    assert from_pil.mode == "RGB" and from_pil.size == (3, 2)
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


# --------------------------------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    message = assert_one_line_error(tmp_path / "nowhere.png")
    assert "no such file" in message


def test_folder(tmp_path):
    folder = tmp_path / "pictures.png"
    folder.mkdir()
    assert "folder" in assert_one_line_error(folder)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    assert "empty" in assert_one_line_error(path)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    assert "not an image" in assert_one_line_error(path)


def test_truncated_jpeg(tmp_path):
    whole = tmp_path / "whole.jpg"
    noise_image(96, 96).save(whole, quality=90)
    data = whole.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    assert load_image(whole).size == (96, 96)  # the original is fine
    assert "truncated" in assert_one_line_error(cut)


def test_truncated_png(tmp_path):
    whole = tmp_path / "whole.png"
    noise_image(64, 64).save(whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    assert_one_line_error(cut)


def test_decompression_bomb(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(30000, 30000))
    assert path.stat().st_size < 200
    assert_one_line_error(path)


def test_hand_made_png_header_is_valid(tmp_path):
    # The same construction at a small size is a PNG that Pillow recognises (and finds truncated).
    path = tmp_path / "tiny.png"
    path.write_bytes(png_header_only(4, 3))
    with Image.open(path) as probe:
        assert (probe.format, probe.size, probe.mode) == ("PNG", (4, 3), "RGB")
    assert "truncated" in assert_one_line_error(path)


def test_pixel_limit_checked_from_header(tmp_path):
    # 12000 x 10000 is under Pillow's own refusal threshold, so this is stylecraft's check, before decoding.
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(12000, 10000))
    message = assert_one_line_error(path, max_pixels=100_000_000)
    assert "12000 x 10000" in message
    assert "limit" in message


def test_max_pixels_on_a_real_image(tmp_path):
    path = tmp_path / "small.png"
    noise_image(100, 100).save(path)
    assert load_image(path, max_pixels=10_000).size == (100, 100)
    assert "limit" in assert_one_line_error(path, max_pixels=9_999)


# --------------------------------------------------------------------------------------------------- tensors


def test_tensor_round_trip():
    image = noise_image(13, 11)
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 11, 13)
    assert tensor.dtype == torch.float32
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0
    assert tensor[0, 0, 2, 3].item() == pytest.approx(image.getpixel((3, 2))[0] / 255)
    back = to_pil(tensor)
    assert back.mode == "RGB" and back.size == (13, 11)
    assert np.array_equal(pixels(back), pixels(image))
    assert np.array_equal(pixels(to_pil(tensor[0])), pixels(image))


def test_to_pil_clamps_and_rounds():
    tensor = torch.tensor([[[[-0.5, 1.5, 0.5, 0.2]]]]).expand(1, 3, 1, 4)
    assert pixels(to_pil(tensor))[0, :, 0].tolist() == [0, 255, 128, 51]


def test_to_pil_detaches():
    tensor = torch.rand(1, 3, 4, 4, requires_grad=True)
    assert to_pil(tensor * 1).size == (4, 4)


def test_fit_long_side():
    assert fit_long_side(40, 20, 10) == (10, 5)
    assert fit_long_side(20, 40, 10) == (5, 10)
    assert fit_long_side(3, 2, 300) == (300, 200)
    assert fit_long_side(512, 512, 256) == (256, 256)
    assert fit_long_side(1000, 1, 10) == (10, 1)  # never zero pixels


def test_resize():
    tensor = torch.rand(1, 3, 10, 20)
    out = resize(tensor, (8, 5))  # (width, height)
    assert out.shape == (1, 3, 5, 8)
    assert abs(float(out.mean()) - float(tensor.mean())) < 0.05  # antialiased: an average, not a sample
    edge = torch.zeros(1, 3, 8, 8)
    edge[..., 4:] = 1.0  # bicubic overshoots at a hard edge; resize keeps the values in range
    bare = torch.nn.functional.interpolate(edge, size=(32, 32), mode="bicubic", align_corners=False)
    assert bare.max() > 1.0 and bare.min() < 0.0
    upscaled = resize(edge, (32, 32))
    assert upscaled.max() <= 1.0 and upscaled.min() >= 0.0
    assert resize(tensor, (20, 10)) is tensor
    flat = torch.full((1, 3, 30, 40), 0.25)
    assert torch.allclose(resize(flat, (13, 7)), torch.full((1, 3, 7, 13), 0.25), atol=1e-5)
    assert torch.allclose(resize(flat, (80, 60)), torch.full((1, 3, 60, 80), 0.25), atol=1e-5)


def test_resize_long_side():
    assert resize_long_side(torch.rand(1, 3, 20, 40), 10).shape == (1, 3, 5, 10)
    assert resize_long_side(torch.rand(1, 3, 40, 20), 30).shape == (1, 3, 30, 15)


# --------------------------------------------------------------------------------------------------- writing


def test_save_png_with_metadata(tmp_path):
    image = noise_image(12, 9)
    metadata = {"style_weight": 10.0, "layers": ["relu1_1", "relu2_1"], "seed": 1}
    path = save_image(image, tmp_path / "out.png", metadata)
    assert path == tmp_path / "out.png"
    assert read_metadata(path) == metadata
    with Image.open(path) as written:
        assert written.format == "PNG"
        assert json.loads(written.text["stylecraft"]) == metadata
        assert np.array_equal(pixels(written.convert("RGB")), pixels(image))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_tensor_without_metadata(tmp_path):
    tensor = to_tensor(noise_image(6, 5))
    path = save_image(tensor, tmp_path / "plain.png")
    assert read_metadata(path) is None
    assert np.array_equal(pixels(load_image(path)), pixels(to_pil(tensor)))


def test_save_jpeg_gets_a_sidecar(tmp_path):
    metadata = {"iterations": 300, "model": "vgg19"}
    path = save_image(noise_image(), tmp_path / "out.jpg", metadata)
    sidecar = tmp_path / "out.jpg.json"
    assert sidecar.is_file()
    assert json.loads(sidecar.read_text()) == metadata
    assert read_metadata(path) == metadata
    with Image.open(path) as written:
        assert written.format == "JPEG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg", "out.jpg.json"]


@pytest.mark.parametrize(("suffix", "fmt"), [(".webp", "WEBP"), (".bmp", "BMP"), (".tiff", "TIFF"),
                                             (".JPEG", "JPEG")])
def test_save_other_formats(tmp_path, suffix, fmt):
    path = save_image(noise_image(8, 8), tmp_path / f"out{suffix}")
    with Image.open(path) as written:
        assert written.format == fmt
        assert written.size == (8, 8)


def test_save_into_missing_folder(tmp_path):
    target = tmp_path / "missing" / "out.png"
    with pytest.raises(ImageError, match="missing") as info:
        save_image(noise_image(), target)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "missing").exists()
    assert list(tmp_path.iterdir()) == []


def test_save_unknown_extension(tmp_path):
    with pytest.raises(ImageError, match="xyz") as info:
        save_image(noise_image(), tmp_path / "out.xyz")
    assert ".png" in str(info.value)  # says what would work
    assert list(tmp_path.iterdir()) == []


def test_save_without_extension(tmp_path):
    with pytest.raises(ImageError):
        save_image(noise_image(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_save_replaces_existing_file_atomically(tmp_path):
    path = tmp_path / "result.png"
    save_image(Image.new("RGB", (4, 4), (255, 0, 0)), path, {"run": 1})
    save_image(Image.new("RGB", (6, 3), (0, 0, 255)), path, {"run": 2})
    loaded = load_image(path)
    assert loaded.size == (6, 3)
    assert pixels(loaded)[0, 0].tolist() == [0, 0, 255]
    assert read_metadata(path) == {"run": 2}
    assert list(tmp_path.glob(".*.part")) == []
    assert list(tmp_path.glob(".stylecraft-probe-*")) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.png"]


def test_failed_encode_leaves_old_file(tmp_path):
    path = tmp_path / "keep.jpg"
    save_image(Image.new("RGB", (4, 4), (0, 255, 0)), path)
    before = path.read_bytes()
    with pytest.raises(ImageError):
        save_image(Image.new("RGBA", (4, 4)), path)  # JPEG cannot hold alpha
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.jpg"]


def test_save_over_a_folder(tmp_path):
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(ImageError, match="folder"):
        save_image(noise_image(), tmp_path / "taken.png")


def test_check_output_path_parent_is_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ImageError, match="not a folder"):
        check_output_path(blocker / "out.png")
    assert blocker.read_text() == "x"


def test_check_output_path_accepts_good_paths(tmp_path):
    assert check_output_path(tmp_path / "a.PNG") == tmp_path / "a.PNG"
    assert check_output_path(str(tmp_path / "b.jpeg")) == tmp_path / "b.jpeg"
    assert list(tmp_path.iterdir()) == []  # checking writes nothing that stays


def test_saved_files_follow_the_umask(tmp_path):
    path = images.save_image(Image.new("RGB", (8, 8)), tmp_path / "out.png")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_stale_sidecar_is_removed(tmp_path):
    path = tmp_path / "a.jpg"
    images.save_image(Image.new("RGB", (8, 8)), path, metadata={"seed": 1})
    assert images.read_metadata(path) == {"seed": 1}
    images.save_image(Image.new("RGB", (8, 8)), path)
    assert images.read_metadata(path) is None


def test_float_image_in_unit_range(tmp_path):
    array = np.full((4, 4), 0.5, dtype=np.float32)
    rgb = images.load_image(Image.fromarray(array, "F"))
    assert np.asarray(rgb)[0, 0].tolist() == [128, 128, 128]


def test_a_save_removes_the_parts_a_killed_writer_left_but_not_a_live_ones(tmp_path):
    fcntl = pytest.importorskip("fcntl")
    path = tmp_path / "out.png"
    stale, live = tmp_path / ".out.png.dead1234.part", tmp_path / ".out.png.busy5678.part"
    other = tmp_path / ".other.png.dead1234.part"
    for part in (stale, live, other):
        part.write_bytes(b"half a picture")
        os.utime(part, (1, 1))
    with open(live, "rb") as writer:
        fcntl.flock(writer, fcntl.LOCK_EX)  # a writer that is still at work
        save_image(noise_image(), path)
    assert not stale.exists() and live.exists() and other.exists()
    assert load_image(path).size == noise_image().size


def test_an_output_that_is_an_input_is_refused(tmp_path):
    photo = tmp_path / "photo.png"
    noise_image().save(photo)
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    for output in (photo, link):
        with pytest.raises(UsageError, match="is the input"):
            check_output_path(output, [photo])
    assert check_output_path(tmp_path / "new.png", [photo]) == tmp_path / "new.png"
    assert check_output_path(link, [tmp_path / "missing.png", None, noise_image()]) == link


def test_max_side_shrinks_large_pictures_as_they_load(tmp_path):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (600, 800, 3), dtype=np.uint8))
    for suffix in (".jpg", ".png"):
        big.save(tmp_path / f"big{suffix}")
        assert load_image(tmp_path / f"big{suffix}", max_side=100).size == (100, 75)
        assert load_image(tmp_path / f"big{suffix}", max_side=1000).size == (800, 600)


def _linear_srgb_profile() -> bytes:
    """An ICC v2 matrix/TRC profile: sRGB's primaries with a linear tone curve (gamma 1), built by hand."""
    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in (x, y, z))

    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 256) + bytes(2)  # one entry: gamma 1.0 (u8Fixed8)
    text = b"linear sRGB\0"
    tags = [(b"desc", b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(11 + 67)),
            (b"wtpt", xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
            (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)), (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
            (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ " + bytes(12)
              + b"acsp" + bytes(28) + struct.pack(">iii", 63190, 65536, 54061) + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def test_an_embedded_colour_profile_is_converted_to_srgb(tmp_path):
    grey = Image.new("RGB", (8, 8), (128, 128, 128))
    grey.save(tmp_path / "linear.png", icc_profile=_linear_srgb_profile())
    grey.save(tmp_path / "plain.png")
    assert pixels(load_image(tmp_path / "plain.png"))[0, 0].tolist() == [128, 128, 128]
    converted = pixels(load_image(tmp_path / "linear.png"))[0, 0]
    assert all(abs(int(v) - 188) <= 2 for v in converted), converted  # linear 0.5 is sRGB 0.735
    (tmp_path / "broken.png").write_bytes(b"")
    grey.save(tmp_path / "broken.png", icc_profile=b"not a profile")
    assert pixels(load_image(tmp_path / "broken.png"))[0, 0].tolist() == [128, 128, 128]  # ignored, as browsers do


def test_results_are_tagged_srgb_and_can_have_16_bits_a_channel(tmp_path):
    png = pytest.importorskip("png")
    tifffile = pytest.importorskip("tifffile")
    picture = torch.rand(1, 3, 12, 20)
    save_image(picture, tmp_path / "eight.png", {"run": 1})
    assert "icc_profile" in Image.open(tmp_path / "eight.png").info
    save_image(picture, tmp_path / "deep.png", {"run": 2}, bit_depth=16)
    width, height, rows, info = png.Reader(filename=str(tmp_path / "deep.png")).read()
    deep = np.vstack([np.asarray(row) for row in rows]).reshape(height, width, 3)
    assert info["bitdepth"] == 16 and (width, height) == (20, 12)
    expected = picture[0].permute(1, 2, 0).numpy() * 65535
    assert np.abs(deep - expected).max() <= 0.5  # 65,536 levels, not 256
    assert read_metadata(tmp_path / "deep.png") == {"run": 2}
    assert "icc_profile" in Image.open(tmp_path / "deep.png").info
    save_image(picture, tmp_path / "deep.tif", bit_depth=16)
    assert tifffile.imread(tmp_path / "deep.tif").dtype == np.uint16
    with pytest.raises(ImageError, match="16 bits"):
        save_image(picture, tmp_path / "deep.jpg", bit_depth=16)
    assert not (tmp_path / "deep.jpg").exists()
