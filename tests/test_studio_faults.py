"""Faults found by trying to break the studio (issue 21, part 10), each pinned by a test: memory and disk under
large or failing uploads, jobs whose end cannot be recorded, limits that overflow, a damaged database, the token
in links and logs, jobs that could never run, and the headers and file modes that keep pictures private."""

from __future__ import annotations

import errno
import logging
import os
import re
import socket
import sqlite3
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import make_content, make_style
from starlette.datastructures import UploadFile
from test_studio import BASE, config, finished, live_server, png, studio, upload, wait_for
from test_studio_safety import _new_job, _wait

from stylecraft import cli
from stylecraft.errors import ConfigError, UsageError
from stylecraft.feedforward import TransformerNet, save_model
from stylecraft.studio import app as studio_app
from stylecraft.studio import store as studio_store
from stylecraft.studio.config import StudioConfig
from stylecraft.studio.security import RedactToken
from stylecraft.studio.store import JobStore
from stylecraft.studio.worker import Worker

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402 - after the skip


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    """`stylecraft serve` runs every check and prints its link, but serves nothing: the calls are recorded."""
    calls: list[tuple[object, ...]] = []

    def serve(*args: object, **kwargs: object) -> None:
        calls.append(args)
        for arg in args:
            if isinstance(arg, socket.socket):
                arg.close()

    monkeypatch.setattr(studio_app, "serve", serve)
    monkeypatch.delenv("STYLECRAFT_TOKEN", raising=False)
    return calls


# uploads: memory and disk -------------------------------------------------------------------------------------


def test_uploads_are_streamed_to_disk_never_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: the route read each upload whole (up to the video limit, 200 MB) before any bound applied."""
    reads: list[int] = []
    real_read = UploadFile.read

    async def counted(self: UploadFile, size: int = -1) -> bytes:
        reads.append(size)
        return await real_read(self, size)

    monkeypatch.setattr(UploadFile, "read", counted)
    with studio(tmp_path) as client:
        upload(client, make_content(400, 300))
    assert reads and all(0 < size <= 2**20 for size in reads), reads


def test_a_full_disk_on_upload_is_507_and_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ENOSPC was a 500, and the picture written before the failing thumbnail stayed behind."""
    real_write = studio_store.atomic_write_bytes

    def full_at_thumbnail(path: str | os.PathLike[str], data: bytes) -> None:
        if str(path).endswith(".thumb.jpg"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(path, data)

    with TestClient(studio_app.create_app(config(tmp_path)), base_url=BASE, raise_server_exceptions=False) as client:
        monkeypatch.setattr(studio_store, "atomic_write_bytes", full_at_thumbnail)
        response = client.post("/api/uploads", files={"file": ("a.png", png(make_style()))})
        assert response.status_code == 507 and "disk is full" in response.json()["error"], response.text
        assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_an_upload_whose_record_fails_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(studio_app.create_app(config(tmp_path)), base_url=BASE, raise_server_exceptions=False) as client:
        store = client.app.state.store

        def broken(*args: object) -> None:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(store, "_record_upload", broken)
        assert client.post("/api/uploads", files={"file": ("a.png", png(make_style()))}).status_code == 500
        assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_a_picture_too_large_for_a_picture_is_not_a_video_of_inf_seconds(tmp_path: Path) -> None:
    pytest.importorskip("av")
    """Before: a GIF over the picture limit was probed as a video and refused as "a video of inf s"."""
    picture = png(make_content(400, 300), "GIF")
    with studio(tmp_path, max_upload_mb=len(picture) / 2 / 2**20) as client:
        response = client.post("/api/uploads", files={"file": ("big.gif", picture)})
    assert response.status_code == 413 and "for a picture" in response.json()["error"], response.text


# jobs whose end cannot be recorded -----------------------------------------------------------------------------


def test_a_job_whose_end_cannot_be_recorded_ends_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: when both of the worker's attempts to record the end failed (a full disk), the job stayed
    "running" forever."""
    store = JobStore(tmp_path / "data")
    real_finish, failures = store.finish, [2]

    def full_disk(job_id: str, **fields: object) -> bool:
        if failures[0]:
            failures[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_finish(job_id, **fields)

    monkeypatch.setattr(store, "finish", full_disk)
    worker = Worker(store, tmp_path / "models", device="cpu")
    worker.start()
    try:
        job_id = _new_job(store)
        _wait(lambda: store.job(job_id).state not in ("queued", "running"), timeout=60)
        assert store.job(job_id).state == "failed" and "disk is full" in (store.job(job_id).error or "")
        assert store.pending() == 0 and worker.alive
    finally:
        worker.stop()
        store.close()


def _orphan(store: JobStore, monkeypatch: pytest.MonkeyPatch) -> str:
    """A job claimed by a worker whose every attempt to record its end failed."""
    job_id = _new_job(store)
    assert store.claim_next() is not None
    with monkeypatch.context() as patch:
        def full(*args: object, **kwargs: object) -> bool:
            raise sqlite3.OperationalError("database or disk is full")

        patch.setattr(store, "_set", full)
        with pytest.raises(sqlite3.OperationalError):
            store.finish(job_id, state="done")
    return job_id


def test_a_job_left_running_by_a_failed_finish_can_be_cancelled_restarted_and_deleted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: cancel answered and did nothing, restart was refused and delete left the job's folder."""
    store = JobStore(tmp_path / "data")
    try:
        cancelled = _orphan(store, monkeypatch)
        assert store.pending() == 0  # its queue slot is free
        assert store.cancel(cancelled).state == "cancelled"
        restarted = _orphan(store, monkeypatch)
        assert store.restart(restarted, max_queue=10).state == "queued"
        store.cancel(restarted)
        deleted = _orphan(store, monkeypatch)
        store.delete(deleted)
        assert not store.job_dir(deleted).exists()
    finally:
        store.close()


# limits and the printed link -----------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["max_upload_mb", "max_video_mb", "max_storage_mb", "max_video_seconds",
                                    "keep_uploads_hours", "max_pixels", "max_video_pixels", "max_queue",
                                    "max_iterations"])
