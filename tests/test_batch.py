"""`stylecraft batch` with the local engine: mirrored outputs, the manifest and resume, bad inputs, the optimiser.

The Ray engine's tests are in test_ray.py; both write the same pictures and records.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image

from stylecraft import api, images
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


def manifest(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]


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
    assert len(err) == 1 and "painted 4 picture(s)" in err[0] and "1 failed" in err[0] and "broken.jpg" in err[0]
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
