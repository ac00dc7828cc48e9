"""The studio's job store: SQLite plus image files under server-made ids.

Layout of the data folder::

    studio.db                 uploads and jobs (the path can be set elsewhere)
    studio.lock               held while a studio uses the folder (and DB.lock beside the database)
    incoming/                 uploads as they arrive, streamed to disk before anything holds them whole
    uploads/ID.png            every accepted picture, decoded, checked and re-encoded as RGB PNG
    uploads/ID.thumb.jpg      its thumbnail for the page
    uploads/ID.styles/        its previews in the built-in styles: NAME.jpg, and source.png, the picture they paint
    jobs/ID/preview.jpg       the picture so far, rewritten every few iterations
    jobs/ID/result.png        the finished picture, with its settings in a PNG text chunk
    jobs/ID/thumb.jpg         the result's thumbnail for the gallery

Folders are made private (0700) and files (0600), whatever the umask: the pictures are the user's (a data
folder that already existed keeps its own permissions; the folders the store makes in it are private).

Ids are random hex strings made here; names given by users are kept for display only and never become
paths. A job is ``queued``, ``running``, then ``done``, ``failed`` or ``cancelled``; a job found ``running``
when the store opens belonged to a server that died and becomes ``interrupted`` (it can be restarted).
Every change adds 1 to a job's ``version``, so that a page can tell the newer of two copies.

Every decision about a job's state (claim, cancel, delete, restart, finish) is taken under one lock, so a
request and the worker never act on two different ideas of the same job. A running job asked to stop (by
cancel or delete) has its stop signal set here, a ``threading.Event`` that the run checks at each iteration.
A job is live from its claim to its finish; one still ``running`` in the database but not live (its end
could not be recorded, a full disk say) takes no queue slot and can be cancelled, restarted or deleted.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from .. import images
from ..api.transfer import resume_file
from ..errors import UsageError, shorten
from ..files import atomic_write_bytes

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one studio per data folder is then up to the user
    fcntl = None

JobState = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
#: States from which a job can be put back in the queue as it is.
RESTARTABLE: tuple[JobState, ...] = ("failed", "cancelled", "interrupted")
ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
THUMB_SIDE = 320

SCHEMA = """
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    created REAL NOT NULL, kind TEXT NOT NULL DEFAULT 'picture', seconds REAL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, state TEXT NOT NULL, options TEXT NOT NULL, content TEXT NOT NULL,
    styles TEXT NOT NULL, created REAL NOT NULL, queued REAL NOT NULL, started REAL, finished REAL,
    iteration INTEGER NOT NULL DEFAULT 0, iterations INTEGER NOT NULL DEFAULT 0,
    losses TEXT NOT NULL DEFAULT '{}', elapsed REAL, preview INTEGER NOT NULL DEFAULT 0,
    result INTEGER NOT NULL DEFAULT 0, seed INTEGER, error TEXT, version INTEGER NOT NULL DEFAULT 0,
    quality TEXT, seconds_left REAL);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, queued);
