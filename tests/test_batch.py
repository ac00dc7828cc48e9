"""`stylecraft batch` with the local engine: mirrored outputs, the manifest and resume, bad inputs, the optimiser.

The Ray engine's tests are in test_ray.py; both write the same pictures and records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image

from stylecraft import api, images
from stylecraft.api import batch
from stylecraft.api.batch import BatchSettings, Item, collect, paint_with_model
from stylecraft.cli import main
from stylecraft.feedforward import TransformerNet, save_model


def photos(folder: Path, count: int = 4) -> list[Path]:
    """``count`` small pictures, half of them one folder down."""
    paths = []
    for index in range(count):
        path = folder / ("sub" if index % 2 else "") / f"photo{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        make_content(48 + 8 * index, 40).save(path)
        paths.append(path)
    return paths


def manifest(folder: Path) -> list[dict[str, Any]]:
    """The pictures' records (not the networks' loadings)."""
    return [r for r in map(json.loads, (folder / "manifest.jsonl").read_text().splitlines()) if "input" in r]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    save_model(TransformerNet(width=8), path, {"style": "stripes"})
    return path


def test_a_folder_mirrored_resumed_and_forced(tmp_path, model, capsys):
    inputs = photos(tmp_path / "in")
    (tmp_path / "in" / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "in"), "-o", str(out), "--model", str(model), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "painted 4 picture(s)" in err[0] and "1 picture(s) failed" in err[0], err
    assert "broken.jpg" in err[0]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "photo0.png", "photo2.png", "sub/photo1.png", "sub/photo3.png"]
    records = {Path(str(r["input"])).name: r for r in manifest(out)}
    assert records["broken.jpg"]["error"] and not (out / "sub" / "broken.png").exists()
    assert all(records[p.name]["error"] is None and float(records[p.name]["seconds"]) >= 0 for p in inputs)
    assert records["photo0.png"]["settings"]["model"] == str(model)
    expected = api.apply_model(str(model), inputs[1])  # the same picture as `apply` paints
    assert np.array_equal(np.asarray(Image.open(out / "sub" / "photo1.png")), np.asarray(expected))
    when = (out / "photo0.png").stat().st_mtime_ns
    (tmp_path / "in" / "sub" / "broken.jpg").unlink()
    assert main(["batch", str(tmp_path / "in"), "-o", str(out), "--model", str(model)]) == 0
    assert "4 skipped" in capsys.readouterr().err
    assert (out / "photo0.png").stat().st_mtime_ns == when and len(manifest(out)) == 5
    assert main(["batch", str(tmp_path / "in"), "-o", str(out), "--model", str(model), "--quiet", "--force"]) == 0
    assert len(manifest(out)) == 9
    # other settings are other pictures: painted again, not skipped
    assert main(["batch", str(tmp_path / "in"), "-o", str(out), "--model", str(model), "--quiet",
                 "--size", "32"]) == 0
    assert max(Image.open(out / "photo2.png").size) == 32


def test_globs_and_lists_of_paths(tmp_path):
    inputs = photos(tmp_path / "in")
    listing = tmp_path / "in" / "list.txt"
    listing.write_text("photo0.png\n# a comment\nsub/photo3.png\n")
    found = collect([str(tmp_path / "in" / "**" / "*.png")], tmp_path / "out")
    assert sorted(Path(i.output).relative_to(tmp_path / "out").as_posix() for i in found) == [
        "photo0.png", "photo2.png", "sub/photo1.png", "sub/photo3.png"]
    found = collect([listing], tmp_path / "out")
    assert [(Path(i.input).name, Path(i.output).relative_to(tmp_path / "out").as_posix()) for i in found] == [
        ("photo0.png", "photo0.png"), ("photo3.png", "sub/photo3.png")]
    assert len(collect([inputs[0]], tmp_path / "out")) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["nothing-here", "-o", "out", "--model", "great-wave"], "no such file"),
    (["a.png", "b/a.png", "-o", "out", "--model", "great-wave"], "would both be painted"),
    (["a.png", "-o", "out", "--model", "great-wave", "--quality", "draft"], "--quality goes with --style"),
    (["a.png", "-o", "out", "--model", "great-wave", "--workers", "2"], "go with --engine ray"),
    (["a.png", "-o", "a.png", "--model", "great-wave"], "is a file"),
    (["a.png", "-o", "out", "--model", "great-wave", "--precision", "bf16"], "a network runs fp32"),
])
def test_bad_requests_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    make_content().save("a.png")
    Path("b").mkdir()
    make_content().save("b/a.png")
    assert main(["batch", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not Path("out").exists()


def test_the_optimiser_one_picture_after_another(tmp_path):
    inputs = photos(tmp_path / "in", 2)
    make_style().save(tmp_path / "style.png")
    settings = BatchSettings(style=str(tmp_path / "style.png"), preset="draft", size=32, iterations=3, seed=1)
    result = api.paint_batch([tmp_path / "in"], tmp_path / "out", settings)
    assert len(result.painted) == 2 and not result.failed
    record = manifest(tmp_path / "out")[0]
    assert set(record["quality"]) >= {"content_distance", "style_distance"}  # type: ignore[arg-type]
    assert images.read_metadata(tmp_path / "out" / "photo0.png")["seed"] == 1  # type: ignore[index]
    assert Path(result.painted[0].input) in inputs


def test_a_retried_picture_of_the_same_run_is_not_painted_again(tmp_path, model):
    [photo] = photos(tmp_path, 1)
    settings = BatchSettings(model=str(model))
    loaded = api.load_style_model(str(model))
    item = Item(str(photo), str(tmp_path / "out.png"))
    [first] = paint_with_model(loaded, [item], settings, "run-1")
    when = Path(item.output).stat().st_mtime_ns
    [again] = paint_with_model(loaded, [item], settings, "run-1")
    assert again.error is None and again.seconds == first.seconds and Path(item.output).stat().st_mtime_ns == when
    list(paint_with_model(loaded, [item], settings, "run-2"))
    assert images.read_metadata(item.output)["batch"]["run"] == "run-2"  # type: ignore[index]


def test_a_rerun_says_what_was_skipped_what_failed_and_why(tmp_path, model, capsys):
    photos(tmp_path / "in", 2)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    argv = ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", str(model), "--quiet"]
    assert main(argv) == 1
    capsys.readouterr()
    assert main(argv) == 1  # nothing left to do but the corrupt picture, which fails again
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("stylecraft: error: 1 picture(s) failed (") and "broken.jpg: " in line, line
    assert "2 skipped (done before with these settings)" in line and "manifest.jsonl" in line


def test_the_output_folder_is_never_an_input(tmp_path, model):
    inputs = photos(tmp_path / "in", 2)
    argv = ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "in" / "painted"), "--model", str(model), "--quiet"]
    assert main(argv) == 0 and main(argv) == 0
    painted = sorted(p.relative_to(tmp_path / "in").as_posix() for p in (tmp_path / "in").rglob("*.png"))
    assert painted == sorted([p.relative_to(tmp_path / "in").as_posix() for p in inputs]
                             + ["painted/photo0.png", "painted/sub/photo1.png"])
    assert len(manifest(tmp_path / "in" / "painted")) == 2


def test_a_torn_manifest_line_is_skipped_with_a_warning_and_not_glued_to(tmp_path, model, capsys):
    photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    argv = ["batch", str(tmp_path / "in"), "-o", str(out), "--model", str(model), "--quiet"]
    assert main(argv) == 0
    text = (out / "manifest.jsonl").read_text()
    (out / "manifest.jsonl").write_text(text[:len(text) - 40])  # a run killed while writing its last record
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "cut short" in err
    lines = (out / "manifest.jsonl").read_text().splitlines()
    torn = [number for number, line in enumerate(lines) if not line.startswith("{") or not line.endswith("}")]
    assert len(torn) == 1 and json.loads(lines[-1])["input"].endswith("photo1.png")  # the lost one, painted again
    assert main(argv) == 0  # and a third run finds both done
    assert len((out / "manifest.jsonl").read_text().splitlines()) == len(lines)


def test_the_loading_of_a_network_is_recorded_apart_from_the_pictures(tmp_path, model):
    photos(tmp_path / "in", 3)
    result = api.paint_batch([tmp_path / "in"], tmp_path / "out", BatchSettings(model=str(model), batch_size=2))
    [loading] = result.loadings
    lines = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert lines[0] == {"loading": str(model), "seconds": loading.seconds, "worker": loading.worker}
    assert loading.seconds > 0 and str(os.getpid()) in loading.worker
    records = manifest(tmp_path / "out")
    assert len(records) == 3 and all(r["quality"] is None and r["seconds"] > 0 for r in records)
    # what the batch guide promises the manifest holds, for a network too
    guide = (Path(__file__).resolve().parents[1] / "docs" / "batch.md").read_text()
    assert "null for a network" in guide and "loading" in guide.split("manifest.jsonl", 1)[1][:900]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_first_signal_stops_the_whole_batch_in_the_optimiser(tmp_path, monkeypatch, capsys, stop):
    """The signal comes from the second picture's own optimisation loop, at its second iteration."""
    inputs = photos(tmp_path / "in", 3)
    make_style().save(tmp_path / "style.png")
    real, started, steps = batch.run, [], []

    def signal_once(event: Any) -> None:
        steps.append(event.step)
        if event.step >= 2 and len(steps) == 2:
            os.kill(os.getpid(), stop)

    def run_and_signal(*args: Any, **options: Any) -> Any:
        started.append(args[1])
        if len(started) == 2:
            options["callbacks"] = [signal_once]
        return real(*args, **options)

    monkeypatch.setattr(batch, "run", run_and_signal)
    # A shell without job control starts a background pytest with SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler (the two suites where this failed were started so): a terminal's handler here.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    out = tmp_path / "out"
    try:
        code = main(["batch", str(tmp_path / "in"), "-o", str(out), "--style", str(tmp_path / "style.png"),
                     "--size", "32", "--iterations", "20", "--quiet"])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130, (started, steps[:5], capsys.readouterr().err)  # what the second picture's loop saw
    assert len(started) == 2  # the third picture never started
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("stylecraft: interrupted; painted 1 picture(s)") and "2 picture(s) left" in line, line
    records = {Path(r["input"]).name: r for r in manifest(out)}
    assert records["photo0.png"]["error"] is None and records["photo2.png"]["error"] == "interrupted"
    assert set(records) == {"photo0.png", "photo2.png"} and Image.open(out / "photo0.png").size == (32, 27)
    assert not (out / "photo2.png").exists() and not (out / "sub").exists() and inputs


