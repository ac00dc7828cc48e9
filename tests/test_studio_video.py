"""The studio's videos: a short clip uploaded (within limits on bytes, seconds and pixels), painted with a
real-time model, followed frame by frame, stopped with the frames so far kept, and played back."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest
from conftest import make_style
from PIL import Image
from test_studio import finished, started, studio, upload, wait_for
from test_video import HEIGHT, WIDTH, describe, make_clip

from stylecraft.feedforward import TransformerNet, save_model
from stylecraft.studio.store import JobStore

pytest.importorskip("av")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    save_model(TransformerNet(width=4, residual_blocks=1), folder / "tiny.pt", {"style": "stripes"})
    return folder


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clips") / "pan.mp4").read_bytes()


def send(client, data: bytes, name: str = "clip.mp4"):
    return client.post("/api/uploads", files={"file": (name, data, "video/mp4")})


def test_a_video_is_uploaded_painted_with_a_model_and_played_back(tmp_path, models, clip) -> None:
    with studio(tmp_path, models=models) as client:
        response = send(client, clip)
        assert response.status_code == 201, response.text
        video = response.json()
        assert (video["kind"], video["width"], video["height"]) == ("video", WIDTH, HEIGHT)
        assert video["seconds"] == pytest.approx(2.0)
        thumb = Image.open(io.BytesIO(client.get(video["thumbnail"]).content))
        assert thumb.size == (WIDTH, HEIGHT)
        job = client.post("/api/jobs", json={"content": video["id"], "method": "model", "model": "tiny.pt",
                                             "size": 64}).json()
        assert job["content"]["kind"] == "video"
        done = wait_for(client, job["id"], finished)
        assert done["state"] == "done" and done["iteration"] == done["iterations"] == 24, done
        result = client.get(done["result"])
        assert result.headers["content-type"] == "video/mp4"
        painted = tmp_path / "painted.mp4"
        painted.write_bytes(result.content)
        made = describe(painted)
        assert made["frames"] == 24 and made["size"] == (64, 42) and made["audio"] == "aac"
        assert "stylecraft-" in client.get(done["download"]).headers["content-disposition"]
        assert Image.open(io.BytesIO(client.get(done["thumbnail"]).content)).size[0] <= 64


def test_the_optimiser_is_refused_for_a_video_with_a_reason(tmp_path, models, clip) -> None:
    with studio(tmp_path, models=models) as client:
        video = send(client, clip).json()["id"]
        style = upload(client, make_style())
        refused = client.post("/api/jobs", json={"content": video, "styles": [style], "size": 64})
        assert refused.status_code == 400 and "stylecraft video --style" in refused.json()["error"]
        large = client.post("/api/jobs", json={"content": video, "method": "model", "model": "tiny.pt",
                                               "size": 4096})
        assert large.status_code == 400 and "pixels a frame" not in large.json()["error"]
        assert "frame, more than this studio's limit" in large.json()["error"]


def test_video_limits_on_bytes_seconds_and_pixels(tmp_path, models, clip) -> None:
    with studio(tmp_path, models=models, max_video_seconds=1.5) as client:
        long = send(client, clip)
        assert long.status_code == 400 and "longer than this studio's limit of 1.5 s" in long.json()["error"]
    with studio(tmp_path, models=models, max_video_pixels=WIDTH * HEIGHT - 1) as client:
        wide = send(client, clip)
        assert wide.status_code == 400 and "pixels a frame" in wide.json()["error"]
    with studio(tmp_path, models=models, max_video_mb=len(clip) / 2**20 / 2, max_upload_mb=0.01) as client:
        heavy = send(client, clip)
        assert heavy.status_code == 413 and "MB" in heavy.json()["error"]
        garbage = send(client, b"\x00\x01 not a video at all" * 10, "junk.mp4")
        assert garbage.status_code == 400 and "junk.mp4" in garbage.json()["error"]


def test_a_stopped_video_job_keeps_the_frames_painted(tmp_path, models, clip) -> None:
    with studio(tmp_path, models=models) as client:
        video = send(client, clip).json()["id"]
        job = client.post("/api/jobs", json={"content": video, "method": "model", "model": "tiny.pt",
                                             "size": 256}).json()
        wait_for(client, job["id"], started)
        client.post(f"/api/jobs/{job['id']}/cancel")
        stopped = wait_for(client, job["id"], finished)
        assert stopped["state"] == "cancelled" and stopped["result"], stopped
        painted = tmp_path / "stopped.mp4"
        painted.write_bytes(client.get(stopped["result"]).content)
        assert 1 <= describe(painted)["frames"] < 24


def test_a_database_from_before_videos_and_scores_is_brought_up_to_date(tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    with sqlite3.connect(data / "studio.db") as db:
        db.execute("CREATE TABLE uploads (id TEXT PRIMARY KEY, name TEXT NOT NULL, width INTEGER NOT NULL, "
                   "height INTEGER NOT NULL, created REAL NOT NULL)")
        db.execute("INSERT INTO uploads VALUES ('0123456789abcdef', 'old.png', 64, 48, 0)")
        db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, options TEXT NOT NULL, "
                   "content TEXT NOT NULL, styles TEXT NOT NULL, created REAL NOT NULL, queued REAL NOT NULL, "
                   "started REAL, finished REAL, iteration INTEGER NOT NULL DEFAULT 0, "
                   "iterations INTEGER NOT NULL DEFAULT 0, losses TEXT NOT NULL DEFAULT '{}', elapsed REAL, "
                   "preview INTEGER NOT NULL DEFAULT 0, result INTEGER NOT NULL DEFAULT 0, seed INTEGER, error TEXT, "
                   "version INTEGER NOT NULL DEFAULT 0)")
        db.execute("INSERT INTO jobs (id, state, options, content, styles, created, queued) VALUES "
                   "('job0123456789abc', 'done', '{}', '0123456789abcdef', '[]', 0, 0)")
    store = JobStore(data)
    try:
        assert store.upload("0123456789abcdef")["kind"] == "picture"
        assert store.job("job0123456789abc").quality is None
    finally:
        store.close()
