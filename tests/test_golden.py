"""Golden outputs: every command's picture for a fixed seed, compared with pictures made before a refactoring.

The references in ``tests/golden/`` were made by the code as it was before the architecture step (issue 11);
a change of behaviour (another start image, another loss normalisation, another schedule) moves pixels by
many levels, while another CPU's float rounding moves a few by one or two: the bound tells them apart.
``STYLECRAFT_GOLDEN=exact`` demands identical pictures (on the machine that made them);
``STYLECRAFT_GOLDEN=write`` makes the references again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image

from stylecraft.cli import main

GOLDEN = Path(__file__).parent / "golden"
MODE = os.environ.get("STYLECRAFT_GOLDEN", "compare")
SEED = ["--seed", "3"]
#: Where a contact sheet's pictures are: (left, top, right, bottom) of each 32 x 24 cell under the title.
CELLS = {"grid": [(8, 36, 40, 60), (8, 106, 40, 130)]}


def _inputs(folder: Path) -> dict[str, Path]:
    paths = {"content": folder / "content.png", "style": folder / "style.png", "photos": folder / "photos"}
    make_content(48, 36).save(paths["content"])
    make_style(40, 40).save(paths["style"])
    paths["photos"].mkdir()
    for seed in range(2):
        make_style(72, 64, seed=seed + 5).save(paths["photos"] / f"{seed}.png")
    make_content(80, 64).save(paths["photos"] / "scene.png")
    return paths


def _cases(p: dict[str, Path], out: Path) -> dict[str, list[object]]:
    model = out / "model.pt"
    return {
        "transfer": ["transfer", p["content"], p["style"], "--size", "48", "--iterations", "4", *SEED],
        "transfer-adam-avg-colour": ["transfer", p["content"], p["style"], "--size", "48", "--iterations", "4",
                                     "--optimizer", "adam", "--pooling", "avg", "--preserve-color",
                                     "--init", "noise", "--single-scale", *SEED],
        "transfer-init-file": ["transfer", p["content"], p["style"], "--size", "40", "--iterations", "3",
                               "--init", p["style"], "--style-layers", "relu1_1,relu3_1",
                               "--style-layer-weights", "1,3", *SEED],
        "reconstruct": ["reconstruct", p["content"], "--size", "48", "--iterations", "3",
                        "--content-layers", "relu2_2", *SEED],
        "texture": ["texture", p["style"], "--width", "40", "--height", "32", "--iterations", "3", *SEED],
        "grid": ["grid", "transfer", "--content", p["content"], "--style", p["style"], "--vary",
                 "style-weight=1,100", "--size", "32", "--iterations", "2", "--cell-size", "32", *SEED],
        "train-apply": (["train", "--style", p["style"], "--data", p["photos"], "-o", model, "--steps", "2",
                         "--size", "64", "--batch-size", "1", "--width", "compact", *SEED],
                        ["apply", model, p["content"]]),
        "export-apply": (["export", model, "-o", out / "model.onnx"], ["apply", out / "model.onnx", p["content"]]),
    }


def _run(argv: list[object], picture: Path) -> np.ndarray:
    code = main([str(a) for a in [*argv, "-o", picture, "--quiet"]])
    assert code == 0, argv
    with Image.open(picture) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    folder = tmp_path_factory.mktemp("golden")
    paths = _inputs(folder)
    found = {}
    for name, steps in _cases(paths, folder).items():
        if isinstance(steps, tuple):
            prepare, final = steps
            if name.startswith("export"):
                pytest.importorskip("onnxruntime")
            assert main([str(a) for a in [*prepare, "--quiet"]]) == 0
            steps = final
        found[name] = _run(steps, folder / f"{name}.png")
    return found


@pytest.mark.parametrize("name", sorted(_cases({k: Path(k) for k in ("content", "style", "photos")}, Path("."))))
def test_the_same_seed_gives_the_pictures_it_gave_before(outputs: dict[str, np.ndarray], name: str) -> None:
    reference = GOLDEN / f"{name}.png"
    if MODE == "write":
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(outputs[name].astype(np.uint8)).save(reference)
    with Image.open(reference) as image:
        expected = np.asarray(image.convert("RGB"), dtype=np.int16)
    got = outputs[name]
    assert got.shape == expected.shape
    if name in CELLS:  # the pictures only: captions are text, drawn by whatever font this Pillow bundles
        got, expected = (np.concatenate([a[top:bottom, left:right] for left, top, right, bottom in CELLS[name]])
                         for a in (got, expected))
        assert got.std() > 5  # real pictures, not the white between them
    difference = np.abs(got - expected)
    if MODE == "exact":
        assert difference.max() == 0, f"{name}: {int((difference > 0).sum())} values differ"
    assert difference.mean() <= 1.0 and difference.max() <= 12, (name, difference.mean(), difference.max())