"""


class JobFields(BaseModel):
    """What the store's record of a job and the page's view of it share (the one list of these fields)."""

    model_config = ConfigDict(frozen=True)

    id: str
    state: JobState
    options: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed: float | None
    seed: int | None
    error: str | None
    version: int
    quality: dict[str, float] | None = Field(description="the result's quality numbers (docs/quality.md)")
    seconds_left: float | None = Field(None, description="a running job's expected seconds to its end, from the "
                                       "pace so far (None: not known yet, or not running)")


class Job(JobFields):
    """A job as the store keeps it: its state, what it was asked (``options``, upload ids) and how far it got."""

    content: str
    styles: list[str]
    queued: float
    preview: int
    result: int

    @property
    def uploads(self) -> list[str]:
        """Every upload the job paints with: its photo, its styles and its region map (if it has one)."""
        regions = self.options.get("regions")
        return [self.content, *self.styles, *([regions["map"]] if regions else [])]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """The job of a ``jobs`` row, its JSON columns decoded."""
        values = dict(row)
        for name in ("options", "styles", "losses", "quality"):
            values[name] = None if values[name] is None else json.loads(values[name])
        return cls(**values)


#: The columns a change may set (``version`` counts the changes; an id never changes).
UPDATABLE = frozenset(Job.model_fields) - {"id", "version"}
#: An upload's files by kind, named ``<id>.<suffix>``.
UPLOAD_FILES = {"picture": "png", "video": "video", "thumb": "thumb.jpg"}
JobFile = Literal["preview", "result", "video", "thumb"]
#: A job's files by kind, in its folder.
JOB_FILES: dict[JobFile, str] = {"preview": "preview.jpg", "result": "result.png", "video": "result.mp4",
                                 "thumb": "thumb.jpg"}
PRIVATE_FOLDER, PRIVATE_FILE = 0o700, 0o600
#: SQLite's result code for a full disk (``sqlite3.SQLITE_FULL`` from Python 3.11; 3.10 has only the message).
SQLITE_FULL = 13


class QueueFull(UsageError):
    """The queue already holds its maximum number of jobs."""


class StorageFull(UsageError):
    """The data folder has reached its storage quota."""


class NotFound(UsageError):
    """No upload or job has that id."""


class Conflict(UsageError):
    """The job is not in a state that allows the action."""


class Unrunnable(UsageError):
    """A well-formed job request that could never run (too small, a video as a style): refused at once."""


@contextlib.contextmanager
def disk_full_is_storage_full() -> Iterator[None]:
    """Turn a full disk met in the block into StorageFull, as the quota is: a file's ENOSPC (or a quota's
    EDQUOT), or SQLite's "database or disk is full"."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        full = (exc.errno in (errno.ENOSPC, errno.EDQUOT) if isinstance(exc, OSError)
                else getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL or str(exc) == "database or disk is full")
        if not full:
            raise
        raise StorageFull("the disk is full; delete old jobs in the gallery, or free space on the server's "
                          "disk") from None


def private_folder(folder: Path, keep_existing: bool = False) -> Path:
    """``folder``, made if missing, readable by its owner only whatever the umask (with ``keep_existing``, a
    folder that already exists keeps the permissions its owner gave it: a data folder the user chose)."""
    if keep_existing and folder.is_dir():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(PRIVATE_FOLDER)
    return folder


def private_file(path: Path) -> None:
    """Make the file at ``path`` readable and writable by its owner only."""
    path.chmod(PRIVATE_FILE)


def _hold_lock(path: Path) -> IO[str]:
    """Hold an exclusive lock on ``path`` for as long as the returned file is open: one studio per data folder
    and per database."""
    handle = open(path, "a+")  # noqa: SIM115 - kept open on purpose, closed by JobStore.close
    private_file(path)
    if fcntl is not None:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise UsageError(f"another studio is already using {path.with_suffix('').name}; stop it or give "
                             "another `data` folder and `db`") from None
    return handle


def new_id() -> str:
    """A random 16-hex-digit id."""
    return secrets.token_hex(8)


def thumbnail_bytes(image: Image.Image, side: int = THUMB_SIDE) -> bytes:
    """A JPEG of ``image`` at most ``side`` pixels on its long side."""
    thumb = image.convert("RGB")
    thumb.thumbnail((side, side))
    return images.encode_image(thumb, "JPEG")


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under ``folder``."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(FileNotFoundError):  # removed while we walked
                total += os.stat(os.path.join(root, name)).st_size
    return total


