"""Regional jobs in the studio: a region map painted in the page's brush colours becomes the masks of its colours,
each region takes its own painting, and bad maps are refused in one line before anything is queued."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image, ImageDraw
from test_regions import STYLE, _checker, _gram_distance, net  # noqa: F401 - net is a fixture
from test_studio import finished, studio, upload, wait_for

from stylecraft import images
from stylecraft.api.masks import MIN_SHARE
from stylecraft.studio import regions

pytest.importorskip("fastapi")

RED, GREEN, BLUE, YELLOW = (regions.BRUSHES[name] for name in ("red", "green", "blue", "yellow"))
PHOTO = (64, 48)


def painted(size: tuple[int, int], strokes: list[tuple[str, tuple[int, int, int, int]]]) -> Image.Image:
    """A region map as the page paints one: brush colours over black, with soft (anti-aliased) edges; each
    stroke a colour and a box in fractions of 100 of the map."""
    width, height = size
    big = Image.new("RGB", (width * 4, height * 4), regions.BACKGROUND)
    draw = ImageDraw.Draw(big)
    for colour, (left, top, right, bottom) in strokes:
        draw.rounded_rectangle([left * width * 4 // 100, top * height * 4 // 100, right * width * 4 // 100,
                                bottom * height * 4 // 100], radius=6, fill=colour)
    return big.resize(size, Image.Resampling.LANCZOS)


HALVES = [(RED, (0, 0, 50, 100)), (GREEN, (50, 0, 100, 100))]


def test_the_info_offers_the_brushes(tmp_path) -> None:
    with studio(tmp_path) as client:
        brushes = client.get("/api/info").json()["brushes"]
    assert brushes == {"colours": regions.BRUSHES, "background": "#000000", "min_share": MIN_SHARE}


def test_a_painted_map_becomes_the_masks_of_its_colours(tmp_path) -> None:
    strokes = [(RED, (5, 5, 45, 45)), (GREEN, (55, 5, 95, 45)), (BLUE, (5, 55, 45, 95)), (YELLOW, (55, 55, 95, 95)),
               (RED, (40, 40, 60, 60))]  # over the others' corners: a red square in the middle
    with studio(tmp_path) as client:
        photo = upload(client, make_content(*PHOTO), "photo.png")
        styles = [upload(client, make_style(seed=seed), f"{seed}.png") for seed in range(4)]
        mapped = upload(client, painted((160, 120), strokes), "regions.png")  # the photo's shape, larger
        store = client.app.state.store
        regions.check(store, store.upload(photo), regions.RegionMap(map=mapped, colours=[YELLOW, RED, GREEN, BLUE]),
                      styles)
        found = [np.asarray(m) > 127 for m in regions.masks(store, {"map": mapped, "colours": [YELLOW, RED, GREEN,
                                                                                                BLUE]})]
    yellow, red, green, blue = found
    assert red[12:48, 12:68].all() and red[56:64, 72:88].all() and not red[:, 100:].any()
    assert green[12:48, 92:148].all() and blue[72:108, 12:48].all() and yellow[72:108, 112:148].all()
    assert not green[:, :80].any() and not blue[:60].any() and not yellow[:, :80].any()
    assert not any(m[2, 2] or m[117, 80] for m in found)  # black: no region, the photo is kept
    assert (np.sum(found, axis=0) <= 1).all()  # every pixel in one region at most, the soft edges too


def test_a_region_job_paints_each_half_in_its_own_painting(tmp_path, net) -> None:  # noqa: F811 - the fixture
    red, green = make_style(64, 64, seed=0), _checker()
    with studio(tmp_path) as client:
        body = {"content": upload(client, make_content(*PHOTO), "photo.png"),
                "styles": [upload(client, red, "red.png"), upload(client, green, "green.png")],
                "regions": {"map": upload(client, painted((128, 96), HALVES), "regions.png"),
                            "colours": [RED, GREEN]},
                "size": 64, "iterations": 30, "seed": 1}
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        job = wait_for(client, response.json()["id"], finished, timeout=300)
        assert job["state"] == "done", job
        assert job["options"]["regions"] == body["regions"]
        picture = images.to_tensor(images.load_image(client.get(job["result"]).content))
    assert picture.shape[-2:] == (48, 64)
    paintings = [images.to_tensor(style) for style in (red, green)]
    for own, side in enumerate((picture[..., :, :28], picture[..., :, 36:])):  # without the band where they meet
        distances = [_gram_distance(net, side, painting) for painting in paintings]
        assert distances[own] < distances[1 - own], (own, distances)


NOISE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8), "RGB")
BAD = [  # (the map, its colours, how many styles, the words of the refusal)
    (painted(PHOTO, []), [RED], 1, "the map is empty; paint at least one region"),
    (painted(PHOTO, HALVES), [RED], 1, "the green region has no painting; choose one for it, or erase it"),
    (painted(PHOTO, HALVES[:1]), [RED, GREEN], 2, "green has a painting but is not painted on the photo"),
    (painted((100, 100), HALVES), [RED, GREEN], 2, "the map is 100 x 100 px and the photo 64 x 48: paint the map"),
    (painted(PHOTO, HALVES), [RED, GREEN], 1, "2 colour(s) for 1 painting(s)"),
    (painted(PHOTO, HALVES), [RED, RED.upper()], 2, "a colour is given twice"),
    (NOISE, [RED], 1, "the map: the picture has no flat colours (none covers 0.5% of it)"),
]


@pytest.mark.parametrize(("picture", "colours", "count", "words"), BAD)
def test_bad_region_maps_are_refused_in_one_line(tmp_path, picture, colours, count, words) -> None:
    with studio(tmp_path) as client:
        body = {"content": upload(client, make_content(*PHOTO), "photo.png"),
                "styles": [upload(client, make_style(seed=seed), f"{seed}.png") for seed in range(count)],
                "regions": {"map": upload(client, picture, "regions.png"), "colours": colours},
                "size": 64, "iterations": 2}
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == f"regions: {response.json()['error'].removeprefix('regions: ')}"
        assert words in response.json()["error"] and "\n" not in response.json()["error"]
        assert client.get("/api/jobs").json() == []


def test_malformed_regions_are_refused_before_any_map_is_read(tmp_path) -> None:
    with studio(tmp_path) as client:
        photo, style = upload(client, make_content(*PHOTO)), upload(client, make_style())
        mapped = upload(client, painted(PHOTO, HALVES), "regions.png")
        cases = [({"map": mapped, "colours": ["red"]}, {}, 422, "regions.colours.0: String should match pattern"),
                 ({"map": mapped, "colours": []}, {}, 422, "regions.colours: List should have at least 1 item"),
                 ({"map": "0" * 16, "colours": [RED]}, {}, 404, "no uploaded picture"),
                 ({"map": mapped, "colours": [RED]}, {"method": "model", "model": "x"}, 400,
                  "regions are painted with the optimiser"),
                 ({"map": mapped, "colours": [RED, GREEN]}, {"styles": [style, style]}, 400,
                  "the same painting is chosen for two colours")]
        for given, changes, status, words in cases:
            body = {"content": photo, "styles": [style], "regions": given, "size": 64, "iterations": 2, **changes}
            response = client.post("/api/jobs", json=body)
            assert response.status_code == status and words in response.json()["error"], (given, response.text)
        assert client.get("/api/jobs").json() == []


def test_the_map_is_kept_with_its_job_and_removed_with_it(tmp_path) -> None:
    with studio(tmp_path) as client:
        mapped = upload(client, painted(PHOTO, [HALVES[0]]), "regions.png")
        body = {"content": upload(client, make_content(*PHOTO)), "styles": [upload(client, make_style())],
                "regions": {"map": mapped, "colours": [RED]}, "size": 64, "iterations": 2}
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        job = wait_for(client, response.json()["id"], finished)
        assert job["state"] == "done", job
        assert client.app.state.store.remove_unused_uploads(older_than=0) == 0  # the map is in use
        assert client.get(f"/api/uploads/{mapped}/image").status_code == 200
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert client.get(f"/api/uploads/{mapped}/image").status_code == 404
