"""The studio's job store (SQLite plus image files under server-made ids) and the worker that runs its jobs.

Layout of the data folder::

    studio.db                 uploads and jobs (the path can be set elsewhere)
    uploads/ID.png            every accepted picture, decoded, checked and re-encoded as RGB PNG
    uploads/ID.thumb.jpg      its thumbnail for the page
    jobs/ID/preview.jpg       the picture so far, rewritten every few iterations
    jobs/ID/result.png        the finished picture, with its settings in a PNG text chunk
    jobs/ID/thumb.jpg         the result's thumbnail for the gallery

Ids are random hex strings made here; names given by users are kept for display only and never become
paths. A job is ``queued``, ``running``, then ``done``, ``failed`` or ``cancelled``; a job found ``running``
when the store opens belonged to a server that died and becomes ``interrupted`` (it can be restarted).
Every change adds 1 to a job's ``version``, so that a page can tell the newer of two copies.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from PIL import Image

from .. import api, images
from ..errors import StylecraftError, UsageError
from ..optimize import Progress

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one studio per data folder is then up to the user
    fcntl = None

log = logging.getLogger("stylecraft.studio")

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
#: States from which a job can be put back in the queue as it is.
RESTARTABLE = ("failed", "cancelled", "interrupted")
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
THUMB_SIDE = 320
#: Uploads no job uses are removed when the store opens if they are older than this many seconds.
STALE_UPLOAD_AGE = 24 * 3600

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, options TEXT NOT NULL, content TEXT NOT NULL,
    styles TEXT NOT NULL, created REAL NOT NULL, queued REAL NOT NULL, started REAL, finished REAL,
    iteration INTEGER NOT NULL DEFAULT 0, iterations INTEGER NOT NULL DEFAULT 0,
    losses TEXT NOT NULL DEFAULT '{}', elapsed REAL, preview INTEGER NOT NULL DEFAULT 0,
    result INTEGER NOT NULL DEFAULT 0, seed INTEGER, error TEXT, version INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, queued);
"""


class QueueFull(UsageError):
    """The queue already holds its maximum number of jobs."""


class NotFound(UsageError):
    """No upload or job has that id."""


class Conflict(UsageError):
    """The job is not in a state that allows the action."""


class Cancelled(KeyboardInterrupt):
    """Raised from a progress callback to stop a run; ``optimize.stylise`` ends cleanly on KeyboardInterrupt."""


def _hold_lock(path: Path) -> IO:
    """Hold an exclusive lock on ``path`` for as long as the returned file is open: one studio per data folder."""
    handle = open(path, "a+")  # noqa: SIM115 - kept open on purpose, closed by JobStore.close
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise UsageError(f"another studio is already using {path.parent}; stop it or give another --data") from None
    return handle


def new_id() -> str:
    """A random 16-hex-digit id."""
    return secrets.token_hex(8)


def thumbnail_bytes(image: Image.Image, side: int = THUMB_SIDE) -> bytes:
    """A JPEG of ``image`` at most ``side`` pixels on its long side."""
    thumb = image.convert("RGB")
    thumb.thumbnail((side, side))
    return images.encode_image(thumb, "JPEG")


