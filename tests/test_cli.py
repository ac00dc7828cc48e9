"""The stylecraft command end to end: every mode and output option, and the table of bad inputs."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image

from stylecraft import images
from stylecraft.cli import main

FAST = ["--size", "48", "--iterations", "3", "--seed", "1", "--quiet"]


def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# ---- the modes and every output option -------------------------------------------------------------------


def test_transfer_writes_png_with_settings(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *FAST)
    assert code == 0, err
    with Image.open(out) as picture:
        assert picture.size == (48, 36)
    settings = images.read_metadata(out)
    assert settings["seed"] == 1 and settings["mode"] == "transfer" and settings["iterations"] == 3
    assert settings["content"] == str(content_path)


def test_a_preset_and_a_style_loss_from_the_command_line(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--quality", "draft",
                        "--style-loss", "mean-std", *FAST)
    assert code == 0, err
    settings = images.read_metadata(out)
    assert settings["preset"] == "draft" and settings["size"] == 48 and settings["style_loss"] == "mean-std"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--preset", "superb", *FAST)
    assert code == 2 and "superb" in err and err.count("\n") == 1


def test_same_seed_same_picture(capsys, tmp_path, content_path, style_path):
    outs = [tmp_path / "a.png", tmp_path / "b.png"]
    for out in outs:
        assert run_cli(capsys, "transfer", content_path, style_path, "-o", out, *FAST, "--init", "noise")[0] == 0
    pixels = [np.asarray(Image.open(o)) for o in outs]
    assert np.array_equal(*pixels)


def test_the_end_line_names_the_seed_only_where_the_start_draws_on_it(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "a.png"
    fast = [a for a in FAST if a != "--quiet"]
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *fast)
    assert code == 0 and "start: palette, no seed needed" in err and "seed 1" not in err, err
    assert images.read_metadata(out)["start"] == "palette"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *fast, "--init", "noise")
    assert code == 0 and "seed 1," in err, err


def test_reconstruct_and_texture(capsys, tmp_path, content_path, style_path):
    assert run_cli(capsys, "reconstruct", content_path, "-o", tmp_path / "r.png", *FAST)[0] == 0
    code, err = run_cli(capsys, "texture", style_path, "-o", tmp_path / "t.png", *FAST,
                        "--width", "40", "--height", "56")
    assert code == 0, err
    assert Image.open(tmp_path / "t.png").size == (40, 56)
    assert images.read_metadata(tmp_path / "t.png")["content"] is None


def test_records_history_plot_animation_snapshots(capsys, tmp_path, content_path, style_path):
    args = ["transfer", content_path, style_path, "-o", tmp_path / "o.jpg", "--size", "48", "--iterations", "4",
            "--quiet", "--history", tmp_path / "h.csv", "--plot", tmp_path / "p.png",
            "--animation", tmp_path / "a.gif", "--save-every", "2", "--snapshots", tmp_path / "snaps"]
    code, err = run_cli(capsys, *args)
    assert code == 0, err
    rows = (tmp_path / "h.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,scale,width,height,elapsed") and "style:relu1_1" in rows[0] and len(rows) == 5
    with Image.open(tmp_path / "p.png") as plot:
        assert plot.size[0] > 400
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames >= 3
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == ["iter_00002.png", "iter_00004.png"]
    assert json.loads((tmp_path / "o.jpg.json").read_text())["iterations"] == 4


def test_history_json_and_options(capsys, tmp_path, content_path, style_path):
    style2 = tmp_path / "style2.png"
    make_style(seed=3).rotate(90).save(style2)
    code, err = run_cli(capsys, "transfer", content_path, style_path, style2, "-o", tmp_path / "o.png", *FAST,
                        "--history", tmp_path / "h.json", "--style-blend", "2,1", "--optimizer", "adam",
                        "--lr", "0.05", "--pooling", "avg", "--content-layers", "relu3_2,block4_conv2",
                        "--content-layer-weights", "1,2", "--style-layers", "relu1_1,relu2_1",
                        "--style-layer-weights", "1,1", "--content-weight", "2", "--style-weight", "5",
                        "--tv-weight", "0", "--style-scale", "0.5", "--preserve-color", "--device", "cpu")
    assert code == 0, err
    data = json.loads((tmp_path / "h.json").read_text())
    assert data["settings"]["style_blend"] == [2.0, 1.0]
    assert len(data["history"]) == 3 and "content:relu4_2" in data["history"][0]
    assert "tv" not in data["history"][0]


def test_init_from_file(capsys, tmp_path, content_path, style_path):
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", tmp_path / "o.png", *FAST,
                        "--init", style_path)
    assert code == 0, err
    assert images.read_metadata(tmp_path / "o.png")["init_image"] == str(style_path)
    assert run_cli(capsys, "transfer", content_path, style_path, "-o", tmp_path / "c.png", *FAST)[0] == 0
    started = [np.asarray(Image.open(tmp_path / name), dtype=float) for name in ("o.png", "c.png")]
    assert np.abs(started[0] - started[1]).mean() > 5  # the start picture shows through after 3 steps


def test_layers_lists_both_namings(capsys):
    assert main(["layers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "relu4_2   block4_conv2" in lines and lines[0] == "conv1_1" and lines[-1].startswith("pool5")
    assert main(["layers", "--model", "vgg16"]) == 0
    assert "conv5_3" in capsys.readouterr().out


def test_grid_sweeps_an_option(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "grid.png"
    code, err = run_cli(capsys, "grid", "transfer", "--content", content_path, "--style", style_path,
                        "--vary", "style-weight=1,100", "--vary", "init=noise,content", "-o", out, *FAST,
                        "--cell-size", "64")
    assert code == 0, err
    with Image.open(out) as sheet:
        assert sheet.width > 2 * 64 and sheet.height > 2 * 64
    settings = images.read_metadata(out)
    assert settings["grid"]["vary"] == ["style-weight=1,100", "init=noise,content"]


def test_grid_content_by_style_and_layer_sweep(capsys, tmp_path, content_path, style_path):
    style2 = tmp_path / "s2.png"
    make_style(seed=5).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(style2)
    code, err = run_cli(capsys, "grid", "transfer", "--content", content_path, "--style", style_path, style2,
                        "-o", tmp_path / "g.png", *FAST)
    assert code == 0, err
    code, err = run_cli(capsys, "grid", "reconstruct", "--content", content_path,
                        "--vary", "content-layers=relu1_1,relu3_1", "-o", tmp_path / "r.png", *FAST)
    assert code == 0, err


# ---- inputs that are fine to read are converted ----------------------------------------------------------


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    make_content(64, 32).save(path, exif=exif)


CONVERTIBLE = {
    "grey.png": lambda p: make_content().convert("L").save(p),
    "rgba.png": lambda p: make_content().convert("RGBA").save(p),
    "palette.png": lambda p: make_content().convert("P").save(p),
    "cmyk.jpg": lambda p: make_content().convert("CMYK").save(p),
    "sixteen.png": lambda p: Image.fromarray(np.asarray(make_content().convert("L"), np.uint16) * 257).save(p),
    "rotated.jpg": _exif_rotated,
}


@pytest.mark.parametrize("name", sorted(CONVERTIBLE))
def test_readable_modes_are_converted(capsys, tmp_path, style_path, name):
    path = tmp_path / name
    CONVERTIBLE[name](path)
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", path, style_path, "-o", out, *FAST)
    assert code == 0, err
    if name == "rotated.jpg":
        assert Image.open(out).size == (24, 48)


# ---- bad input: one line, the right exit code, no output written or clobbered ----------------------------


def _bomb(path: Path) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))


def _truncated(path: Path) -> None:
    buffer = io.BytesIO()
    make_content(256, 192).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


BAD_CONTENT = {
    "missing": (None, "no such file"),
    "text.jpg": (lambda p: p.write_text("not a picture"), "not an image"),
    "empty.jpg": (lambda p: p.write_bytes(b""), "empty"),
    "truncated.jpg": (_truncated, "truncated"),
    "bomb.png": (_bomb, "decompression bomb"),
}


@pytest.mark.parametrize("name", sorted(BAD_CONTENT))
def test_bad_images_fail_cleanly(capsys, tmp_path, style_path, name):
    make, message = BAD_CONTENT[name]
    path = tmp_path / name
    if make:
        make(path)
    out = tmp_path / "out.png"
    out.write_bytes(b"previous result")
    code, err = run_cli(capsys, "transfer", path, style_path, "-o", out, *FAST)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("stylecraft: error:") and message in err
    assert "Traceback" not in err
    assert out.read_bytes() == b"previous result"


BAD_OPTIONS = {
    "unknown layer": (["--style-layers", "relu1_1,rleu2_1"], "did you mean relu2_1"),
    "negative weight": (["--style-weight", "-1"], "--style-weight"),
    "nan weight": (["--content-weight", "nan"], "--content-weight"),
    "zero iterations": (["--iterations", "0"], "--iterations"),
    "too small": (["--size", "8"], "too small"),
    "weights count": (["--style-layer-weights", "1,2"], "2 weights for 5"),
    "not a number": (["--tv-weight", "lots"], "expected a finite number"),
    "unknown optimizer": (["--optimizer", "sgd"], "invalid choice"),
    "vgg16 without weights": (["--model", "vgg16"], "give a weights file (--weights)"),
    "missing weights file": (["--weights", "nowhere.pth"], "no such weights file"),
    "missing cuda": (["--device", "cuda"], "CUDA"),
    "endless iterations": (["--iterations", "99999999999999999999"], "--iterations must be 1 to 100000"),
    "overflowing style scale": (["--style-scale", "1e308"], "--style-scale must be"),
    "too many scales": (["--scales", "100000"], "--scales must be 1 to 32"),
    "no memory": (["--max-memory", "0"], "--max-memory must be"),
    "a huge seed": (["--seed", str(2**64)], "--seed must be"),
    "a weight beyond float32": (["--style-weight", "1e39"], "--style-weight must be 0 to 3e+38"),
    "endless snapshots": (["--snapshots", "snaps", "--save-every", "1000000"], "--save-every must be 1 to 100000"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_options_fail_cleanly(capsys, tmp_path, content_path, style_path, monkeypatch, case):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    extra, message = BAD_OPTIONS[case]
    if case == "missing cuda":
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *FAST, *extra)
    assert code == 2, err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_grid_cell_too_large_is_refused_before_work(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "grid.png"
    code, err = run_cli(capsys, "grid", "transfer", "--content", content_path, "--style", style_path, "--vary",
                        "style-weight=1,10", "-o", out, "--cell-size", "100000", *FAST)
    assert code == 2 and err.count("\n") == 1 and "--cell-size must be 16 to 4096" in err, err
    assert not out.exists()


@pytest.mark.parametrize("target", ["missing-folder/out.png", "file.txt/out.png", "out.xyz"])
def test_unwritable_outputs_fail_before_work(capsys, tmp_path, content_path, style_path, target):
    (tmp_path / "file.txt").write_text("a file, not a folder")
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", tmp_path / target, *FAST)
    assert code == 2 and err.count("\n") == 1, err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_read_only_folder(capsys, tmp_path, content_path, style_path):
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", "/proc/stylecraft-out.png", *FAST)
    assert code == 2 and "cannot write" in err


def test_debug_shows_traceback(capsys, tmp_path, style_path):
    code, err = run_cli(capsys, "transfer", tmp_path / "nope.jpg", style_path, "-o", tmp_path / "o.png", *FAST,
                        "--debug")
    assert code == 2 and "Traceback" in err


def test_non_finite_loss_keeps_last_good_image(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *FAST,
                        "--style-weight", "3e38", "--init", "noise")
    assert code == 1 and "the loss became" in err and "last good image" in err
    assert np.isfinite(np.asarray(Image.open(out), dtype=float)).all()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_and_exits_130(tmp_path, content_path, style_path, stop):
    out, snaps = tmp_path / "out.png", tmp_path / "snaps"
    # A shell without job control starts background commands with SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: the child gets the default disposition back, as a terminal's program has it.
    process = subprocess.Popen(
        [sys.executable, "-m", "stylecraft", "transfer", str(content_path), str(style_path), "-o", str(out),
         "--size", "64", "--iterations", "100000", "--save-every", "1", "--snapshots", str(snaps), "--quiet"],
        stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (snaps.is_dir() and len(list(snaps.glob("iter_*.png"))) >= 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(stop)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()  # never left running (100,000 iterations) when the test fails
    assert process.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert Image.open(out).size == (64, 48)
    assert (tmp_path / "out.png.resume.pt").is_file()  # what --resume goes on from


def test_too_large_for_memory_is_refused_before_work(capsys, tmp_path, content_path, style_path, monkeypatch):
    from stylecraft.runtime import Runtime

    monkeypatch.setattr(Runtime, "available_memory", lambda runtime: 50 * 2**20)
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "1024", "--quiet")
    assert code == 2 and "even tile by tile" in err and "use --size" in err and err.count("\n") == 1
    assert not out.exists()


def test_history_reports_peak_memory(capsys, tmp_path, content_path, style_path):
    from stylecraft.runtime import peak_rss

    before = peak_rss() / 2**20
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", tmp_path / "o.png", *FAST,
                        "--history", tmp_path / "h.json")
    after = peak_rss() / 2**20
    assert code == 0, err
    peak = json.loads((tmp_path / "h.json").read_text())["peak_memory_mb"]
    assert before <= peak <= after  # this process's peak, in MiB
    assert images.read_metadata(tmp_path / "o.png")["peak_memory_mb"] == peak


def test_scale_and_size_options(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "o.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "96", "--seed", "1",
                        "--quiet", "--min-size", "48", "--scale-iterations", "2,1", "--style-size", "40",
                        "--init", "style", "--precision", "fp32", "--history", tmp_path / "h.csv")
    assert code == 0, err
    rows = (tmp_path / "h.csv").read_text().splitlines()[1:]
    assert [row.split(",")[2] for row in rows] == ["48", "48", "96"]
    settings = images.read_metadata(out)
    assert settings["style_size"] == 40 and settings["scale_iterations"] == [2, 1]
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "96", "--seed", "1",
                        "--quiet", "--single-scale", "--iterations", "2", "--history", tmp_path / "h2.csv")
    assert code == 0, err
    assert all(row.split(",")[1] == "1" for row in (tmp_path / "h2.csv").read_text().splitlines()[1:])


@pytest.mark.parametrize("command", ["transfer", "train"])
def test_bad_weight_file_prints_its_error_alone(capsys, tmp_path, content_path, style_path, command):
    weights = tmp_path / "vgg19.pth"
    weights.write_bytes(b"not a weight file")
    out = tmp_path / ("out.png" if command == "transfer" else "model.pt")
    if command == "transfer":
        argv = ["transfer", content_path, style_path, "--size", "48", "--iterations", "3"]
    else:
        (tmp_path / "photos").mkdir()
        Image.open(content_path).save(tmp_path / "photos" / "a.png")
        argv = ["train", "--style", style_path, "--data", tmp_path / "photos", "--steps", "2", "--size", "64"]
    code, err = run_cli(capsys, *argv, "-o", out, "--weights", weights)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("stylecraft: error:") and "vgg19.pth" in err, err
    assert not out.exists()


def _numeric_options() -> list[tuple[str, str]]:
    """(command, option) for every option of every command that takes numbers."""
    from stylecraft.cli import parser as cli_parser

    found = []
    subparsers = next(a for a in cli_parser.build_parser()._actions if a.dest == "command")
    for command, parser in sorted(subparsers.choices.items()):
        for action in parser._actions:
            if action.type in (cli_parser.number, cli_parser.floats) and action.option_strings:
                found.append((command, action.option_strings[-1]))
    return found


@pytest.mark.parametrize(("command", "option"), _numeric_options())
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_numeric_option_refuses_nan_and_infinity(capsys, command, option, value):
    code, err = run_cli(capsys, command, f"{option}={value}")
    assert code == 2 and err.count("\n") == 1 and "finite number" in err and option in err, err


def test_numeric_options_are_found():
    assert {("serve", "--max-upload-mb"), ("transfer", "--style-weight"), ("train", "--lr"),
            ("transfer", "--style-layer-weights")} <= set(_numeric_options())


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(capsys, tmp_path, content_path, style_path):
    photo = tmp_path / "photo.png"
    Image.open(content_path).save(photo)
    before = photo.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    for argv in (["transfer", photo, style_path, "-o", photo], ["transfer", photo, style_path, "-o", link],
                 ["transfer", content_path, style_path, "-o", tmp_path / "out.png", "--plot", style_path],
                 ["grid", "transfer", "--content", photo, "--style", style_path, "-o", link]):
        code, err = run_cli(capsys, *argv, *FAST)
        assert code == 2 and err.count("\n") == 1 and "is the input" in err, err
    assert photo.read_bytes() == before and not (tmp_path / "out.png").exists()


def test_a_failed_train_leaves_no_samples_folder(capsys, tmp_path, style_path):
    (tmp_path / "photos").mkdir()
    code, err = run_cli(capsys, "train", "--style", style_path, "--data", tmp_path / "photos", "-o",
                        tmp_path / "model.pt", "--steps", "2", "--size", "64", "--quiet")
    assert code == 2 and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "style.png"]


def test_missing_extras_are_named_in_one_line(capsys, monkeypatch, tmp_path, content_path, style_path):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if `stylecraft[studio]` were not installed
    code, err = run_cli(capsys, "serve", "--data", tmp_path / "studio", "--port", "0")
    assert code == 2 and err.count("\n") == 1 and 'pip install "stylecraft[studio]"' in err, err
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *FAST, "--plot", tmp_path / "p.png")
    assert code == 2 and err.count("\n") == 1 and "--plot" in err and '"stylecraft[plot]"' in err, err
    assert not out.exists()


def test_the_library_imports_no_web_or_plotting_package():
    code = ("import sys, stylecraft, stylecraft.cli, stylecraft.api; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'matplotlib', 'onnxruntime', 'openvino') "
            "if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"


HEAVY = ("torch", "numpy", "PIL", "onnx", "onnxruntime", "fastapi", "pydantic", "av", "cv2", "skimage")


@pytest.mark.parametrize("words", [["--help"], ["transfer", "--help"], ["train", "--help"], ["serve", "--help"],
                                   ["video", "--help"], ["batch", "--help"], ["--version"],
                                   ["transfer", "--size", "big", "a", "b"],
                                   ["transfer", "--quality", "poster", "a", "b"], ["no-such-command"]])
def test_help_and_usage_errors_answer_without_loading_torch(words):
    code = ("import sys\nfrom stylecraft.cli import main\ntry:\n    code = main(sys.argv[1:])\n"
            "except SystemExit as done:\n    code = done.code\n"
            f"print(code, sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *words], capture_output=True, text=True, check=True)
    status, loaded = done.stdout.splitlines()[-1].split(" ", 1)
    assert loaded == "[]", f"{words}: {loaded}"
    assert status == ("0" if words[-1].startswith("--") else "2"), done.stderr
    if status == "2":
        assert done.stderr.count("\n") == 1 and "stylecraft: error:" in done.stderr, done.stderr


def test_import_stylecraft_offers_the_api_by_name():
    code = ("import sys, stylecraft\nassert 'torch' not in sys.modules\n"
            "print(all(callable(getattr(stylecraft, name)) for name in stylecraft.__all__), "
            "'transfer' in dir(stylecraft))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_bit_depth_16_writes_a_deep_png_and_refuses_a_jpeg_before_work(capsys, tmp_path, content_path, style_path):
    png = pytest.importorskip("png")
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", tmp_path / "deep.png", *FAST,
                        "--bit-depth", "16")
    assert code == 0, err
    assert png.Reader(filename=str(tmp_path / "deep.png")).read()[3]["bitdepth"] == 16
    assert images.read_metadata(tmp_path / "deep.png")["seed"] == 1
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", tmp_path / "deep.jpg", *FAST,
                        "--bit-depth", "16")
    assert code == 2 and err.count("\n") == 1 and "16 bits" in err and not (tmp_path / "deep.jpg").exists()


def test_tile_and_max_memory_reach_the_run(capsys, tmp_path, content_path, style_path):
    out = tmp_path / "tiled.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "64", "--iterations",
                        "2", "--seed", "1", "--single-scale", "--tile", "32", "--max-memory", "16")
    assert code == 0, err
    assert "plan:" in err and "tiles of 32 px" in err and "of 16.0 GiB free" in err
    assert images.read_metadata(out)["tile"] == 32


def test_the_progress_bar_shows_each_new_scale_at_once(capsys, tmp_path, content_path, style_path):
    # A print's largest scales take minutes an iteration: the bar must not show the previous scale meanwhile.
    out = tmp_path / "o.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "96", "--seed", "1",
                        "--min-size", "48", "--scale-iterations", "3,2")
    assert code == 0, err
    frames = err.replace("\r", "\n").splitlines()
    assert any("4/5" in f and "scale=2/2 96x72" in f for f in frames), frames  # the new scale's first iteration


def test_one_progress_bar_shows_every_kind_of_event(capsys):
    import argparse

    import torch

    from stylecraft.cli.commands import _ProgressBar
    from stylecraft.feedforward import TrainProgress
    from stylecraft.optimize import Progress
    from stylecraft.progress import Count

    events = [Progress(10, 40, 1.0, lambda: torch.zeros(1), 2, 3, (64, 48), {"total": torch.tensor(2.5)}, 4),
              TrainProgress(10, 20, {"total": 0.125, "style": 0.5}, 1.0, 12.0, 1, lambda: torch.zeros(1)),
              Count(10, 24, 1.0)]
    for event, shown in zip(events, ["loss=2.5, scale=2/3 64x48, tiles=4",
                                     "loss=0.125, style loss=0.5, skipped=1", ""], strict=True):
        with _ProgressBar("run", "it", argparse.Namespace(quiet=False)) as bar:
            bar(event)
            assert (bar.bar.n, bar.bar.total, bar.bar.postfix or "") == (10, event.total, shown)
        assert "run" in capsys.readouterr().err
    with _ProgressBar("run", "it", argparse.Namespace(quiet=True)) as bar:
        bar(events[2])
    assert capsys.readouterr().err == ""


def test_ctrl_c_in_a_grid_saves_the_cells_done_and_exits_130(capsys, tmp_path, content_path, style_path,
                                                              monkeypatch):
    from stylecraft.cli import commands

    seen: list[int] = []
    shown = commands._ProgressBar.__call__

    def press_ctrl_c(self, event) -> None:
        seen.append(event.step)
        if len(seen) == 5:  # the second cell's second iteration
            raise KeyboardInterrupt
        shown(self, event)

    monkeypatch.setattr(commands._ProgressBar, "__call__", press_ctrl_c)
    out = tmp_path / "grid.png"
    code, err = run_cli(capsys, "grid", "transfer", "--content", content_path, "--style", style_path, "--vary",
                        "style-weight=1,10,100", "-o", out, "--size", "48", "--iterations", "3", "--seed", "1")
    assert code == 130 and "interrupted; saved the grid so far" in err and "[3/3]" not in err, err
    assert seen == [1, 2, 3, 1, 2] and Image.open(out).height > 2 * 48


@pytest.mark.parametrize("command", ["transfer", "grid", "apply", "video", "batch"])
def test_tile_means_one_thing_and_its_help_says_so(capsys, command):
    from stylecraft.cli.parser import TILE_RULE, build_parser, command_parser

    text = " ".join(command_parser(build_parser(), [command]).format_help().split())
    assert f"--tile TILE {TILE_RULE}" in text
    if command == "video":  # one knob, two meanings, each named
        assert "With --model it is a blend weight" in text and "With --style it scales a loss weight" in text


def test_help_offers_only_what_a_command_takes_and_says_what_presets_do(capsys):
    for command, has_canvas in (("transfer", False), ("reconstruct", False), ("texture", True)):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown = capsys.readouterr().out
        assert ("--width" in shown) == has_canvas and ("--height" in shown) == has_canvas
        assert "draft 384 px, 160 iterations" in " ".join(shown.split())
        assert "print 3072 px, 1500 iterations" in " ".join(shown.split())


def test_a_run_that_leaves_the_full_size_too_few_iterations_says_so_before_it_starts(capsys, tmp_path,
                                                                                     content_path, style_path):
    out = tmp_path / "soft.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "128", "--iterations",
                        "6", "--min-size", "32", "--seed", "1")
    assert code == 0, err
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "gets 1 of" in warning[0] and "--iterations 75 or more" in warning[0], err
    plan = [line for line in err.splitlines() if line.startswith("plan: about")]
    assert len(plan) == 1 and re.search(r"; expected time about \d+ (s|min)$", plan[0]), err
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "128", "--iterations",
                        "75", "--min-size", "32", "--seed", "1", "--scale-iterations", "1,1,1,1,5")
    assert "warning" not in err


def test_resume_goes_on_from_an_interrupted_transfer_to_the_same_picture(capsys, tmp_path, content_path, style_path,
                                                                         monkeypatch):
    from stylecraft.cli import commands

    run = ["--size", "64", "--min-size", "32", "--iterations", "12", "--seed", "3", "--quiet"]
    whole, out = tmp_path / "whole.png", tmp_path / "out.png"
    assert run_cli(capsys, "transfer", content_path, style_path, "-o", whole, *run)[0] == 0
    shown = commands._ProgressBar.__call__

    def interrupt(bar, event):  # Ctrl-C in the middle of the second scale
        if event.step == 8:
            raise KeyboardInterrupt
        shown(bar, event)

    monkeypatch.setattr(commands._ProgressBar, "__call__", interrupt)
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *run)
    assert code == 130 and "interrupted" in err
    sidecar = tmp_path / "out.png.resume.pt"
    assert sidecar.is_file() and images.read_metadata(out)["iterations_done"] == 8
    monkeypatch.setattr(commands._ProgressBar, "__call__", shown)
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--size", "48", "--resume", out)
    assert code == 2 and err.count("\n") == 1 and "--resume" in err and "--size 64, not 48" in err, err
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--resume", out, "--quiet")
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(whole)))
    assert images.read_metadata(out)["quality"] == images.read_metadata(whole)["quality"]
    assert not sidecar.exists()  # finished: nothing left to resume


def test_huge_and_tiny_blend_weights_blend_as_their_proportions(capsys, tmp_path, content_path, style_path):
    """Before: 1e308,1e308 overflowed the weights' sum (float division by zero, exit 1) and 1e-320 became 0 in
    float32 (exit 1)."""
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, style_path, "--style-blend", "1e308,1e308",
                        "-o", out, *FAST)
    assert code == 0 and images.read_metadata(out)["style_blend"] == [1e308, 1e308], err
    pictures = {}
    for spec in ("great-wave:1e308,udnie:1e308", "great-wave,udnie", "great-wave:1e-320", "great-wave"):
        pictures[spec] = tmp_path / f"{len(pictures)}.png"
        code, err = run_cli(capsys, "apply", spec, content_path, "-o", pictures[spec], "--quiet")
        assert code == 0, err
    for a, b in (("great-wave:1e308,udnie:1e308", "great-wave,udnie"), ("great-wave:1e-320", "great-wave")):
        assert np.array_equal(np.asarray(Image.open(pictures[a])), np.asarray(Image.open(pictures[b])))


@pytest.mark.parametrize("spec", ["great-wave:1e400", "great-wave:nan", "great-wave:0,udnie:0"])
def test_a_blend_weight_that_is_no_usable_number_is_refused_in_one_line(capsys, tmp_path, content_path, spec):
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "apply", spec, content_path, "-o", out, "--quiet")
    assert code == 2 and err.count("\n") == 1 and "weight" in err and not out.exists(), err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_device_as_output_is_refused_in_one_line(capsys, tmp_path, content_path):
    """Before: `apply -o /dev/full` exited 1 with a raw "[Errno 17] File exists"."""
    for command in (["apply", "great-wave", content_path], ["transfer", content_path, content_path]):
        code, err = run_cli(capsys, *command, "-o", "/dev/full", "--quiet")
        assert code == 2 and err.count("\n") == 1 and "/dev/full" in err and "Errno" not in err, err
    assert Path("/dev/full").is_char_device()


def test_a_damaged_resume_file_is_refused_and_the_picture_kept(capsys, tmp_path, content_path, style_path,
                                                               monkeypatch):
    """Before: a resume file edited to done=10**12, NaN pixels or another width exited 0 and blackened the
    picture; and it was written 0644 although it holds the picture."""
    import torch

    from stylecraft.cli import commands

    run = ["--size", "48", "--min-size", "32", "--iterations", "6", "--seed", "3", "--quiet"]
    out = tmp_path / "out.png"
    shown = commands._ProgressBar.__call__

    def interrupt(bar, event):
        if event.step == 5:  # in the second scale
            raise KeyboardInterrupt
        shown(bar, event)

    monkeypatch.setattr(commands._ProgressBar, "__call__", interrupt)
    assert run_cli(capsys, "transfer", content_path, style_path, "-o", out, *run)[0] == 130
    monkeypatch.setattr(commands._ProgressBar, "__call__", shown)
    sidecar = tmp_path / "out.png.resume.pt"
    assert sidecar.stat().st_mode & 0o777 == 0o600
    good, picture = torch.load(sidecar, weights_only=True), out.read_bytes()
    pixels = good["pixels"]
    edits = {"done": {"done": 10**12}, "nan pixels": {"pixels": torch.full_like(pixels, float("nan"))},
             "width": {"pixels": pixels[..., :-4]}, "scale": {"scale": 9},
             "state": {"state": {**good["state"], "state": {0: {**good["state"]["state"][0],
                                                              "d": torch.full((3,), float("inf"))}}}}}
    for name, change in edits.items():
        torch.save({**good, **change}, sidecar)
        code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, "--resume", out, "--quiet")
        assert code == 2 and err.count("\n") == 1 and "cannot go on" in err, (name, err)
        assert out.read_bytes() == picture, name


def test_score_shows_a_progress_bar_and_quiet_hides_it(capsys, content_path, style_path):
    """Before: `score` printed nothing until every picture was scored (58 s for 3 on two busy cores)."""
    code, err = run_cli(capsys, "score", content_path, style_path, "--content", content_path, "--style", style_path)
    frames = err.replace("\r", "\n").splitlines()
    assert code == 0 and any(f.startswith("score:") and "2/2" in f for f in frames), err
    code, err = run_cli(capsys, "score", content_path, "--content", content_path, "--style", style_path, "--quiet")
    assert code == 0 and err == ""


def test_help_says_what_each_command_takes(capsys):
    """Before: `video --help` offered --model only as a model or ONNX file, `apply --help` explained --tile by the
    optimiser's scales, and `transfer photo.jpg` said only that -o was missing."""
    from stylecraft.cli.parser import build_parser, command_parser

    def shown(command):
        return " ".join(command_parser(build_parser(), [command]).format_help().split())

    assert "a built-in style's name or blend" in shown("video") and "a painting" in shown("video")
    tile = shown("apply").split("--tile TILE ")[1].split(" --device")[0]
    assert "optimiser" not in tile and "scale" not in tile, tile
    code, err = run_cli(capsys, "transfer", "photo.jpg")
    assert code == 2 and err.count("\n") == 1 and "-o/--output" in err and "one painting or more" in err, err