def test_limits_beyond_what_they_can_mean_are_refused(tmp_path: Path, option: str) -> None:
    with pytest.raises(ConfigError, match=option):
        StudioConfig(data=tmp_path, **{option: 10**300 if "pixels" in option or "max_i" in option or "queue" in
                                       option else 1e308})


@pytest.mark.parametrize("args", [["--max-upload-mb", "1e308"], ["--max-storage-mb", "1e308"], ["--port", "-1"],
                                  ["--port", "65536"], ["--max-pixels", "1" + "0" * 30]])
def test_serve_refuses_overflowing_options_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                       served: list[tuple[object, ...]], args: list[str]) -> None:
    """Before: 1e308 MB passed the check (then every request was a 500, or a traceback after the link), and
    port -1 exited 1."""
    assert cli.main(["serve", "--data", str(tmp_path / "data"), *args]) == 2
    err = capsys.readouterr().err
    assert served == [] and "open http" not in err and err.count("\n") == 1, err


def _printed_link(err: str) -> str:
    found = re.search(r"open (http://\S+)", err)
    assert found, err
    return found.group(1)


def test_port_0_prints_the_port_it_listens_on(tmp_path: Path, capsys: pytest.CaptureFixture,
                                              served: list[tuple[object, ...]]) -> None:
    assert cli.main(["serve", "--data", str(tmp_path / "data"), "--port", "0"]) == 0
    port = urlsplit(_printed_link(capsys.readouterr().err)).port
    assert port and port > 0 and len(served) == 1


def test_the_printed_link_carries_any_token_url_encoded(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                        served: list[tuple[object, ...]]) -> None:
    token = "a&b+c#d%e-long-enough"
    assert cli.main(["serve", "--data", str(tmp_path / "data"), "--host", "0.0.0.0", "--token", token,
                     "--port", "0"]) == 0
    link = urlsplit(_printed_link(capsys.readouterr().err))
    config = StudioConfig(data=tmp_path / "data2", device="cpu", host="0.0.0.0", token=token)
    with TestClient(studio_app.create_app(config), base_url="http://127.0.0.1") as client:
        assert client.get(f"{link.path}?{link.query}", follow_redirects=False).status_code == 303


def test_the_token_is_cut_from_the_log_whatever_its_spelling() -> None:
    """Before: ``?tok%65n=TOKEN`` logged in, and only the literal key ``token=`` was redacted."""
    secret = "correct-horse-battery"
    for query in (f"token={secret}", f"tok%65n={secret}", f"a=1&%74oken={secret}", f"TOKEN=x&token={secret}"):
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                   ("127.0.0.1:5000", "GET", f"/?{query}", "1.1", 303), None)
        RedactToken().filter(record)
        assert secret not in record.getMessage(), record.getMessage()


# a damaged database --------------------------------------------------------------------------------------------