class JobStore:
    """Uploads and jobs in SQLite, their pictures on disk; safe to use from several threads.

    ``on_change(job_id)`` is called after every change to a job (including its deletion).
    """

    def __init__(self, data: str | Path, db: str | Path | None = None,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.data = Path(data).resolve()
        self.uploads = self.data / "uploads"
        self.jobs_dir = self.data / "jobs"
        for folder in (self.data, self.uploads, self.jobs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.db_path = Path(db) if db else self.data / "studio.db"
        self.on_change = on_change or (lambda job_id: None)
        self._lock_file = _hold_lock(self.data / "studio.lock")
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
            self.interrupted = [row["id"] for row in self._db.execute("SELECT id FROM jobs WHERE state='running'")]
            self._db.execute("UPDATE jobs SET state='interrupted', finished=?, error=? WHERE state='running'",
                             (time.time(), "the server stopped while this job was running"))
        self._remove_stale_uploads()

    def close(self) -> None:
        """Close the database and let another studio open the data folder."""
        with self._lock:
            self._db.close()
        self._lock_file.close()

    # uploads -------------------------------------------------------------------------------------------------

    def add_upload(self, image: Image.Image, name: str) -> dict:
        """Store a decoded, checked picture under a new id; ``name`` is kept for display only."""
        upload_id = new_id()
        images.atomic_write_bytes(self.upload_path(upload_id), images.encode_image(image, "PNG"))
        images.atomic_write_bytes(self.upload_path(upload_id, thumb=True), thumbnail_bytes(image))
        with self._lock:
            self._db.execute("INSERT INTO uploads VALUES (?, ?, ?, ?, ?)",
                             (upload_id, name, image.width, image.height, time.time()))
        return self.upload(upload_id)

    def upload(self, upload_id: str) -> dict:
        """The upload's record; NotFound if there is none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE id=?", (upload_id,)).fetchone()
        if row is None:
            raise NotFound(f"no uploaded picture {upload_id!r} (it may have been deleted with its job; "
                           "pick the picture again)")
        return dict(row)

    def upload_path(self, upload_id: str, thumb: bool = False) -> Path:
        """Where an upload's picture (or thumbnail) lives; ``upload_id`` must be a well-formed id."""
        if not ID_PATTERN.match(upload_id):
            raise NotFound(f"no uploaded picture {upload_id!r}")
        return self.uploads / (f"{upload_id}.thumb.jpg" if thumb else f"{upload_id}.png")

    def _remove_upload_if_unused(self, upload_id: str) -> None:
        with self._lock:
            used = self._db.execute("SELECT 1 FROM jobs WHERE content=? OR styles LIKE ?",
                                    (upload_id, f'%"{upload_id}"%')).fetchone()
            if used:
                return
            self._db.execute("DELETE FROM uploads WHERE id=?", (upload_id,))
        for path in (self.upload_path(upload_id), self.upload_path(upload_id, thumb=True)):
            path.unlink(missing_ok=True)

    def _remove_stale_uploads(self) -> None:
        with self._lock:
            rows = self._db.execute("SELECT id FROM uploads WHERE created < ?",
                                    (time.time() - STALE_UPLOAD_AGE,)).fetchall()
        for row in rows:
            self._remove_upload_if_unused(row["id"])

    # jobs ----------------------------------------------------------------------------------------------------

    def create_job(self, content: str, styles: list[str], options: dict, max_queue: int) -> dict:
        """Queue a job on existing uploads; QueueFull when ``max_queue`` jobs are already waiting or running."""
        for upload_id in [content, *styles]:
            self.upload(upload_id)
        job_id = new_id()
        now = time.time()
        with self._lock:
            self._check_queue(max_queue)
            self._db.execute("INSERT INTO jobs (id, state, options, content, styles, created, queued) "
                             "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                             (job_id, json.dumps(options), content, json.dumps(styles), now, now))
        (self.jobs_dir / job_id).mkdir()
        self.on_change(job_id)
        return self.job(job_id)

    def _check_queue(self, max_queue: int) -> None:
        waiting = self.pending()
        if waiting >= max_queue:
            raise QueueFull(f"the queue is full ({waiting} jobs waiting or running, the limit is {max_queue}); "
                            "try again when one has finished")

    def job(self, job_id: str) -> dict:
        """The job's record with its JSON fields decoded; NotFound if there is none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return self._decode(row)

    def list_jobs(self) -> list[dict]:
        """Every job, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC, rowid DESC").fetchall()
        return [self._decode(row) for row in rows]

    def queue_position(self, job: dict) -> int | None:
        """1 for the next queued job, 2 for the one after it...; None for a job that is not queued."""
        if job["state"] != "queued":
            return None
        with self._lock:
            ahead = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state='queued' AND queued < ?",
                                     (job["queued"],)).fetchone()[0]
        return ahead + 1

    def _decode(self, row: sqlite3.Row) -> dict:
        job = dict(row)
        job["options"] = json.loads(job["options"])
        job["styles"] = json.loads(job["styles"])
        job["losses"] = json.loads(job["losses"])
        return job

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job's pictures; ``job_id`` must be a well-formed id."""
        if not ID_PATTERN.match(job_id):
            raise NotFound(f"no job {job_id!r}")
        return self.jobs_dir / job_id

    def claim_next(self) -> dict | None:
        """Mark the oldest queued job running and return it (None if the queue is empty)."""
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE state='queued' ORDER BY queued, rowid LIMIT 1").fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET state='running', started=?, error=NULL, version=version+1 WHERE id=?",
                             (time.time(), row["id"]))
        self.on_change(row["id"])
        return self.job(row["id"])

    def update(self, job_id: str, **fields: object) -> None:
        """Set fields of a job (dicts are stored as JSON); a job deleted meanwhile is ignored."""
        if not fields:
            return
        values = [json.dumps(v) if isinstance(v, dict) else v for v in fields.values()]
        assignments = ", ".join([*(f"{name}=?" for name in fields), "version=version+1"])
        with self._lock:
            changed = self._db.execute(f"UPDATE jobs SET {assignments} WHERE id=?", (*values, job_id)).rowcount
        if changed:
            self.on_change(job_id)

    def cancel(self, job_id: str) -> str:
        """Cancel a queued job at once; return the job's state before (the worker stops a running one)."""
        with self._lock:
            state = self.job(job_id)["state"]
            if state == "queued":
                self._db.execute("UPDATE jobs SET state='cancelled', finished=?, version=version+1 WHERE id=?",
                                 (time.time(), job_id))
            elif state != "running":
                raise Conflict(f"job {job_id} is {state}: only a queued or running job can be cancelled")
        self.on_change(job_id)
        return state

    def restart(self, job_id: str, max_queue: int) -> dict:
        """Put a failed, cancelled or interrupted job back at the end of the queue, from the start."""
        with self._lock:
            state = self.job(job_id)["state"]
            if state not in RESTARTABLE:
                raise Conflict(f"job {job_id} is {state}: only a {', '.join(RESTARTABLE[:-1])} or "
                               f"{RESTARTABLE[-1]} job can be restarted")
            self._check_queue(max_queue)
            self._db.execute("UPDATE jobs SET state='queued', queued=?, started=NULL, finished=NULL, iteration=0, "
                             "losses='{}', elapsed=NULL, preview=0, result=0, error=NULL, version=version+1 "
                             "WHERE id=?",
                             (time.time(), job_id))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self.job_dir(job_id).mkdir()
        self.on_change(job_id)
        return self.job(job_id)

    def delete(self, job_id: str) -> str:
        """Delete a job, its pictures and the uploads no other job uses; return the state it had.

        A running job's folder is left to the worker, which removes it when the run has stopped.
        """
        job = self.job(job_id)
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
        if job["state"] != "running":
            shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        for upload_id in {job["content"], *job["styles"]}:
            self._remove_upload_if_unused(upload_id)
        self.on_change(job_id)
        return job["state"]

    def exists(self, job_id: str) -> bool:
        """Whether the job is still in the store."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM jobs WHERE id=?", (job_id,)).fetchone() is not None

    def pending(self) -> int:
        """How many jobs are queued or running."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]


#: Model files the studio lists: from `stylecraft train`, and ONNX exports (run by onnxruntime if installed).
MODEL_SUFFIXES = (".pt", ".onnx")


def list_models(folder: Path) -> list[dict]:
    """The real-time model files (``*.pt``, ``*.onnx``) in ``folder``: name, file size and modification time,
    sorted."""
    if not folder.is_dir():
        return []
    return [{"name": path.name, "bytes": path.stat().st_size, "modified": path.stat().st_mtime}
            for path in sorted(folder.iterdir()) if path.suffix.lower() in MODEL_SUFFIXES and path.is_file()]


def model_path(folder: Path, name: str) -> Path:
    """The model file called ``name`` among those listed in ``folder`` (a name, never a path)."""
    for model in list_models(folder):
        if model["name"] == name:
            return folder / model["name"]
    known = ", ".join(m["name"] for m in list_models(folder))
    known = known or f"none: put .pt files from `stylecraft train` (or their .onnx exports) in {folder}"
    raise NotFound(f"no model {name!r}; available: {known}")


class Worker:
    """One background thread running the store's jobs one at a time, in queue order, on one device."""

    def __init__(self, store: JobStore, models: Path, device: str = "auto", preview_every: int = 10) -> None:
        self.store = store
        self.models = models
        self.device = device
        self.preview_every = preview_every
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._current: str | None = None
        self._cancelled: set[str] = set()  # running jobs asked to stop, even before the thread has them
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"stylecraft-worker-{device}", daemon=True)

    def start(self) -> None:
        """Start the thread; queued jobs (including those from before a restart) run in order."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running job (it is marked interrupted) and the thread."""
        self._stop.set()
        self._cancel.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wake(self) -> None:
        """Tell the worker that a job was queued."""
        self._wake.set()

    @property
    def current(self) -> str | None:
        """The id of the running job, if any."""
        return self._current

    def cancel(self, job_id: str) -> None:
        """Ask the running job ``job_id`` to stop at its next iteration."""
        with self._lock:
            self._cancelled.add(job_id)
            if self._current == job_id:
                self._cancel.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim_next()
            if job is None:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            with self._lock:
                self._current = job["id"]
                if job["id"] in self._cancelled:
                    self._cancel.set()
                elif not self._stop.is_set():
                    self._cancel.clear()
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._current = None
                    self._cancelled.discard(job["id"])
                if not self.store.exists(job["id"]):
                    shutil.rmtree(self.store.job_dir(job["id"]), ignore_errors=True)

    def _run(self, job: dict) -> None:
        """Run one job and record how it ended; no exception escapes (a job's failure must not end the worker)."""
        job_id = job["id"]
        began = time.perf_counter()
        try:
            state, error = self._paint(job)
        except Cancelled:
            state, error = self._stopped_state(), None
        except StylecraftError as exc:
            state, error = "failed", str(exc)
        except MemoryError:
            state, error = "failed", "out of memory; try a smaller size"
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line for the page, a log entry
            log.exception("job %s failed", job_id)
            state, error = "failed", f"unexpected error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        self.store.update(job_id, state=state, finished=time.time(), elapsed=time.perf_counter() - began,
                          error=error)

    def _stopped_state(self) -> str:
        return "interrupted" if self._stop.is_set() else "cancelled"

    def _paint(self, job: dict) -> tuple[str, str | None]:
        """Make the job's picture and save it; return the job's final state and error."""
        job_id, options = job["id"], job["options"]
        folder = self.store.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        content = images.load_image(self.store.upload_path(job["content"]))
        if options["method"] == "model":
            self.store.update(job_id, iterations=1)
            picture = api.apply_model(model_path(self.models, options["model"]), content, size=options["size"],
                                      preserve_color=options["preserve_color"], device=self.device)
            settings, stopped, done = dict(options), None, 1
        else:
            styles = [images.load_image(self.store.upload_path(s)) for s in job["styles"]]
            result = api.run("transfer", content, styles, callbacks=[self._progress(job_id, folder)],
                             device=self.device, size=options["size"], iterations=options["iterations"],
                             style_weight=options["style_weight"], preserve_color=options["preserve_color"],
                             seed=options.get("seed"))
            picture, settings = images.to_pil(result.image), result.settings
            stopped, done = result.stopped, result.iterations
            self.store.update(job_id, seed=result.seed)
        if not self.store.exists(job_id):
            return "cancelled", None
        names = {"content": self._name(job["content"]), "styles": [self._name(s) for s in job["styles"]]}
        images.atomic_write_bytes(folder / "result.png", images.encode_image(picture, "PNG", {**settings, **names}))
        images.atomic_write_bytes(folder / "thumb.jpg", thumbnail_bytes(picture))
        self.store.update(job_id, result=1, iteration=done)
        if stopped == "interrupted":
            return self._stopped_state(), None
        return ("failed", stopped) if stopped else ("done", None)

    def _name(self, upload_id: str) -> str:
        try:
            return self.store.upload(upload_id)["name"]
        except NotFound:
            return "(deleted)"

    def _progress(self, job_id: str, folder: Path) -> Callable:
        """The run's callback: stop when cancelled, write a preview every few iterations, record progress."""
        last = [0.0]

        def callback(event: Progress) -> None:
            if self._cancel.is_set():
                raise Cancelled
            fields: dict = {}
            if event.iteration % self.preview_every == 0:
                preview = images.to_pil(event.image())
                images.atomic_write_bytes(folder / "preview.jpg", images.encode_image(preview, "JPEG"))
                fields["preview"] = event.iteration
            now = time.monotonic()
            if fields or now - last[0] >= 0.25 or event.iteration == event.iterations:
                last[0] = now
                losses = {k: v for k, v in event.losses.items() if ":" not in k}
                self.store.update(job_id, iteration=event.iteration, iterations=event.iterations,
                                  elapsed=event.elapsed, losses=losses, **fields)

        return callback