@pytest.mark.parametrize(("model", "extra", "message"), [
    ("great-wave", ["--size", "99999999999"], "--size must be 1 to 65536"),
    ("great-wave", ["--size", "20000"], "is more than the limit of 178,000,000; use --size 15405 or less"),
    ("painting", ["--size", "20000"], "is more than the limit of 178,000,000"),
    ("great-wave", ["--tile", "0"], "--tile must be 128 to 65536"),
    ("great-wave", ["--tile", "16"], "--tile must be 128 to 65536"),
    ("painting", ["--tile", "16"], "--tile must be 128 to 65536"),
    ("great-wave", ["--size", "8000"], "even in tiles of 128 px, but only 1.0 GiB is free; use --size"),
])
def test_apply_refuses_a_size_or_tile_it_cannot_paint_before_allocating(capsys, tmp_path, content_path,
                                                                        style_path, monkeypatch, model, extra,
                                                                        message):
    """Before: --size 20000 died in the allocator, --size 99999999999 overflowed torch's size calculation (exit 1),
    and --tile 0 or 16 ran for ever on a 96 px picture."""
    from stylecraft.runtime import Runtime

    monkeypatch.setattr(Runtime, "available_memory", lambda self: 2**30)
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "apply", style_path if model == "painting" else model, content_path, "-o", out,
                        "--quiet", *extra)
    assert code == 2 and err.count("\n") == 1 and message in err and not out.exists(), err