class JobStore:
    """Uploads and jobs in SQLite, their pictures on disk; safe to use from several threads.

    ``on_change(job_id)`` is called after every change to a job (including its deletion). ``max_bytes`` is
    the storage quota of the uploads and job pictures (None: no quota).
    """

    def __init__(self, data: str | Path, db: str | Path | None = None,
                 on_change: Callable[[str], None] | None = None, max_bytes: int | None = None) -> None:
        self.data = Path(data).resolve()
        self.uploads = self.data / "uploads"
        self.jobs_dir = self.data / "jobs"
        self.incoming_dir = self.data / "incoming"
        private_folder(self.data, keep_existing=True)
        for folder in (self.uploads, self.jobs_dir, self.incoming_dir):
            private_folder(folder)
        self.db_path = Path(db).resolve() if db else self.data / "studio.db"
        self.on_change = on_change or (lambda job_id: None)
        self.max_bytes = max_bytes
        self._locks = [_hold_lock(self.data / "studio.lock")]
        try:
            self._locks.append(_hold_lock(self.db_path.with_name(self.db_path.name + ".lock")))
        except UsageError:
            self._locks[0].close()
            raise
        self._lock = threading.RLock()
        self._space_lock = threading.Lock()
        self._stop_signals: dict[str, threading.Event] = {}
        try:
            self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._check_not_orphaning()
            self._db.execute("PRAGMA journal_mode=WAL")
            for path in (self.db_path, *(self.db_path.with_name(self.db_path.name + s) for s in ("-wal", "-shm"))):
                with contextlib.suppress(FileNotFoundError):
                    private_file(path)
            self._check_integrity()
            self._db.executescript(SCHEMA)
            columns = {row["name"] for row in self._db.execute("PRAGMA table_info(uploads)")}
            if "kind" not in columns:  # a database from before videos
                self._db.execute("ALTER TABLE uploads ADD COLUMN kind TEXT NOT NULL DEFAULT 'picture'")
                self._db.execute("ALTER TABLE uploads ADD COLUMN seconds REAL")
            job_columns = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
            if "quality" not in job_columns:
                self._db.execute("ALTER TABLE jobs ADD COLUMN quality TEXT")  # a database from before scores
            if "seconds_left" not in job_columns:
                self._db.execute("ALTER TABLE jobs ADD COLUMN seconds_left REAL")  # from before estimates
            self.interrupted = [row["id"] for row in self._db.execute("SELECT id FROM jobs WHERE state='running'")]
            self._db.execute("UPDATE jobs SET state='interrupted', finished=?, error=? WHERE state='running'",
                             (time.time(), "the server stopped while this job was running"))
        except (sqlite3.Error, UsageError) as exc:
            for handle in self._locks:
                handle.close()
            if isinstance(exc, UsageError):
                raise
            raise UsageError(f"cannot use the job database {self.db_path} ({exc})") from None
        for stale in self.incoming_dir.iterdir():  # uploads that were arriving when a studio stopped
            stale.unlink(missing_ok=True)

    def _check_integrity(self) -> None:
        """UsageError if the database file is damaged: found now, in one line, not by the requests that read
        the bad pages later."""
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA integrity_check(1)")]
        except sqlite3.OperationalError:  # locked, or an I/O error: not a damaged file
            raise
        except sqlite3.DatabaseError as exc:  # "database disk image is malformed", and the like
            problems = [str(exc)]
        if problems != ["ok"]:
            detail = shorten(" ".join(str(problems[0]).split()))
            raise UsageError(f"the job database {self.db_path} is damaged ({detail}); move it away to start with an "
                             "empty one, or restore a copy")

    def _check_not_orphaning(self) -> None:
        """UsageError if the database is empty (emptied to 0 bytes, or missing) while the data folder holds jobs
        or uploads: an empty gallery would leave them orphaned, taking space that nothing could free."""
        if self._db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None:
            return
        jobs = sum(1 for path in self.jobs_dir.iterdir() if ID_PATTERN.match(path.name))
        uploads = len({path.name[:16] for path in self.uploads.iterdir() if ID_PATTERN.match(path.name[:16])})
        if jobs or uploads:
            raise UsageError(f"the job database {self.db_path} is empty, but {self.data} holds {jobs} jobs and "
                             f"{uploads} uploads; restore a copy of the database, or move jobs/ and uploads/ away "
                             "to start with an empty gallery")

    def close(self) -> None:
        """Close the database and let another studio open the data folder."""
        with self._lock:
            self._db.close()
        for handle in self._locks:
            handle.close()

    # storage ---------------------------------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """The bytes taken by uploads and job pictures."""
        return folder_bytes(self.uploads) + folder_bytes(self.jobs_dir)

    def _check_space(self, adding: int = 0) -> None:
        if self.max_bytes is None:
            return
        used = self.used_bytes()
        if used + adding > self.max_bytes:
            raise StorageFull(f"the studio's storage is full ({used / 2**20:.0f} of {self.max_bytes / 2**20:.0f} "
                              "MB used); delete old jobs in the gallery, or start it with a larger "
                              "`max_storage_mb`")

    # uploads -------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def incoming(self) -> Iterator[tuple[IO[bytes], Path]]:
        """A private temporary file for an upload as it arrives, removed when the block ends (unless
        :meth:`add_video_upload` took it); a full disk is StorageFull."""
        handle, name = tempfile.mkstemp(dir=self.incoming_dir, suffix=".part")
        path = Path(name)
        try:
            with os.fdopen(handle, "w+b") as stream, disk_full_is_storage_full():
                yield stream, path
        finally:
            path.unlink(missing_ok=True)

    def write_file(self, path: Path, data: bytes) -> None:
        """Write one of the store's files atomically and privately; a full disk is StorageFull."""
        with disk_full_is_storage_full():
            atomic_write_bytes(path, data)
        private_file(path)

    def add_upload(self, image: Image.Image, name: str) -> dict[str, Any]:
        """Store a decoded, checked picture under a new id; ``name`` is kept for display only.

        StorageFull when the picture would take the store past its quota or the disk is full.
        """
        upload_id = new_id()
        picture, thumb = images.encode_image(image, "PNG"), thumbnail_bytes(image)
        with self._space_lock:
            self._check_space(len(picture) + len(thumb))
            with self._new_upload(upload_id):
                self.write_file(self.upload_path(upload_id), picture)
                self.write_file(self.upload_path(upload_id, "thumb"), thumb)
                return self._record_upload(upload_id, name, image.size, "picture", None)

    def add_video_upload(self, source: Path, name: str, size: tuple[int, int], seconds: float,
                         first_frame: Image.Image) -> dict[str, Any]:
        """Keep a checked video file as it came (moved from ``source``; ``size`` and ``seconds`` as read from
        it) under a new id, with a thumbnail of its first frame. StorageFull past the quota."""
        upload_id = new_id()
        thumb = thumbnail_bytes(first_frame)
        with self._space_lock:
            self._check_space(source.stat().st_size + len(thumb))
            with self._new_upload(upload_id):
                self.write_file(self.upload_path(upload_id, "thumb"), thumb)
                os.replace(source, self.upload_path(upload_id, "video"))
                private_file(self.upload_path(upload_id, "video"))
                return self._record_upload(upload_id, name, size, "video", seconds)

    @contextlib.contextmanager
    def _new_upload(self, upload_id: str) -> Iterator[None]:
        """Remove the upload's files if the block fails: none is left without its row."""
        try:
            yield
        except BaseException:
            for kind in UPLOAD_FILES:
                self.upload_path(upload_id, kind).unlink(missing_ok=True)
            raise

    def _record_upload(self, upload_id: str, name: str, size: tuple[int, int], kind: str,
                       seconds: float | None) -> dict[str, Any]:
        with self._lock, disk_full_is_storage_full():
            self._db.execute("INSERT INTO uploads (id, name, width, height, created, kind, seconds) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?)", (upload_id, name, *size, time.time(), kind, seconds))
        return self.upload(upload_id)

    def upload(self, upload_id: str) -> dict[str, Any]:
        """The upload's record; NotFound if there is none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM uploads WHERE id=?", (upload_id,)).fetchone()
        if row is None:
            raise NotFound(f"no uploaded picture {shorten(upload_id)!r} (it may have been deleted with its "
                           "job or for lack of use; pick the picture again)")
        return dict(row)

    def upload_path(self, upload_id: str, kind: str = "picture") -> Path:
        """Where an upload's file of ``kind`` lives: its "picture" (PNG), "video" (as uploaded) or "thumb";
        ``upload_id`` must be a well-formed id."""
        if not ID_PATTERN.match(upload_id):
            raise NotFound(f"no uploaded picture {shorten(upload_id)!r}")
        return self.uploads / f"{upload_id}.{UPLOAD_FILES[kind]}"

    def style_previews(self, upload_id: str) -> Path:
        """The folder of an upload's previews in the built-in styles; ``upload_id`` must be a well-formed id."""
        return self.upload_path(upload_id).with_suffix(".styles")

    def add_style_preview(self, upload_id: str, name: str, data: bytes) -> None:
        """Keep the file ``name`` among the upload's previews; NotFound if the upload was removed meanwhile (no
        preview outlives its upload), StorageFull past the quota."""
        with self._space_lock, self._lock:
            self.upload(upload_id)
            self._check_space(len(data))
            self.write_file(private_folder(self.style_previews(upload_id)) / name, data)

    def _remove_upload_if_unused(self, upload_id: str) -> None:
        with self._lock:
            pattern = f'%"{upload_id}"%'  # in a job's styles, or its options as a region map
            used = self._db.execute("SELECT 1 FROM jobs WHERE content=? OR styles LIKE ? OR options LIKE ?",
                                    (upload_id, pattern, pattern)).fetchone()
            if used:
                return
            self._db.execute("DELETE FROM uploads WHERE id=?", (upload_id,))
            for kind in UPLOAD_FILES:
                self.upload_path(upload_id, kind).unlink(missing_ok=True)
            shutil.rmtree(self.style_previews(upload_id), ignore_errors=True)

    def remove_unused_uploads(self, older_than: float) -> int:
        """Remove the uploads no job uses that are older than ``older_than`` seconds; return how many."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM uploads WHERE created < ?",
                                    (time.time() - older_than,)).fetchall()
            before: int = self._db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0]
            for row in rows:
                self._remove_upload_if_unused(row["id"])
            after: int = self._db.execute("SELECT COUNT(*) FROM uploads").fetchone()[0]
            return before - after

    # jobs ----------------------------------------------------------------------------------------------------

    def create_job(self, content: str, styles: list[str], options: dict[str, Any], max_queue: int,
                   room: int = 0) -> Job:
        """Queue a job on existing uploads; QueueFull when ``max_queue`` jobs are already waiting or running,
        StorageFull when the store lacks ``room`` bytes for its pictures."""
        self._check_space(room)
        job_id = new_id()
        now = time.time()
        with self._lock:
            for upload_id in [content, *styles]:
                self.upload(upload_id)
            self._check_queue(max_queue)
            try:
                with disk_full_is_storage_full():
                    private_folder(self.job_dir(job_id))
                    self._db.execute("INSERT INTO jobs (id, state, options, content, styles, created, queued) "
                                     "VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                                     (job_id, json.dumps(options), content, json.dumps(styles), now, now))
            except BaseException:  # no folder without its job
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                raise
            job = self._job(job_id)
        self.on_change(job_id)
        return job

    def _check_queue(self, max_queue: int) -> None:
        waiting = self.pending()
        if waiting >= max_queue:
            raise QueueFull(f"the queue is full ({waiting} jobs waiting or running, the limit is {max_queue}); "
                            "try again when one has finished")

    def job(self, job_id: str) -> Job:
        """The job; NotFound if there is none."""
        with self._lock:
            return self._job(job_id)

    def _job(self, job_id: str) -> Job:
        row = self._db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job {shorten(job_id)!r}")
        return Job.from_row(row)

    def list_jobs(self) -> list[Job]:
        """Every job, newest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM jobs ORDER BY created DESC, rowid DESC").fetchall()
        return [Job.from_row(row) for row in rows]

    def queue_position(self, job: Job) -> int | None:
        """1 for the next queued job, 2 for the one after it...; None for a job that is not queued."""
        if job.state != "queued":
            return None
        with self._lock:
            ahead: int = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state='queued' AND queued < ?",
                                          (job.queued,)).fetchone()[0]
        return ahead + 1

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job's pictures; ``job_id`` must be a well-formed id."""
        if not ID_PATTERN.match(job_id):
            raise NotFound(f"no job {shorten(job_id)!r}")
        return self.jobs_dir / job_id

    def job_file(self, job_id: str, kind: JobFile) -> Path:
        """Where a job's file of ``kind`` lives: its "preview", "result" (a picture), "video" or "thumb"."""
        return self.job_dir(job_id) / JOB_FILES[kind]

    def claim_next(self) -> Job | None:
        """Mark the oldest queued job running and return its record (None if the queue is empty)."""
        with self._lock:
            row = self._db.execute("SELECT id FROM jobs WHERE state='queued' ORDER BY queued, rowid LIMIT 1").fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE jobs SET state='running', started=?, error=NULL, version=version+1 WHERE id=?",
                             (time.time(), row["id"]))
            self._stop_signals[row["id"]] = threading.Event()
            job = self._job(row["id"])
        self.on_change(job.id)
        return job

    def update(self, job_id: str, **fields: object) -> bool:
        """Set fields of a job (dicts are stored as JSON); return False if the job was deleted meanwhile."""
        with self._lock:
            changed = self._set(job_id, fields)
        if changed:
            self.on_change(job_id)
        return changed

    def _set(self, job_id: str, fields: dict[str, object], running_only: bool = False) -> bool:
        """Set the job's columns named in ``fields`` (known columns only: the names become SQL)."""
        unknown = set(fields) - UPDATABLE
        if unknown:
            raise ValueError(f"unknown job fields: {', '.join(sorted(unknown))}")
        values = [json.dumps(v) if isinstance(v, dict) else v for v in fields.values()]
        assignments = ", ".join([*(f"{name}=?" for name in fields), "version=version+1"])
        condition = "id=? AND state='running'" if running_only else "id=?"
        return bool(self._db.execute(f"UPDATE jobs SET {assignments} WHERE {condition}", (*values, job_id)).rowcount)

    def finish(self, job_id: str, **fields: object) -> bool:
        """Record how a running job ended; return False if it was deleted while it ran (its folder is then the
        caller's to remove).

        The job stops being live first, so that if the record fails it can still be cancelled, restarted or
        deleted; a job no longer ``running`` (so acted on since) is left as it is.
        """
        with self._lock:
            self._stop_signals.pop(job_id, None)
            self._set(job_id, fields, running_only=True)
            kept = self._db.execute("SELECT 1 FROM jobs WHERE id=?", (job_id,)).fetchone() is not None
        self.on_change(job_id)
        return kept

    def _live(self, job_id: str) -> bool:
        """Whether the job is being run: claimed, and its end not yet recorded."""
        return job_id in self._stop_signals

    def stop_signal(self, job_id: str) -> threading.Event:
        """The live job's stop signal: set when it is cancelled or deleted (or the studio stops); a job that
        is not live gets an event of its own that nothing watches."""
        with self._lock:
            return self._stop_signals.get(job_id) or threading.Event()

    def stop_requested(self, job_id: str) -> bool:
        """Whether the running job was cancelled or deleted since it was claimed."""
        return self.stop_signal(job_id).is_set()

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued job at once, or ask a running one to stop; return the job's record."""
        with self._lock:
            state = self._job(job_id).state
            if state == "running" and self._live(job_id):
                self._stop_signals[job_id].set()
            elif state in ("queued", "running"):
                self._db.execute("UPDATE jobs SET state='cancelled', finished=?, version=version+1 WHERE id=?",
                                 (time.time(), job_id))
            else:
                raise Conflict(f"job {job_id} is {state}: only a queued or running job can be cancelled")
            job = self._job(job_id)
        self.on_change(job_id)
        return job

    def restart(self, job_id: str, max_queue: int) -> Job:
        """Put a failed, cancelled or interrupted job back at the end of the queue: from where it stopped when
        its run left a checkpoint next to its picture (the worker resumes from it), else from the start."""
        with self._lock:
            state = self._job(job_id).state
            if state not in RESTARTABLE and not (state == "running" and not self._live(job_id)):
                raise Conflict(f"job {job_id} is {state}: only a {', '.join(RESTARTABLE[:-1])} or "
                               f"{RESTARTABLE[-1]} job can be restarted")
            self._check_queue(max_queue)
            result = self.job_file(job_id, "result")
            if resume_file(result).is_file():
                for path in self.job_dir(job_id).iterdir():
                    if path not in (result, resume_file(result)):
                        path.unlink(missing_ok=True)
            else:
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                private_folder(self.job_dir(job_id))
            self._db.execute("UPDATE jobs SET state='queued', queued=?, started=NULL, finished=NULL, iteration=0, "
                             "losses='{}', elapsed=NULL, preview=0, result=0, error=NULL, quality=NULL, "
                             "seconds_left=NULL, version=version+1 WHERE id=?",
                             (time.time(), job_id))
            job = self._job(job_id)
        self.on_change(job_id)
        return job

    def delete(self, job_id: str) -> str:
        """Delete a job, its pictures and the uploads no other job uses; return the state it had.

        A running job is asked to stop, and its folder is left to the worker, which removes it when the run
        has stopped.
        """
        with self._lock:
            job = self._job(job_id)
            self._db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
            if self._live(job_id):
                self._stop_signals[job_id].set()
            else:
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            for upload_id in set(job.uploads):
                self._remove_upload_if_unused(upload_id)
        self.on_change(job_id)
        return job.state

    def pending(self) -> int:
        """How many jobs are queued or live."""
        with self._lock:
            rows = self._db.execute("SELECT id, state FROM jobs WHERE state IN ('queued', 'running')").fetchall()
            return sum(1 for row in rows if row["state"] == "queued" or self._live(row["id"]))
