"""The studio's API: uploads, jobs, progress events, cancel, delete, restart, limits, token; on tiny images."""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import io
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import make_content, make_style
from PIL import Image

from stylecraft import api, cli
from stylecraft.feedforward import TransformerNet, save_model
from stylecraft.studio.app import create_app
from stylecraft.studio.config import StudioConfig
from stylecraft.studio.store import JobStore
from stylecraft.studio.views import display_name

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402 - after the skip

BASE = "http://127.0.0.1"


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def config(tmp_path: Path, **changes: object) -> StudioConfig:
    return replace(StudioConfig(data=tmp_path / "data", device="cpu", preview_every=2), **changes)


@contextlib.contextmanager
def studio(tmp_path: Path, **changes: object) -> Iterator[TestClient]:
    with TestClient(create_app(config(tmp_path, **changes)), base_url=BASE) as client:
        yield client


def upload(client: TestClient, image: Image.Image, name: str = "picture.png") -> str:
    response = client.post("/api/uploads", files={"file": (name, png(image), "image/png")})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def new_job(client: TestClient, **options: object) -> dict:
    body = {"content": upload(client, make_content(), "photo.png"),
            "styles": [upload(client, make_style(), "stripes.png")], "size": 64, "iterations": 6, **options}
    response = client.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(client: TestClient, job_id: str, test: Callable[[dict], bool], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if test(job):
            return job
        assert time.monotonic() < deadline, f"timed out waiting; the job is {job}"
        time.sleep(0.05)


def finished(job: dict) -> bool:
    return job["state"] not in ("queued", "running")


def started(job: dict) -> bool:
    return job["state"] == "running" and job["iteration"] > 0


@contextlib.contextmanager
def live_server(studio_config: StudioConfig) -> Iterator[str]:
    """The studio under uvicorn, as `stylecraft serve` runs it, in a thread on a free localhost port; yields its
    base URL."""
    from stylecraft.studio.server import server as make_server

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = make_server(create_app(studio_config), studio_config, log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the studio did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


# the happy path ------------------------------------------------------------------------------------------------


def test_job_runs_with_progress_preview_result_and_download(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        job = new_job(client)
        assert job["state"] in ("queued", "running") and job["options"]["size"] == 64
        done = wait_for(client, job["id"], finished)
        assert done["state"] == "done", done
        assert done["iteration"] == done["iterations"] == 6
        assert {"total", "content", "style", "tv"} <= set(done["losses"])
        assert done["seed"] is not None and done["elapsed"] > 0
        assert done["content"]["name"] == "photo.png" and done["styles"][0]["name"] == "stripes.png"

        result = client.get(done["result"])
        assert result.status_code == 200 and result.headers["content-type"] == "image/png"
        picture = Image.open(io.BytesIO(result.content))
        assert picture.size == (64, 48)
        settings = json.loads(picture.text["stylecraft"])
        assert settings["iterations"] == 6 and settings["seed"] == done["seed"]
        assert settings["content"] == "photo.png" and settings["styles"] == ["stripes.png"]
        assert set(done["quality"]) == {"content_distance", "style_distance", "colour_distance", "structure_kept"}
        assert settings["quality"] == done["quality"]  # the job card shows what the file stores

        download = client.get(done["download"])
        assert download.content == result.content
        assert download.headers["content-disposition"] == f'attachment; filename="stylecraft-{job["id"]}.png"'
        assert Image.open(io.BytesIO(client.get(done["preview"]).content)).size == (64, 48)
        assert client.get(done["thumbnail"]).headers["content-type"] == "image/jpeg"
        assert client.get(done["content"]["thumbnail"]).status_code == 200
        assert [j["id"] for j in client.get("/api/jobs").json()] == [job["id"]]

    folder = tmp_path / "data" / "jobs" / job["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["preview.jpg", "result.png", "thumb.jpg"]
    assert (tmp_path / "data" / "studio.db").is_file()


def test_page_static_files_info_and_openapi(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        page = client.get("/")
        assert page.status_code == 200 and 'id="start"' in page.text and "/static/app.js" in page.text
        assert "EventSource" in client.get("/static/app.js").text
        assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
        info = client.get("/api/info").json()
        assert info["defaults"] == {"size": 512, "iterations": 400, "style_weight": 10.0, "preserve_color": False}
        assert info["limits"]["max_queue"] == 20 and not [m for m in info["models"] if not m["builtin"]]
        assert info["presets"]["standard"] == {"size": 512, "iterations": 400}
        assert info["presets"]["draft"]["size"] < 512 < info["presets"]["fine"]["size"]
        assert client.get("/docs").status_code == 404  # its page would load scripts from a CDN
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/api/uploads", "/api/jobs", "/api/jobs/{job_id}/cancel", "/api/jobs/{job_id}/restart",
                "/api/events", "/api/jobs/{job_id}/result"} <= set(paths)


def test_progress_arrives_as_server_sent_events(tmp_path: Path) -> None:
    import httpx2

    with live_server(config(tmp_path)) as url:
        host, port = url.removeprefix("http://").split(":")
        stream = http.client.HTTPConnection(host, int(port), timeout=60)
        stream.request("GET", "/api/events")
        response = stream.getresponse()
        assert response.status == 200 and response.headers["content-type"].startswith("text/event-stream")
        with httpx2.Client(base_url=url) as client:
            job = new_job(client)
        seen: list[dict] = []
        event = None
        while not seen or seen[-1]["state"] != "done":
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "job":
                seen.append(json.loads(line[6:]))
                assert seen[-1]["id"] == job["id"] and seen[-1]["state"] != "failed", seen[-1]
        stream.close()
    running = [e for e in seen if e["state"] == "running" and e["iteration"] > 0]
    assert running and running[0]["iterations"] == 6 and "total" in running[0]["losses"]
    assert any(e["preview"] for e in running)
    assert seen[-1]["result"]


# bad input -----------------------------------------------------------------------------------------------------


def _truncated_png() -> bytes:
    return png(make_content())[:-60]


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"", 400, "empty"),
    (b"just some text, not a picture", 400, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 400, "not an image"),
    (None, 400, "truncated or corrupt"),
    (png(make_content(200, 100)), 400, "more than the limit of 10,000 pixels"),
    (b"\xff" * 3000, 413, "larger than the limit"),
])
def test_bad_uploads_are_refused_with_one_line(tmp_path: Path, data: bytes | None, status: int,
                                               message: str) -> None:
    with studio(tmp_path, max_pixels=10_000, max_upload_mb=2000 / 2**20 if status == 413 else 25) as client:
        data = _truncated_png() if data is None else data
        response = client.post("/api/uploads", files={"file": ("bad.png", data, "image/png")})
        assert response.status_code == status
        error = response.json()["error"]
        assert message in error and "\n" not in error and error.startswith("bad.png: ")
        assert not list((tmp_path / "data" / "uploads").iterdir())


def test_uploads_are_judged_by_content_and_stored_under_new_ids(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        data = png(make_style(), "JPEG")
        response = client.post("/api/uploads", files={"file": ("../../evil.txt", data, "text/plain")})
        assert response.status_code == 201, response.text
        record = response.json()
        assert record["name"] == "evil.txt" and (record["width"], record["height"]) == (64, 64)
        stored = tmp_path / "data" / "uploads" / f"{record['id']}.png"
        assert Image.open(stored).format == "PNG"
        assert client.get(record["image"]).content == stored.read_bytes()
        assert not (tmp_path / "evil.txt").exists()
        assert client.get("/api/uploads/..%2F..%2Fstudio.db/image").status_code == 404
        assert client.post("/api/uploads", content=b"x", headers={"content-length": str(10**9)}).status_code == 413


def test_display_names_never_carry_folders_or_control_characters() -> None:
    assert display_name("C:\\Users\\me\\photo.jpg") == "photo.jpg"
    assert display_name("../../etc/pass\x07wd\n") == "passwd"
    assert display_name("") == display_name(None) == display_name("/") == "picture"
    assert len(display_name("x" * 500)) == 80


def test_bad_job_requests(tmp_path: Path) -> None:
    with studio(tmp_path, max_pixels=256 * 192, max_styles=2) as client:
        content, style = upload(client, make_content()), upload(client, make_style())
        missing = "0123456789abcdef"
        cases = [
            ({"styles": [missing]}, 404, "no uploaded picture"),
            ({"content": missing}, 404, "no uploaded picture"),
            ({"content": "../studio.db"}, 422, "content"),
            ({"styles": []}, 400, "at least one style"),
            ({"styles": [style, style]}, 400, "twice"),
            ({"styles": [style, upload(client, make_style(seed=1)), upload(client, make_style(seed=2))]}, 400,
             "at most 2"),
            ({"size": 512}, 400, "limit of 49,152 pixels; use a size of 256 or less"),
            ({"size": 4}, 422, "size"),
            ({"iterations": 0}, 422, "iterations"),
            ({"iterations": 100_001}, 422, "iterations"),  # checks.BOUNDS, as the command line
            ({"seed": 2**63}, 422, "seed"),
            ({"style_weight": -1}, 422, "style_weight"),
            ({"method": "magic"}, 422, "method"),
            ({"path": "/etc/passwd"}, 422, "path"),
            ({"method": "model"}, 400, "choose a real-time model"),
            ({"method": "model", "model": "../../x.pt"}, 404, "no model"),
        ]
        for changes, status, message in cases:
            body = {"content": content, "styles": [style], "size": 64, "iterations": 2, **changes}
            response = client.post("/api/jobs", json=body)
            assert response.status_code == status, (changes, response.text)
            assert message in response.json()["error"], (changes, response.json())
        nan = client.post("/api/jobs", content=b'{"content": "%s", "styles": ["%s"], "style_weight": NaN}'
                          % (content.encode(), style.encode()), headers={"content-type": "application/json"})
        assert nan.status_code == 422
        assert client.get("/api/jobs").json() == []
        assert client.get("/api/jobs/0123456789abcdef").status_code == 404
        assert client.get("/api/jobs/nonsense/result").json() == {"error": "no job 'nonsense'"}
        assert client.get("/api/nothing-here").json() == {"error": "Not Found"}


# queue, cancel, delete -------------------------------------------------------------------------------------------


def test_queue_limit_cancel_running_and_queued(tmp_path: Path) -> None:
    with studio(tmp_path, max_queue=2) as client:
        first = new_job(client, iterations=5000)
        second = new_job(client, iterations=5000)
        full = client.post("/api/jobs", json={"content": first["content"]["id"],
                                              "styles": [first["styles"][0]["id"]], "size": 64})
        assert full.status_code == 429 and "queue is full" in full.json()["error"]

        running = wait_for(client, first["id"], started)
        assert client.get(f"/api/jobs/{second['id']}").json()["queue_position"] == 1
        queued = client.post(f"/api/jobs/{second['id']}/cancel")
        assert queued.status_code == 200 and queued.json()["state"] == "cancelled"
        assert client.post(f"/api/jobs/{second['id']}/cancel").status_code == 409

        assert client.post(f"/api/jobs/{first['id']}/cancel").status_code == 200
        stopped = wait_for(client, first["id"], finished)
        assert stopped["state"] == "cancelled" and running["iteration"] <= stopped["iteration"] < 5000
        partial = Image.open(io.BytesIO(client.get(stopped["result"]).content))
        assert partial.size == (64, 48)
        assert new_job(client, iterations=1)["state"] in ("queued", "running")


def test_delete_removes_files_and_unshared_uploads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with studio(tmp_path) as client:
        job = wait_for(client, new_job(client, iterations=2)["id"], finished)
        content, style = job["content"]["id"], job["styles"][0]["id"]
        other = client.post("/api/jobs", json={"content": content, "styles": [upload(client, make_style(seed=3))],
                                               "size": 64, "iterations": 5000}).json()
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 204
        assert not (data / "jobs" / job["id"]).exists()
        assert client.get(f"/api/jobs/{job['id']}").status_code == 404
        assert client.delete(f"/api/jobs/{job['id']}").status_code == 404
        assert (data / "uploads" / f"{content}.png").exists()  # still used by the other job
        assert not (data / "uploads" / f"{style}.png").exists()

        wait_for(client, other["id"], started)
        assert client.delete(f"/api/jobs/{other['id']}").status_code == 204
        deadline = time.monotonic() + 30
        while (data / "jobs" / other["id"]).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (data / "jobs" / other["id"]).exists()
        assert client.get("/api/jobs").json() == []
        assert list((data / "uploads").iterdir()) == []


# restart ---------------------------------------------------------------------------------------------------------


def test_restart_after_a_crash_runs_queued_jobs_and_marks_running_ones_interrupted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = JobStore(data)
    content = store.add_upload(make_content(), "photo.png")["id"]
    style = store.add_upload(make_style(), "stripes.png")["id"]
    options = {"method": "optimise", "model": None, "size": 64, "iterations": 3, "style_weight": 10.0,
               "preserve_color": False, "seed": 7}
    crashed = store.create_job(content, [style], options, max_queue=10).id
    waiting = store.create_job(content, [style], options, max_queue=10).id
    assert store.claim_next().id == crashed  # the server "dies" here, with the job running
    store.close()

    with studio(tmp_path) as client:
        job = client.get(f"/api/jobs/{crashed}").json()
        assert job["state"] == "interrupted" and "server stopped" in job["error"] and job["result"] is None
        assert wait_for(client, waiting, finished)["state"] == "done"
        assert client.post(f"/api/jobs/{waiting}/restart").status_code == 409
        restarted = client.post(f"/api/jobs/{crashed}/restart")
        assert restarted.status_code == 200 and restarted.json()["state"] in ("queued", "running")
        again = wait_for(client, crashed, finished)
        assert again["state"] == "done" and again["error"] is None and again["seed"] == 7


def test_shutdown_interrupts_the_running_job_and_keeps_the_queue(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        running = new_job(client, iterations=5000)
        queued = new_job(client, iterations=2)
        wait_for(client, running["id"], started)
    with studio(tmp_path) as client:
        job = client.get(f"/api/jobs/{running['id']}").json()
        assert job["state"] == "interrupted" and 0 < job["iteration"] < 5000
        assert wait_for(client, queued["id"], finished)["state"] == "done"
        assert client.post(f"/api/jobs/{running['id']}/restart").json()["iteration"] == 0
        client.post(f"/api/jobs/{running['id']}/cancel")


def test_restarting_an_interrupted_job_goes_on_from_where_it_stopped(tmp_path: Path) -> None:
    options = {"iterations": 60, "seed": 5}
    with studio(tmp_path) as client:
        running = new_job(client, **options)
        wait_for(client, running["id"], lambda job: job["state"] == "running" and job["iteration"] >= 3)
    folder = tmp_path / "data" / "jobs" / running["id"]
    assert (folder / "result.png.resume.pt").is_file()  # the shutdown kept the run's checkpoint
    with studio(tmp_path) as client:
        assert client.get(f"/api/jobs/{running['id']}").json()["state"] == "interrupted"
        client.post(f"/api/jobs/{running['id']}/restart")
        resumed = wait_for(client, running["id"], finished)
        whole = wait_for(client, new_job(client, **options)["id"], finished)
        assert resumed["state"] == whole["state"] == "done"
        pictures = [Image.open(io.BytesIO(client.get(job["result"]).content)) for job in (resumed, whole)]
    assert 0 < json.loads(pictures[0].text["stylecraft"])["resumed_at"] < 60
    assert np.array_equal(np.asarray(pictures[0]), np.asarray(pictures[1]))
    assert resumed["quality"] == whole["quality"]
    assert not (folder / "result.png.resume.pt").exists()


def test_a_failing_job_is_reported_and_the_worker_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stylecraft.studio import worker

    real_run = worker.api.run
    calls = []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom\nand a traceback nobody should see")
        return real_run(*args, **kwargs)

    monkeypatch.setattr(worker.api, "run", flaky)
    with studio(tmp_path) as client:
        broken = wait_for(client, new_job(client)["id"], finished)
        assert broken["state"] == "failed" and broken["error"] == "unexpected error: boom"
        assert broken["result"] is None
        assert wait_for(client, new_job(client, iterations=2)["id"], finished)["state"] == "done"
        assert client.post(f"/api/jobs/{broken['id']}/restart").json()["error"] is None


# real-time models ------------------------------------------------------------------------------------------------


def test_real_time_model_from_the_models_folder(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    save_model(TransformerNet(width=4, residual_blocks=1), models / "tiny.pt", {"style": "stripes"})
    (models / "notes.txt").write_text("not a model")
    names = ["tiny.pt"]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        api.export_model(models / "tiny.pt", models / "tiny.onnx")
        names.insert(0, "tiny.onnx")
    with studio(tmp_path, models=models) as client:
        assert [m["name"] for m in client.get("/api/models").json() if not m["builtin"]] == names
        content = upload(client, make_content())
        for name in names:
            response = client.post("/api/jobs", json={"content": content, "method": "model", "model": name,
                                                      "size": 32, "styles": ["ignored"]})
            assert response.status_code == 201, response.text
            assert response.json()["styles"] == []
            done = wait_for(client, response.json()["id"], finished)
            assert done["state"] == "done", done
            assert Image.open(io.BytesIO(client.get(done["result"]).content)).size == (32, 24)


# who may use it --------------------------------------------------------------------------------------------------


def test_token_guards_page_api_and_files(tmp_path: Path) -> None:
    token = "correct-horse-battery"
    with studio(tmp_path, token=token, host="0.0.0.0") as client:
        for path in ("/api/info", "/api/jobs", "/static/app.js", "/openapi.json", "/api/events"):
            response = client.get(path)
            assert response.status_code == 401 and "token" in response.json()["error"], path
        locked = client.get("/")
        assert locked.status_code == 401 and "?token=" in locked.text and 'id="start"' not in locked.text
        assert client.get("/api/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/info", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/?token=wrong", follow_redirects=False).status_code == 401
        opened = client.get(f"/?token={token}", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/"
        assert "httponly" in opened.headers["set-cookie"].lower()
        assert client.get("/api/info").status_code == 200  # the cookie now travels with each request
        assert client.get("/").status_code == 200


def test_loopback_studio_refuses_other_hosts_and_cross_site_posts(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        assert client.get("/api/info", headers={"host": "evil.example"}).status_code == 400
        assert client.get("/api/info", headers={"host": "localhost:8000"}).status_code == 200
        refused = client.post("/api/uploads", files={"file": ("a.png", png(make_style()), "image/png")},
                              headers={"origin": "http://evil.example"})
        assert refused.status_code == 403 and "other web sites" in refused.json()["error"]


def test_cli_serve_refuses_unsafe_or_impossible_settings(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    monkeypatch.delenv("STYLECRAFT_TOKEN", raising=False)
    data = str(tmp_path / "data")
    assert cli.main(["serve", "--host", "0.0.0.0", "--data", data]) == 2
    error = capsys.readouterr().err
    assert "--token" in error and error.count("\n") == 1
    assert cli.main(["serve", "--host", "0.0.0.0", "--token", "short", "--data", data]) == 2
    assert "at least 12" in capsys.readouterr().err
    assert cli.main(["serve", "--max-queue", "0", "--data", data]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port), "--data", data]) == 2
    assert "cannot listen on" in capsys.readouterr().err
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    store = JobStore(data)  # a studio already running on this folder
    try:
        assert cli.main(["serve", "--port", str(port), "--data", data]) == 2
        assert "another studio is already using" in capsys.readouterr().err
    finally:
        store.close()


def test_an_uploaded_painting_gives_a_one_pass_preview_before_the_optimiser(tmp_path: Path) -> None:
    from stylecraft.studio.worker import paint_picture

    reports: list[tuple[dict, bytes | None]] = []
    options = {"method": "optimise", "size": 64, "iterations": 2, "style_weight": 10.0, "preserve_color": False}
    halves = [Image.new("L", (64, 48), 0), Image.new("L", (64, 48), 0)]
    halves[0].paste(255, (0, 0, 32, 48))
    halves[1].paste(255, (32, 0, 64, 48))
    for masks in (None, halves):  # the brush's regions take one painting each
        reports.clear()
        styles = [make_style()] if masks is None else [make_style(), make_style(seed=1).rotate(90)]
        paint_picture(options, make_content(), styles, masks, None, "cpu", 1,
                      lambda fields, preview: reports.append((fields, preview)), threading.Event())
        first = next(fields for fields, preview in reports if preview is not None)
        assert first["preview"] == -1 and first["iteration"] == 0  # before the optimiser's first iteration
        picture = Image.open(io.BytesIO(next(p for _, p in reports if p is not None)))
        assert picture.size == (64, 48)
        assert [f["preview"] for f, p in reports if p is not None][1:] == [1, 2]  # then the optimiser's


# issue 36: sizes, the queue and the time left ------------------------------------------------------------------


def test_a_model_keeps_the_photos_size_unless_asked_and_the_optimiser_its_default(tmp_path: Path) -> None:
    """Before: a one-pass job on a 1024 px photo was painted at 512 px; `stylecraft apply` keeps the photo's size."""
    models = tmp_path / "models"
    models.mkdir()
    save_model(TransformerNet(width=4, residual_blocks=1), models / "tiny.pt", {"style": "stripes"})
    with studio(tmp_path, models=models) as client:
        content = upload(client, make_content(160, 120))
        response = client.post("/api/jobs", json={"content": content, "method": "model", "model": "tiny.pt"})
        assert response.status_code == 201 and response.json()["options"]["size"] == 160, response.text
        done = wait_for(client, response.json()["id"], finished)
        assert Image.open(io.BytesIO(client.get(done["result"]).content)).size == (160, 120)
        optimise = client.post("/api/jobs", json={"content": content, "styles": [upload(client, make_style())]})
        assert optimise.status_code == 201 and optimise.json()["options"]["size"] == 512, optimise.text
        client.delete(f"/api/jobs/{optimise.json()['id']}")


def test_time_left_weighs_each_iteration_by_its_scales_pixels() -> None:
    """Before: progress said the time so far only. Iterations at a larger scale cost more: by pixels, not counts."""
    from stylecraft.optimize import Progress
    from stylecraft.studio.worker import seconds_left

    plan = [((64, 48), 4), ((128, 96), 2)]  # the second scale's 2 iterations cost as much as 8 of the first's

    def at(iteration: int, scale: int, elapsed: float) -> float | None:
        return seconds_left(plan, Progress(iteration, 6, elapsed, lambda: None, scale=scale, scales=2))

    assert at(4, 1, 2.0) == pytest.approx(4.0)  # a third of the work in 2 s: 4 s to go (not 1 s)
    assert at(5, 2, 4.0) == pytest.approx(2.0)
    assert at(6, 2, 6.0) == 0
    assert at(0, 1, 0.0) is None and seconds_left(plan[:1], Progress(1, 6, 1.0, lambda: None, scales=2)) is None
    resumed = Progress(5, 6, 1.0, lambda: None, scale=2, scales=2)  # after 4 done before: 1 s for one of 2 left
    assert seconds_left(plan, resumed, since=4) == pytest.approx(1.0)


def test_a_running_job_tells_its_time_left(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        job = new_job(client, iterations=400)
        running = wait_for(client, job["id"], lambda j: j["state"] == "running" and j["seconds_left"] is not None)
        assert running["seconds_left"] > 0
        client.post(f"/api/jobs/{job['id']}/cancel")
        assert wait_for(client, job["id"], finished)["seconds_left"] is None