def test_apply_paints_in_exact_tiles_when_the_memory_says_so(capsys, tmp_path, content_path, monkeypatch):
    """The tile side comes down from the one asked for to the largest the memory free holds (tiles are exact:
    test_feedforward checks the picture), and the painting gets it."""
    from stylecraft.api import realtime
    from stylecraft.runtime import Runtime

    model = realtime.load_style_model("great-wave")
    free = {"bytes": 2**40}
    monkeypatch.setattr(Runtime, "available_memory", lambda self: free["bytes"])
    assert realtime.plan_tile(model, (3000, 2000), 1, None, "x") is None  # the default, 2048 px
    chosen = []
    for side in (1024, 512, 256, 128):
        free["bytes"] = int(realtime._needed(model, (3000, 2000), 1, side))
        chosen.append(realtime.plan_tile(model, (3000, 2000), 1, None, "x"))
    assert chosen == [1024, 512, 256, 128]
    tiles = []
    monkeypatch.setattr(realtime, "paint_tensor", lambda model, batch, *, tile, **k: tiles.append(tile) or batch)
    free["bytes"] = int(realtime._needed(model, (400, 300), 1, 128))
    out = tmp_path / "out.png"
    assert run_cli(capsys, "apply", "great-wave", content_path, "-o", out, "--size", "400", "--quiet")[0] == 0
    assert tiles == [128] and Image.open(out).size == (400, 300)


