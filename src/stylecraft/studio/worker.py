"""The studio's worker: one background thread that runs the store's jobs one at a time, in queue order.

The thread must outlive anything a job or the database can throw at it: a failure in one pass is logged,
the job is marked failed with a one-line reason, and the loop goes on. A job whose end the database refuses
to record (a full disk) is recorded at the next passes, so that every job ends in a final state. Between jobs
it also removes the uploads that no job has used for a while.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from .. import api, images
from ..api.video import VideoProgress
from ..errors import StylecraftError, one_line
from ..feedforward import StyleModel, styles
from ..optimize import Progress
from ..video.io import VideoReader
from .models import model_source
from .store import Job, JobStore, NotFound, private_file, private_folder, thumbnail_bytes

log = logging.getLogger("stylecraft.studio")
#: The folder of the built-in styles, which no error shown on the page names.
BUILTIN = styles.builtin_file().parent


class Worker:
    """One background thread running the store's jobs one at a time, in queue order, on one device.

    Every ``sweep_every`` seconds it removes uploads that no job uses and that are older than ``upload_ttl``
    seconds.
    """

    def __init__(self, store: JobStore, models: Path, device: str = "auto", preview_every: int = 10,
                 upload_ttl: float = 24 * 3600, sweep_every: float = 300) -> None:
        self.store = store
        self.models = models
        self.device = device
        self.preview_every = preview_every
        self.upload_ttl = upload_ttl
        self.sweep_every = min(sweep_every, upload_ttl)
        self._swept = float("-inf")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._current: str | None = None
        #: The ends of jobs that the database refused to record, by job id: tried again at each pass.
        self._unrecorded: dict[str, dict[str, object]] = {}
        self._thread = threading.Thread(target=self._loop, name=f"stylecraft-worker-{device}", daemon=True)

    def start(self) -> None:
        """Start the thread; queued jobs (including those from before a restart) run in order."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running job (it is marked interrupted) and the thread."""
        self._stop.set()
        current = self._current
        if current is not None:
            self.store.stop_signal(current).set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def wake(self) -> None:
        """Tell the worker that a job was queued."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    @property
    def current(self) -> str | None:
        """The id of the running job, if any."""
        return self._current

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self._pass()
            except Exception:  # noqa: BLE001 - the worker must survive a broken pass (a database error, say)
                log.exception("the studio's worker failed in a pass; going on")
                busy = False
            if not busy:
                self._wake.wait(1.0)
                self._wake.clear()

    def _pass(self) -> bool:
        """Record the ends not yet recorded, sweep old uploads when due, then run the next job; return whether
        there was one."""
        for job_id, fields in list(self._unrecorded.items()):
            self._record_end(job_id, fields)
            del self._unrecorded[job_id]
        if time.monotonic() - self._swept >= self.sweep_every:
            self._swept = time.monotonic()
            removed = self.store.remove_unused_uploads(self.upload_ttl)
            if removed:
                log.info("removed %d unused uploads", removed)
        job = self.store.claim_next()
        if job is None:
            return False
        job_id, began = job.id, time.perf_counter()
        self._current = job_id
        if self._stop.is_set():  # stop() came between the claim and now
            self.store.stop_signal(job_id).set()
        try:
            state, error = self._run(job)
        finally:
            self._current = None
        try:
            self._record_end(job_id, {"state": state, "finished": time.time(),
                                      "elapsed": time.perf_counter() - began, "error": error})
        except Exception as exc:  # noqa: BLE001 - say so on the job if the database lets us at all
            log.exception("could not record the end of job %s", job_id)
            failed = {"state": "failed", "finished": time.time(), "error": f"could not record the result: "
                      f"{one_line(exc)}"}
            try:
                self._record_end(job_id, failed)
            except Exception:  # noqa: BLE001 - the database refuses (a full disk): try again next pass
                log.exception("could not record the failure of job %s; trying again", job_id)
                self._unrecorded[job_id] = failed
        return True

    def _record_end(self, job_id: str, fields: dict[str, object]) -> None:
        """Record how a job ended, and remove its folder if it was deleted while it ran."""
        if not self.store.finish(job_id, **fields):
            shutil.rmtree(self.store.job_dir(job_id), ignore_errors=True)

    def _run(self, job: Job) -> tuple[str, str | None]:
        """Run one job; return its final state and a one-line error. No exception escapes."""
        try:
            return self._paint(job)
        except StylecraftError as exc:
            return "failed", self._public(one_line(exc))
        except MemoryError:
            return "failed", "out of memory; try a smaller size"
        except Exception as exc:  # noqa: BLE001 - the last line of defence: one line for the page, a log entry
            log.exception("job %s failed", job.id)
            return "failed", f"unexpected error: {self._public(one_line(exc))}"

    def _public(self, message: str) -> str:
        """``message`` without the server's folders: a page shows names, never the server's paths."""
        for folder in (self.store.uploads, self.store.jobs_dir, self.models, self.store.data, BUILTIN):
            message = message.replace(f"{folder}/", "")
        return message

    def _stopped_state(self) -> str:
        return "interrupted" if self._stop.is_set() else "cancelled"

    def _paint(self, job: Job) -> tuple[str, str | None]:
        """Make the job's picture and save it; return the job's final state and error."""
        job_id, options = job.id, job.options
        private_folder(self.store.job_dir(job_id))
        if self.store.upload(job.content)["kind"] == "video":
            return self._paint_video(job)
        content = images.load_image(self.store.upload_path(job.content))
        if options["method"] == "model":
            self.store.update(job_id, iterations=1)
            picture = api.apply_model(self._model(options["model"]), content, size=options["size"],
                                      preserve_color=options["preserve_color"])
            settings, stopped, done, result = dict(options), None, 1, None
        else:
            styles = [images.load_image(self.store.upload_path(s)) for s in job.styles]
            earlier = self.store.job_file(job_id, "result")  # a stopped run's picture, with its checkpoint
            result = api.run("transfer", content, styles, callbacks=[self._progress(job_id)],
                             device=self.device, stop=self.store.stop_signal(job_id), size=options["size"],
                             iterations=options["iterations"], style_weight=options["style_weight"],
                             preserve_color=options["preserve_color"], seed=options.get("seed"),
                             resume=earlier if api.resume_file(earlier).is_file() else None)
            picture, settings = images.to_pil(result.image), result.settings
            stopped, done = result.stopped, result.iterations
            self.store.update(job_id, seed=result.seed, quality=result.settings.get("quality"))
        if self.store.stop_requested(job_id):
            stopped = "cancelled"
        names = {"content": self._name(job.content), "styles": [self._name(s) for s in job.styles]}
        self.store.write_file(self.store.job_file(job_id, "result"),
                              images.encode_image(picture, "PNG", {**settings, **names}))
        if result is not None:  # the checkpoint of a stopped run, which a restart goes on from
            api.save_resume(result, self.store.job_file(job_id, "result"))
        self.store.write_file(self.store.job_file(job_id, "thumb"), thumbnail_bytes(picture))
        self.store.update(job_id, result=1, iteration=done)
        if stopped == "cancelled":
            return self._stopped_state(), None
        return ("failed", stopped) if stopped else ("done", None)

    def _paint_video(self, job: Job) -> tuple[str, str | None]:
        """Paint the job's video with its real-time model; a stop keeps the frames painted so far."""
        job_id, options = job.id, job.options
        last = [0.0]

        def progress(event: VideoProgress) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.25 or event.step == event.total:
                last[0] = now
                self.store.update(job_id, iterations=event.total or 0, iteration=event.step,
                                  elapsed=event.elapsed)

        result = api.paint_video(self.store.upload_path(job.content, "video"), self.store.job_file(job_id, "video"),
                                 model=self._model(options["model"]), size=options["size"],
                                 preserve_color=options["preserve_color"], callbacks=[progress],
                                 stop=self.store.stop_signal(job_id))
        private_file(result.output)
        with VideoReader(result.output) as painted:
            first = Image.fromarray(next(iter(painted)))
        self.store.write_file(self.store.job_file(job_id, "thumb"), thumbnail_bytes(first))
        self.store.update(job_id, result=1, iteration=result.frames, iterations=result.info.frames)
        if result.stopped:
            return self._stopped_state(), None
        return "done", None

    def _model(self, name: str) -> StyleModel:
        """The real-time model called ``name`` (a built-in style or a file in the models folder), loaded on the
        worker's device."""
        path, style = model_source(self.models, name)
        return api.load_style_model(path, device=self.device, style=style)

    def _name(self, upload_id: str) -> str:
        try:
            name: str = self.store.upload(upload_id)["name"]
            return name
        except NotFound:
            return "(deleted)"

    def _progress(self, job_id: str) -> Callable[[Progress], None]:
        """The run's callback: write a preview every few iterations, record progress."""
        last = [0.0]

        def callback(event: Progress) -> None:
            fields: dict[str, object] = {}
            if event.iteration % self.preview_every == 0:
                preview = images.to_pil(event.image())
                self.store.write_file(self.store.job_file(job_id, "preview"), images.encode_image(preview, "JPEG"))
                fields["preview"] = event.iteration
            now = time.monotonic()
            if fields or now - last[0] >= 0.25 or event.iteration == event.iterations:
                last[0] = now
                losses = {k: v for k, v in event.losses.items() if ":" not in k}
                self.store.update(job_id, iterations=event.iterations, iteration=event.iteration,
                                  elapsed=event.elapsed, losses=losses, **fields)

        return callback