def test_a_damaged_database_is_refused_at_open(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               served: list[tuple[object, ...]]) -> None:
    """Before: a bad page in the middle of the file was found only by the requests that read it (500s)."""
    data = tmp_path / "data"
    JobStore(data).close()
    with sqlite3.connect(data / "studio.db") as db:
        db.executemany("INSERT INTO uploads (id, name, width, height, created) VALUES (?, ?, 1, 1, 0)",
                       [(f"{n:016x}", "x" * 200) for n in range(2000)])
    db.close()
    with open(data / "studio.db", "r+b") as raw:
        page = 4096
        raw.seek(page * (os.path.getsize(data / "studio.db") // page // 2))
        raw.write(os.urandom(page))
    with pytest.raises(UsageError, match="damaged"):
        JobStore(data)
    assert cli.main(["serve", "--data", str(data), "--port", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and served == []


# jobs that could never run -------------------------------------------------------------------------------------


def test_jobs_that_could_never_run_are_refused_at_submission(tmp_path: Path) -> None:
    """Before: size 16 and a video as a style were accepted, and the job failed later."""
    with studio(tmp_path) as client:
        content, style = upload(client, make_content()), upload(client, make_style())
        clip = tmp_path / "clip.mp4"
        clip.write_bytes(b"not played here")
        video = client.app.state.store.add_video_upload(clip, "clip.mp4", (64, 48), 1.0, make_content())["id"]
        for changes, message in (({"size": 16}, "too small"), ({"styles": [video]}, "not a picture")):
            body = {"content": content, "styles": [style], "size": 64, "iterations": 1, **changes}
            response = client.post("/api/jobs", json=body)
            assert response.status_code == 422 and message in response.json()["error"], response.text
        assert client.get("/api/jobs").json() == []


def test_the_storage_estimate_is_the_real_width_by_height(tmp_path: Path) -> None:
    """Before: a 400 x 20 panorama at size 400 was counted as 400 x 400 and refused for lack of room."""
    with studio(tmp_path, max_storage_mb=0.3) as client:
        content, style = upload(client, make_content(400, 20)), upload(client, make_style())
        response = client.post("/api/jobs", json={"content": content, "styles": [style], "size": 400,
                                                  "iterations": 1})
        assert response.status_code == 201, response.text


# headers and file modes ----------------------------------------------------------------------------------------


def test_security_headers_and_private_pictures(tmp_path: Path) -> None:
    with studio(tmp_path, max_queue=1) as client:
        page = client.get("/")
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        for path in ("/", "/api/info", "/static/app.js", "/api/jobs/nonsense"):
            assert client.get(path).headers["x-content-type-options"] == "nosniff", path
        content, style = upload(client, make_content()), upload(client, make_style())
        job = client.post("/api/jobs", json={"content": content, "styles": [style], "size": 32,
                                             "iterations": 2}).json()
        full = client.post("/api/jobs", json={"content": content, "styles": [style], "size": 32})
        assert full.status_code == 429 and int(full.headers["retry-after"]) > 0
        done = wait_for(client, job["id"], finished)
        for path in (f"/api/uploads/{content}/image", f"/api/uploads/{content}/thumbnail", done["result"],
                     done["thumbnail"], done["preview"]):
            assert client.get(path).headers["cache-control"] == "no-store", path


def test_data_folders_and_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with studio(tmp_path) as client:
            content, style = upload(client, make_content()), upload(client, make_style())
            job = client.post("/api/jobs", json={"content": content, "styles": [style], "size": 32,
                                                 "iterations": 2}).json()
            assert wait_for(client, job["id"], finished)["state"] == "done"
    finally:
        os.umask(old)
    data = tmp_path / "data"
    for path in [data, *data.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o750)
    JobStore(mine).close()  # a folder the user already had keeps its permissions; what the store makes is private
    assert stat.S_IMODE(mine.stat().st_mode) == 0o750 and stat.S_IMODE((mine / "uploads").stat().st_mode) == 0o700


def test_store_updates_take_known_fields_only(tmp_path: Path) -> None:
    """Before: a keyword's name went into the SQL as it was."""
    store = JobStore(tmp_path / "data")
    try:
        job_id = _new_job(store)
        with pytest.raises(ValueError, match="unknown"):
            store.update(job_id, **{"state='done', error": "x"})
        assert store.job(job_id).state == "queued"
    finally:
        store.close()



# the store (issue 36) ------------------------------------------------------------------------------------------


def test_an_emptied_database_is_refused_while_the_folder_holds_jobs(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                   served: list[tuple[object, ...]]) -> None:
    """Before: a studio.db emptied to 0 bytes started an empty gallery, its jobs' folders and uploads orphaned."""
    data = tmp_path / "data"
    store = JobStore(data)
    _new_job(store)
    store.close()
    (data / "studio.db").write_bytes(b"")
    with pytest.raises(UsageError, match="is empty, but .* holds 1 jobs and 2 uploads"):
        JobStore(data)
    assert cli.main(["serve", "--data", str(data), "--port", "0"]) == 2
    assert capsys.readouterr().err.count("\n") == 1 and served == []
    JobStore(tmp_path / "fresh").close()  # an empty folder still starts with an empty database


class _FullDatabase:
    """A store's connection whose writes of jobs fail as on a full disk, with ``error``."""

    def __init__(self, db: sqlite3.Connection, error: Exception) -> None:
        self.db, self.error = db, error

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql.startswith("INSERT INTO jobs"):
            raise self.error
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def _sqlite_full() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined] - as sqlite3 sets it
    return error


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), _sqlite_full()],
                         ids=["ENOSPC", "SQLITE_FULL"])
