"""The studio under races, floods and hostile input: the worker never dies, nothing is orphaned, uploads and disk
are bounded, the token never leaks and errors stay short and free of server paths."""

from __future__ import annotations

import contextlib
import io
import logging
import random
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import make_content, make_style
from PIL import Image
from test_studio import config, finished, live_server, new_job, png, studio, upload, wait_for

from stylecraft import cli, files, images
from stylecraft.errors import ConfigError, UsageError
from stylecraft.studio import app as studio_app
from stylecraft.studio.config import StudioConfig
from stylecraft.studio.security import COOKIE, cookie_value
from stylecraft.studio.store import JobStore, NotFound
from stylecraft.studio.worker import Worker

httpx2 = pytest.importorskip("httpx2")

OPTIONS = {"method": "optimise", "model": None, "size": 32, "iterations": 2, "style_weight": 10.0,
           "preserve_color": False, "seed": 1}


def _new_job(store: JobStore) -> str:
    """A queued job on pictures of its own (deleting a job removes the pictures no other job uses)."""
    content = store.add_upload(make_content(), "photo.png")["id"]
    style = store.add_upload(make_style(), "stripes.png")["id"]
    return store.create_job(content, [style], OPTIONS, max_queue=10).id


def _wait(test: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not test():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# the worker and the store's decisions ------------------------------------------------------------------------


def test_a_job_deleted_as_it_is_claimed_is_stopped_and_cleaned_up(tmp_path: Path) -> None:
    """The race that killed the worker: a DELETE landing between the claim and the re-read of the job."""
    holder: dict = {}

    def delete_when_running(job_id: str) -> None:
        store = holder["store"]
        with contextlib.suppress(NotFound):
            if holder.get("armed") and store.job(job_id).state == "running":
                holder["armed"] = False
                store.delete(job_id)

    store = JobStore(tmp_path / "data", on_change=delete_when_running)
    holder["store"] = store
    doomed = _new_job(store)
    holder["armed"] = True
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == doomed and claimed.state == "running"
    assert store.stop_requested(doomed)
    assert store.finish(doomed, state="cancelled") is False  # gone: its folder is the worker's to remove

    worker = Worker(store, tmp_path / "models", device="cpu", preview_every=1)
    worker.start()
    try:
        holder["armed"] = True
        raced = _new_job(store)
        worker.wake()
        _wait(lambda: not (store.job_dir(raced)).exists())
        assert worker.alive
        holder["armed"] = False
        fresh = _new_job(store)
        worker.wake()
        _wait(lambda: store.job(fresh).state not in ("queued", "running"))
        assert store.job(fresh).state == "done"
        assert {p.name for p in store.jobs_dir.iterdir()} - {doomed} == {fresh}
    finally:
        worker.stop()
        store.close()


def test_the_worker_survives_database_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = JobStore(tmp_path / "data")
    real_claim, real_finish = store.claim_next, store.finish
    failures = {"claim": 2, "finish": 1}

    def flaky_claim() -> dict | None:
        if failures["claim"]:
            failures["claim"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real_claim()

    def flaky_finish(job_id: str, **fields: object) -> bool:
        if failures["finish"]:
            failures["finish"] -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return real_finish(job_id, **fields)

    monkeypatch.setattr(store, "claim_next", flaky_claim)
    monkeypatch.setattr(store, "finish", flaky_finish)
    worker = Worker(store, tmp_path / "models", device="cpu")
    worker.start()
    try:
        first = _new_job(store)
        _wait(lambda: store.job(first).state not in ("queued", "running"))
        job = store.job(first)
        assert job.state == "failed" and job.error == "could not record the result: disk I/O error"
        second = _new_job(store)
        worker.wake()
        _wait(lambda: store.job(second).state not in ("queued", "running"))
        assert store.job(second).state == "done" and worker.alive and failures == {"claim": 0, "finish": 0}
    finally:
        worker.stop()
        store.close()


def test_cancel_and_delete_decide_under_the_store_lock(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "data")
    try:
        running = _new_job(store)
        store.claim_next()
        assert store.cancel(running).state == "running" and store.stop_requested(running)
        assert store.finish(running, state="cancelled") and not store.stop_requested(running)
        again = _new_job(store)
        store.claim_next()
        assert store.delete(again) == "running" and store.stop_requested(again)
        assert store.job_dir(again).exists()  # the worker removes it once the run has stopped
    finally:
        store.close()


def test_storm_of_requests_leaves_a_working_queue_and_no_orphans(tmp_path: Path) -> None:
    """Create, cancel, delete and restart from several clients at once, over HTTP, against the real worker:
    first jobs deleted as soon as they are made (the worker, woken by each, claims it at that very moment),
    then a mixed storm. Then a fresh job must complete, and every job folder must belong to a listed job."""
    studio_config = config(tmp_path, max_queue=1000)
    statuses: list[int] = []
    with live_server(studio_config) as url:
        with httpx2.Client(base_url=url, timeout=30) as client:
            body = {"content": upload(client, make_content()), "styles": [upload(client, make_style())],
                    "size": 32, "iterations": 2}
            keep = client.post("/api/jobs", json=body).json()  # keeps the two uploads in use throughout
            wait_for(client, keep["id"], finished)

        def storm(seed: int, rounds: int, actions: list[str]) -> None:
            rng = random.Random(seed)
            with httpx2.Client(base_url=url, timeout=30) as client:
                for _ in range(rounds):
                    created = client.post("/api/jobs", json=body)
                    statuses.append(created.status_code)
                    job_id = created.json()["id"]
                    action = rng.choice(actions)
                    if action != "delete-at-once":
                        time.sleep(rng.random() * 0.05)
                    if action.startswith("delete"):
                        statuses.append(client.delete(f"/api/jobs/{job_id}").status_code)
                    elif action.startswith("cancel"):
                        statuses.append(client.post(f"/api/jobs/{job_id}/cancel").status_code)
                        if action == "cancel-restart":
                            statuses.append(client.post(f"/api/jobs/{job_id}/restart").status_code)

        for clients, rounds, actions in ((2, 60, ["delete-at-once"]),
                                         (4, 30, ["delete-at-once", "delete", "cancel", "cancel-restart", "keep"])):
            threads = [threading.Thread(target=storm, args=(seed, rounds, actions)) for seed in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
        assert set(statuses) <= {200, 201, 204, 409}, sorted(set(statuses))
        with httpx2.Client(base_url=url, timeout=30) as client:
            # The storm's kept jobs are cancelled rather than waited for, so that the fresh job's wait does not
            # grow with the machine's load (dozens of jobs ahead of it took over 240 s on two busy cores).
            for job in client.get("/api/jobs").json():
                if not finished(job):
                    assert client.post(f"/api/jobs/{job['id']}/cancel").status_code in (200, 409)
            fresh = client.post("/api/jobs", json=body).json()
            assert wait_for(client, fresh["id"], finished, timeout=240)["state"] == "done"
            for job in client.get("/api/jobs").json():  # let the rest drain
                wait_for(client, job["id"], finished, timeout=240)
            listed = {job["id"] for job in client.get("/api/jobs").json()}
    assert {p.name for p in (studio_config.data / "jobs").iterdir()} == listed


def test_one_studio_per_database_as_well_as_per_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shared_db = tmp_path / "jobs.db"
    first = JobStore(tmp_path / "one", db=shared_db)
    try:
        with pytest.raises(UsageError, match="another studio"):
            JobStore(tmp_path / "two", db=shared_db)
        assert cli.main(["serve", "--data", str(tmp_path / "three"), "--db", str(shared_db), "--port", "0"]) == 2
        assert "another studio" in capsys.readouterr().err
    finally:
        first.close()
    JobStore(tmp_path / "two", db=shared_db).close()  # free again once the first has closed


# uploads: memory and disk ------------------------------------------------------------------------------------


def test_uploads_decode_a_few_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_load = images.load_image
    active, peak = [0], [0]
    lock = threading.Lock()

    def slow_load(*args: object) -> Image.Image:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            time.sleep(0.3)
            return real_load(*args)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(images, "load_image", slow_load)
    codes: list[int] = []
    with live_server(config(tmp_path, max_decoding=2)) as url:
        def send() -> None:
            with httpx2.Client(base_url=url, timeout=60) as client:
                codes.append(client.post("/api/uploads", files={"file": ("a.png", png(make_style()))}).status_code)

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert codes == [201] * 6 and peak[0] == 2


def test_the_size_limit_is_the_pixel_limit_of_the_uploads(tmp_path: Path) -> None:
    with studio(tmp_path, max_pixels=400 * 300) as client:
        big = client.post("/api/uploads", files={"file": ("big.jpg", png(make_content(400, 300), "JPEG"))}).json()
        assert (big["width"], big["height"]) == (400, 300)  # kept at full size, for a job at full size
        assert Image.open(io.BytesIO(client.get(big["image"]).content)).size == (400, 300)
        larger = client.post("/api/uploads", files={"file": ("larger.png", png(make_content(401, 300)))})
        assert larger.status_code == 400 and "limit of 120,000 pixels" in larger.json()["error"]
        style = upload(client, make_style())
        refused = client.post("/api/jobs", json={"content": big["id"], "styles": [style], "size": 401})
        assert refused.status_code == 400 and "use a size of 400 or less" in refused.json()["error"]
        accepted = client.post("/api/jobs", json={"content": big["id"], "styles": [style], "size": 400,
                                                  "iterations": 1})
        assert accepted.status_code == 201


def test_storage_quota_refuses_uploads_and_jobs_with_a_clear_error(tmp_path: Path) -> None:
    noise = Image.effect_noise((96, 96), 80).convert("RGB")  # about 27 KB as PNG
    with studio(tmp_path, max_storage_mb=0.06) as client:
        upload(client, noise)
        first_two = [upload(client, make_content()), upload(client, make_style())]
        full = client.post("/api/uploads", files={"file": ("more.png", png(noise))})
        assert full.status_code == 507 and "storage is full" in full.json()["error"]
        assert "--max-storage-mb" in full.json()["error"]
        job = client.post("/api/jobs", json={"content": first_two[0], "styles": [first_two[1]], "size": 512})
        assert job.status_code == 507 and "storage is full" in job.json()["error"]
        small = client.post("/api/jobs", json={"content": first_two[0], "styles": [first_two[1]], "size": 32})
        assert small.status_code == 201


def test_unused_uploads_are_removed_while_the_studio_runs(tmp_path: Path) -> None:
    with studio(tmp_path, keep_uploads_hours=1 / 3600) as client:
        kept = new_job(client, iterations=1)
        unused = upload(client, make_style(seed=5))
        deadline = time.monotonic() + 20
        while client.get(f"/api/uploads/{unused}/image").status_code != 404:
            assert time.monotonic() < deadline, "the unused upload was never removed"
            time.sleep(0.2)
        assert client.get(kept["content"]["thumbnail"]).status_code == 200  # still used by a job


# who may use it ----------------------------------------------------------------------------------------------


def test_a_loopback_address_other_than_127_0_0_1_is_accepted(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    args = cli.build_parser().parse_args(["serve", "--host", "127.0.0.2", "--data", str(tmp_path / "data"),
                                          "--device", "cpu"])
    studio_config = cli.commands.studio_config(args)
    assert studio_config.token is None
    with TestClient(studio_app.create_app(studio_config), base_url="http://127.0.0.2:8000") as client:
        assert client.get("/api/info").status_code == 200
        assert client.get("/api/info", headers={"host": "127.0.0.3:8000"}).status_code == 400


@pytest.mark.parametrize("token", ["pässwörd-long-enough", "emoji-token-🙂-long", "with space inside"])
def test_tokens_no_browser_can_send_are_refused_at_start(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         token: str) -> None:
    with pytest.raises(ConfigError, match="printable ASCII"):
        StudioConfig(data=tmp_path, token=token)
    assert cli.main(["serve", "--token", token, "--data", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_the_cookie_carries_a_derived_value_and_the_log_no_token(tmp_path: Path) -> None:
    token = "correct-horse-battery"
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    access = logging.getLogger("uvicorn.access")
    handler = Collect()
    with live_server(config(tmp_path, token=token, host="0.0.0.0")) as url:
        access.addHandler(handler)
        level = access.level
        access.setLevel(logging.INFO)
        try:
            with httpx2.Client(base_url=url) as client:
                login = client.get(f"/?token={token}", follow_redirects=False)
                assert login.status_code == 303
                assert client.cookies[COOKIE] == cookie_value(token) != token
                assert client.get("/api/info").status_code == 200
            with httpx2.Client(base_url=url, cookies={COOKIE: token}) as raw:
                assert raw.get("/api/info").status_code == 401  # the token itself is not a cookie value
        finally:
            access.removeHandler(handler)
            access.setLevel(level)
    assert any("token=***" in line for line in lines), lines
    assert not any(token in line for line in lines), lines


# short, path-free errors ---------------------------------------------------------------------------------------


def test_errors_are_short_name_the_right_limit_and_show_no_server_paths(tmp_path: Path) -> None:
    with studio(tmp_path) as client:
        big_json = client.post("/api/jobs", content=b"{" + b" " * 70_000 + b"}",
                               headers={"content-type": "application/json"})
        assert big_json.status_code == 413 and "64 KB" in big_json.json()["error"], big_json.json()
        assert "25 MB" not in big_json.json()["error"]
        long_id = client.get("/api/jobs/" + "a" * 60_000)
        assert long_id.status_code == 404 and len(long_id.json()["error"]) <= 300
        huge = client.post("/api/jobs", json={"content": "0" * 16, "size": int("9" * 400)})
        assert huge.status_code in (400, 422) and len(huge.json()["error"]) <= 300, huge.json()

        info = client.get("/api/info")
        assert str(tmp_path) not in info.text and "models_folder" not in info.json()
        content, style = upload(client, make_content()), upload(client, make_style())
        (tmp_path / "data" / "uploads" / f"{content}.png").unlink()
        job = client.post("/api/jobs", json={"content": content, "styles": [style], "size": 32}).json()
        broken = wait_for(client, job["id"], finished)
        assert broken["state"] == "failed" and "no such file" in broken["error"]
        assert str(tmp_path) not in broken["error"], broken["error"]

        done = wait_for(client, new_job(client, iterations=1)["id"], finished)
        head = client.head(done["result"])
        assert head.status_code == 200 and head.headers["content-type"] == "image/png" and head.content == b""


def test_serve_refuses_an_unusable_data_folder_before_announcing_itself(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    for data in (tmp_path / "a-file" / "data", Path("/proc/stylecraft-studio")):
        assert cli.main(["serve", "--data", str(data), "--port", "0"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "open http" not in err, err


def test_a_preview_rewritten_while_it_is_sent_arrives_whole(tmp_path: Path) -> None:
    """The worker renames a new preview over the old one every few iterations; a reply must never mix the
    size of one with the bytes of the other."""
    studio_config = config(tmp_path)
    store = JobStore(studio_config.data)
    job_id = _new_job(store)
    store.cancel(job_id)  # a finished job: only the writer below touches its preview
    store.close()
    preview = studio_config.data / "jobs" / job_id / "preview.jpg"
    sizes = [make_content(32 * k, 24 * k) for k in (1, 3, 5)]
    pictures = [png(picture, "JPEG") for picture in sizes]
    files.atomic_write_bytes(preview, pictures[0])
    stop = threading.Event()

    def rewrite() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            files.atomic_write_bytes(preview, pictures[k % len(pictures)])

    with live_server(studio_config) as url:
        writer = threading.Thread(target=rewrite)
        writer.start()
        try:
            with httpx2.Client(base_url=url, timeout=30) as client:
                bodies = [client.get(f"/api/jobs/{job_id}/preview").content for _ in range(300)]
        finally:
            stop.set()
            writer.join()
    assert set(bodies) <= set(pictures)