def test_ctrl_c_stops_a_batch_process_keeps_what_is_done_and_a_rerun_completes_it(tmp_path):
    """One SIGINT to a real `stylecraft batch` soon after its first picture is recorded: wherever it lands in the
    picture under way (its set-up, its optimisation loop; the second, or the third on a fast CPU), the batch stops
    there, records that picture as interrupted, keeps the ones done and exits 130; the same command finishes."""
    photos(tmp_path / "in", 3)
    make_style().save(tmp_path / "style.png")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "stylecraft", "batch", str(tmp_path / "in"), "-o", str(out),
            "--style", str(tmp_path / "style.png"), "--size", "32", "--iterations", "20", "--quiet"]
    # SIGINT back to its default in the child (a shell without job control would start it ignored)
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 300
        while not ((out / "manifest.jsonl").exists() and manifest(out)) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the next picture under way, not the moment between two
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and "Traceback" not in err, err
    errors = [r["error"] for r in manifest(out)]
    assert errors in ([None, "interrupted"], [None, None, "interrupted"]), errors
    done = {out / Path(r["output"]).relative_to(out) for r in manifest(out) if r["error"] is None}
    before = {path: (path.stat().st_mtime_ns, np.asarray(Image.open(path))) for path in done}
    assert all(pixels.shape[:2] == (27, 32) for _, pixels in before.values()) and not list(out.rglob(".*.part"))
    again = subprocess.run(argv[:-1], capture_output=True, text=True, timeout=300)  # not --quiet: it says so
    assert again.returncode == 0 and f"{len(done)} picture(s) done before, skipped" in again.stderr, again.stderr
    for path, (when, pixels) in before.items():
        assert path.stat().st_mtime_ns == when and np.array_equal(np.asarray(Image.open(path)), pixels)
    assert sorted(Path(r["input"]).name for r in manifest(out) if r["error"] is None) == [
        "photo0.png", "photo1.png", "photo2.png"]


def test_ctrl_c_in_a_network_batch_records_the_batch_under_way_and_starts_no_other(tmp_path, model, monkeypatch):
    photos(tmp_path / "in", 6)
    real, batches = batch.apply_many, []

    def interrupted_at_the_second(*args: Any, **options: Any) -> Any:
        batches.append(args[1])
        if len(batches) == 2:
            raise KeyboardInterrupt
        return real(*args, **options)

    monkeypatch.setattr(batch, "apply_many", interrupted_at_the_second)
    result = api.paint_batch([tmp_path / "in"], tmp_path / "out", BatchSettings(model=str(model), batch_size=2))
    assert result.stopped == "interrupted" and len(batches) == 2 and result.left == 4
    assert [Path(r.input).name for r in result.painted] == ["photo0.png", "photo2.png"]
    assert [Path(r.input).name for r in result.interrupted] == ["photo4.png", "photo1.png"]
    assert {r["error"] for r in manifest(tmp_path / "out")} == {None, "interrupted"}