@pytest.mark.parametrize(("size", "message"), [("99999999", "--style-size must be 1 to 65536"),
                                               ("60000", "is more than the limit of 178,000,000")])
def test_a_painting_too_large_to_take_is_refused_before_allocating(capsys, tmp_path, content_path, style_path,
                                                                   size, message):
    """Before: `apply painting.png photo.jpg --style-size 99999999` died in the allocator (exit 1)."""
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "apply", style_path, content_path, "-o", out, "--style-size", size, "--quiet")
    assert code == 2 and err.count("\n") == 1 and message in err and not out.exists(), err


@pytest.mark.parametrize(("extra", "message"), [
    (["--size", "20000"], "the result: 20000 x 15000 pixels is more than the limit of 178,000,000; use --size 15405"),
    (["--size", "8192", "--style-scale", "16"], "a style image: 131072 x 131072 pixels is more than the limit"),
])
def test_transfer_refuses_a_result_or_style_over_the_pixel_limit_before_work(capsys, tmp_path, content_path,
                                                                             style_path, extra, message):
    out = tmp_path / "out.png"
    code, err = run_cli(capsys, "transfer", content_path, style_path, "-o", out, *FAST, *extra)
    assert code == 2 and err.count("\n") == 1 and message in err and not out.exists(), err


@pytest.mark.parametrize(("option", "value"), [("--size", "99999999"), ("--fps", "1e308"), ("--start", "1e308"),
                                               ("--duration", "0"), ("--batch-size", "0"), ("--tile", "16"),
                                               ("--frame-iterations", "99999999999")])
def test_video_options_have_bounds_checked_before_the_video_is_opened(capsys, tmp_path, option, value):
    out = tmp_path / "out.mp4"
    model = ["--style", "s.png"] if option == "--frame-iterations" else ["--model", "great-wave"]
    code, err = run_cli(capsys, "video", tmp_path / "missing.mp4", "-o", out, *model, option, value, "--quiet")
    assert code == 2 and err.count("\n") == 1 and f"{option} must be" in err and not out.exists(), err
