"""The quality numbers (stylecraft.quality), `stylecraft score`, and the report every transfer carries."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image

from stylecraft import api, images, quality
from stylecraft.cli import main


def test_sliced_wasserstein_is_a_distance_between_colour_clouds():
    rng = np.random.default_rng(1)
    cloud = rng.normal(size=(4000, 3))
    assert quality.sliced_wasserstein(cloud, cloud) == 0
    shifted = cloud + np.array([3.0, 0.0, 0.0])
    far = quality.sliced_wasserstein(cloud, shifted)
    # a shift t moves each projection on direction d by t.d: the mean of |t.d| over random unit directions
    assert 1.2 < far < 1.8  # 3 * E|d_x| = 3 * 1/2 for uniform directions in 3-D, up to the 64 fixed ones
    assert quality.sliced_wasserstein(cloud, cloud + np.array([6.0, 0.0, 0.0])) == pytest.approx(2 * far, rel=1e-6)
    assert quality.sliced_wasserstein(shifted, cloud) == pytest.approx(far)


def test_the_photo_and_the_painting_score_at_the_ends_of_each_scale():
    photo, painting = make_content(96, 72), make_style(80, 80)
    as_photo = api.score(photo, photo, painting)
    assert as_photo.content_distance == pytest.approx(0, abs=1e-6)
    assert as_photo.colour_distance == pytest.approx(1) and as_photo.structure_kept == pytest.approx(1)
    assert as_photo.style_distance > 0.3
    as_painting = api.score(painting, photo, painting)
    # the painting too is compared on the photo's canvas, which changes its shape: close, not equal
    assert as_painting.style_distance < 0.5 * as_photo.style_distance and as_painting.colour_distance < 0.05
    assert as_painting.content_distance > 0.5 and as_painting.structure_kept < 0.5


def test_the_numbers_follow_what_changes():
    """Each number moves with the property it names: the photo given the painting's colour statistics (each
    channel's mean and spread) comes closer in colour; blurring loses structure and content."""
    photo, painting = make_content(96, 72), make_style(80, 80)
    x, p = images.to_tensor(photo), images.to_tensor(painting)
    spread = (x - x.mean((2, 3), keepdim=True)) / x.std((2, 3), keepdim=True)
    recoloured = images.to_pil((spread * p.std((2, 3), keepdim=True) + p.mean((2, 3), keepdim=True)).clamp(0, 1))
    blurred = photo.resize((24, 18)).resize(photo.size)
    base, shifted, soft = (api.score(picture, photo, painting) for picture in (photo, recoloured, blurred))
    assert shifted.colour_distance < base.colour_distance - 0.2
    assert soft.structure_kept < base.structure_kept - 0.1 and soft.content_distance > 0.1
    assert soft.colour_distance == pytest.approx(base.colour_distance, abs=0.1)


def test_a_transfer_carries_its_quality(tmp_path, capsys):
    photo, painting, out = tmp_path / "photo.png", tmp_path / "painting.png", tmp_path / "out.png"
    make_content().save(photo)
    make_style().save(painting)
    assert main(["transfer", str(photo), str(painting), "-o", str(out), "--iterations", "20", "--seed", "3"]) == 0
    said = capsys.readouterr().err
    stored = images.read_metadata(out)["quality"]
    assert set(stored) == {"content_distance", "style_distance", "colour_distance", "structure_kept"}
    rescored = api.score(out, photo, painting).as_dict()
    assert all(abs(rescored[k] - stored[k]) < 0.02 for k in stored)  # the same numbers, from the saved 8-bit file
    assert f"content distance {stored['content_distance']:.3f}" in said
    assert f"colour distance {stored['colour_distance']:.2f}" in said
    result = api.run("transfer", photo, [painting, painting], iterations=2, seed=1)
    assert "quality" not in result.settings  # two styles: there is no one painting to score against
    stop = threading.Event()
    stop.set()
    cancelled = api.run("transfer", photo, [painting], iterations=5, seed=1, stop=stop)
    assert cancelled.stopped == "cancelled" and "quality" not in cancelled.settings  # a stopped run ends at once


def test_cli_score_prints_a_table_or_json(tmp_path, capsys):
    photo, painting = tmp_path / "photo.png", tmp_path / "painting.jpg"
    make_content().save(photo)
    make_style().save(painting)
    assert main(["score", str(photo), str(painting), "--content", str(photo), "--style", str(painting)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["picture", "content", "style", "colour", "structure"]
    assert table[1].split()[1:] == ["0.000", table[1].split()[2], "1.00", "1.00"]
    assert "lower is closer" in table[-1] and "higher keeps more" in table[-1]  # which way each is better
    assert main(["score", str(painting), "--content", str(photo), "--style", str(painting), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found[0]["picture"] == str(painting) and found[0]["colour_distance"] < 0.05


@pytest.mark.parametrize("bad", ["missing.png", "not-a-picture.png"])
def test_cli_score_refuses_bad_input_in_one_line(tmp_path, capsys, bad):
    photo = tmp_path / "photo.png"
    make_content().save(photo)
    (tmp_path / "not-a-picture.png").write_bytes(b"nothing")
    assert main(["score", str(tmp_path / bad), "--content", str(photo), "--style", str(photo)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stylecraft: error:") and "\n" not in err and "Traceback" not in err


def test_a_smaller_picture_is_compared_on_the_photo_canvas():
    photo, painting = make_content(128, 96), make_style()
    small = Image.fromarray(np.asarray(photo)).resize((64, 48))
    assert api.score(small, photo, painting).content_distance < 0.5


def test_the_last_line_names_quality_numbers_apart_from_losses_and_says_which_way_is_better():
    line = quality.Quality(0.5, 0.25, 0.3, 0.6).describe()
    assert line == ("content distance 0.500, style distance 0.250, colour distance 0.30 (lower is closer), "
                    "structure kept 0.60 (higher keeps more of the photo)")