def test_a_job_created_on_a_full_disk_is_507_and_leaves_no_folder(tmp_path: Path, error: Exception) -> None:
    """Before: a 500 ("internal error: database or disk is full") and an empty jobs/<id>/ left behind."""
    with TestClient(studio_app.create_app(config(tmp_path)), base_url=BASE, raise_server_exceptions=False) as client:
        content, style = upload(client, make_content()), upload(client, make_style())
        store = client.app.state.store
        store._db = _FullDatabase(store._db, error)
        response = client.post("/api/jobs", json={"content": content, "styles": [style], "size": 32,
                                                  "iterations": 1})
        assert response.status_code == 507 and "disk is full" in response.json()["error"], response.text
        assert list(store.jobs_dir.iterdir()) == []


def test_a_damaged_model_file_is_refused_at_submission(tmp_path: Path) -> None:
    """Before: a job on a damaged .pt was accepted (201) and failed when it ran."""
    models = tmp_path / "models"
    models.mkdir()
    save_model(TransformerNet(width=4, residual_blocks=1), models / "tiny.pt", {"style": "stripes"})
    whole = (models / "tiny.pt").read_bytes()
    (models / "tiny.pt").write_bytes(whole[: len(whole) // 2])
    with studio(tmp_path, models=models) as client:
        body = {"content": upload(client, make_content()), "method": "model", "model": "tiny.pt", "size": 32}
        refused = client.post("/api/jobs", json=body)
        assert refused.status_code == 422, refused.text
        assert "'tiny.pt' cannot be used" in refused.json()["error"] and str(models) not in refused.text
        assert client.get("/api/jobs").json() == []
        (models / "tiny.pt").write_bytes(whole)  # mended: the next submission reads it again
        os.utime(models / "tiny.pt", ns=(0, 10**18))
        assert client.post("/api/jobs", json=body).status_code == 201


# slow clients (issue 36) ---------------------------------------------------------------------------------------


def _half_header(port: int) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
    return client


def _read_to_close(client: socket.socket, timeout: float = 20) -> bytes:
    """Everything the server sends until it closes the connection; AssertionError if it has not closed it within
    ``timeout`` seconds (far longer than the bounds under test, so that a slow machine does not matter)."""
    client.settimeout(timeout)
    received = b""
    try:
        while chunk := client.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {timeout} s") from None
    finally:
        client.close()
    return received


def test_slow_headers_and_idle_connections_are_closed(tmp_path: Path) -> None:
    """Before: connections sending half a header stayed open with no deadline (200 of them for at least 8 s)."""
    with live_server(config(tmp_path, header_timeout=0.5, keep_alive=1)) as url:
        port = urlsplit(url).port
        slow = [_half_header(port) for _ in range(20)]
        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_to_close(idle).startswith(b"HTTP/1.1 200 ")  # answered, then closed once idle
        assert [_read_to_close(client) for client in slow] == [b""] * len(slow)


def test_connections_beyond_the_bound_are_closed_at_once(tmp_path: Path) -> None:
    with live_server(config(tmp_path, max_connections=5, header_timeout=600)) as url:
        port = urlsplit(url).port
        held = [_half_header(port) for _ in range(5)]
        extra = socket.create_connection(("127.0.0.1", port))
        extra.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert _read_to_close(extra) == b""
        for client in held:
            client.close()
