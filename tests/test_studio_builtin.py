"""The studio's built-in styles: listed beside the models folder's files, their paintings, previews of an
upload in each (kept beside it and removed with it), a job by a built-in style's name, and a painting copied
into the uploads for the optimiser."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import make_content
from PIL import Image
from test_studio import finished, studio, upload, wait_for

from stylecraft import api, images
from stylecraft.feedforward import TransformerNet, save_model, styles
from stylecraft.studio.previews import PREVIEW_SIDE

pytest.importorskip("fastapi")
pytestmark = pytest.mark.skipif(not styles.builtin_file().is_file(), reason="no built-in styles in this tree")

NAMES = styles.names(styles.load_builtin()) if styles.builtin_file().is_file() else []


def test_the_built_in_styles_are_listed_before_the_models_folder_files(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    save_model(TransformerNet(width=4, residual_blocks=1), models / f"{NAMES[0]}.pt", {"style": "stripes"})
    with studio(tmp_path, models=models) as client:
        listed = client.get("/api/models").json()
        assert client.get("/api/info").json()["models"] == listed
    assert [m["name"] for m in listed] == [*NAMES, f"{NAMES[0]}.pt"]  # a file keeps its suffix: no clash
    first = listed[0]
    assert first["builtin"] is True and listed[-1]["builtin"] is False
    assert set(first) == {"name", "title", "artist", "year", "builtin"}
    assert first["title"] and first["artist"] and isinstance(first["year"], int)


def test_a_painting_is_served_and_an_unknown_name_is_refused(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        response = client.get(f"/api/styles/{NAMES[0]}/painting")
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        assert response.content == styles.painting_file(NAMES[0]).read_bytes()
        assert client.head(f"/api/styles/{NAMES[0]}/painting").status_code == 200
        for name in ("nope", "styles.pt", f"{NAMES[0]}.jpg"):  # names only: no file is ever looked up
            refused = client.get(f"/api/styles/{name}/painting")
            assert refused.status_code == 404
            assert refused.json()["error"].startswith("no built-in style")
            assert all(name in refused.json()["error"] for name in NAMES)


def test_previews_are_painted_once_kept_beside_the_upload_and_removed_with_it(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        photo = upload(client, make_content(640, 480), "photo.png")
        address = f"/api/uploads/{photo}/styles/{NAMES[1]}"
        first = client.get(address)
        assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
        assert first.headers["cache-control"] == "no-store"
        assert Image.open(io.BytesIO(first.content)).size == (PREVIEW_SIDE, PREVIEW_SIDE * 3 // 4)
        kept = tmp_path / "data" / "uploads" / f"{photo}.styles"
        assert (kept / f"{NAMES[1]}.jpg").read_bytes() == first.content
        (kept / f"{NAMES[1]}.jpg").write_bytes(b"kept")  # a second request reads the file, paints nothing
        assert client.get(address).content == b"kept"

        small = upload(client, make_content(), "small.png")  # smaller than a preview: painted at its size
        assert Image.open(io.BytesIO(client.get(f"/api/uploads/{small}/styles/{NAMES[0]}").content)).size == (64, 48)

        assert client.get(f"/api/uploads/{photo}/styles/nope").status_code == 404
        missing = client.get(f"/api/uploads/{'0' * 16}/styles/{NAMES[0]}")
        assert missing.status_code == 404 and "no uploaded picture" in missing.json()["error"]

        job = client.post("/api/jobs", json={"content": photo, "method": "model", "model": NAMES[0], "size": 32})
        wait_for(client, job.json()["id"], finished)
        assert client.delete(f"/api/jobs/{job.json()['id']}").status_code == 204
        assert not kept.exists()  # removed with the upload
        assert client.get(address).status_code == 404


def test_a_job_paints_with_a_built_in_style_by_name(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        photo = upload(client, make_content(), "photo.png")
        response = client.post("/api/jobs", json={"content": photo, "method": "model", "model": NAMES[2],
                                                  "size": 48})
        assert response.status_code == 201, response.text
        done = wait_for(client, response.json()["id"], finished)
        assert done["state"] == "done", done
        result = Image.open(io.BytesIO(client.get(done["result"]).content))
        assert result.size == (48, 36)
        assert json.loads(result.text["stylecraft"])["model"] == NAMES[2]
        refused = client.post("/api/jobs", json={"content": photo, "method": "model", "model": "nope"})
        assert refused.status_code == 404 and NAMES[2] in refused.json()["error"]


def test_a_job_paints_the_blends_apply_takes(tmp_path: Path) -> None:
    """Before: the studio refused "great-wave:0.7,udnie:0.3" (no model ...), a blend `apply` paints."""
    blend = f"{NAMES[0]}:0.7,{NAMES[1]}:0.3"
    photo = make_content()
    with studio(tmp_path) as client:
        body = {"content": upload(client, photo, "photo.png"), "method": "model", "model": blend, "size": 48}
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        done = wait_for(client, response.json()["id"], finished)
        assert done["state"] == "done", done
        result = Image.open(io.BytesIO(client.get(done["result"]).content)).convert("RGB")
        bad = client.post("/api/jobs", json={**body, "model": f"{NAMES[0]}:0.7,nope:0.3"})
        assert bad.status_code == 400 and "unknown style 'nope'" in bad.json()["error"], bad.text
    expected = api.apply_model(blend, photo, size=48, device="cpu")
    assert np.abs(np.asarray(result, np.int16) - np.asarray(expected, np.int16)).max() <= 1


def test_a_painting_becomes_a_style_upload_for_the_optimiser(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        response = client.post(f"/api/styles/{NAMES[0]}/upload")
        assert response.status_code == 201, response.text
        painting = response.json()
        title = next(m["title"] for m in client.get("/api/models").json() if m["name"] == NAMES[0])
        assert painting["kind"] == "picture" and painting["name"] == title
        shipped = images.load_image(styles.painting_file(NAMES[0]))
        assert (painting["width"], painting["height"]) == shipped.size
        stored = Image.open(io.BytesIO(client.get(painting["image"]).content))
        assert stored.convert("RGB").tobytes() == shipped.tobytes()

        photo = upload(client, make_content(), "photo.png")
        job = client.post("/api/jobs", json={"content": photo, "styles": [painting["id"]], "size": 64,
                                             "iterations": 4})
        assert job.status_code == 201, job.text
        done = wait_for(client, job.json()["id"], finished)
        assert done["state"] == "done" and done["styles"][0]["name"] == title, done
        assert client.post("/api/styles/nope/upload").status_code == 404


def test_a_video_previews_its_first_frame_and_is_painted_in_a_built_in_style(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from test_video import HEIGHT, WIDTH, make_clip  # noqa: PLC0415 - needs PyAV, checked above

    clip = make_clip(tmp_path / "pan.mp4").read_bytes()
    with studio(tmp_path) as client:
        response = client.post("/api/uploads", files={"file": ("clip.mp4", clip, "video/mp4")})
        assert response.status_code == 201 and response.json()["kind"] == "video", response.text
        video = response.json()["id"]
        preview = client.get(f"/api/uploads/{video}/styles/{NAMES[0]}")
        assert preview.status_code == 200
        assert Image.open(io.BytesIO(preview.content)).size == (WIDTH, HEIGHT)  # its first frame, at its size
        job = client.post("/api/jobs", json={"content": video, "method": "model", "model": NAMES[0], "size": 64})
        assert job.status_code == 201, job.text
        done = wait_for(client, job.json()["id"], finished)
        assert done["state"] == "done" and client.get(done["result"]).headers["content-type"] == "video/mp4", done


def test_previews_count_against_the_storage_quota(tmp_path: Path) -> None:
    with studio(tmp_path, max_storage_mb=0.05) as client:
        photo = upload(client, make_content(), "photo.png")
        (tmp_path / "data" / "jobs" / "filler").write_bytes(bytes(60_000))
        full = client.get(f"/api/uploads/{photo}/styles/{NAMES[0]}")
        assert full.status_code == 507 and "storage is full" in full.json()["error"]
