"""The studio's worker: background threads that run the store's jobs in queue order, one at a time on this
machine, or several at once on a Ray cluster (``Cluster``: :class:`stylecraft.api.ray_engine.RayJobs`), one
thread a job the cluster has room for.

On a cluster a picture job runs as a task there (:func:`paint_picture` with the pictures, not their paths): its
progress and previews come back through the cluster and are written here, so the SQLite store stays the one
record on the studio's machine; a cancel reaches the task the same way. Videos are painted on the studio's
machine in either case.

The threads must outlive anything a job or the database can throw at them: a failure in one pass is logged,
the job is marked failed with a one-line reason, and the loop goes on. A job whose end the database refuses
to record (a full disk) is recorded at the next passes, so that every job ends in a final state. Between jobs
they also remove the uploads that no job has used for a while.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from .. import api, images
from ..api.realtime import Model
from ..api.video import VideoProgress
from ..errors import StylecraftError, one_line
from ..feedforward import styles
from ..optimize import Checkpoint, Progress, TransferConfig, schedule
from ..progress import Stop
from ..video.io import VideoReader
from . import regions
from .models import model_source
from .store import Job, JobStore, NotFound, private_file, private_folder, thumbnail_bytes

log = logging.getLogger("stylecraft.studio")
#: The folder of the built-in styles, which no error shown on the page names.
BUILTIN = styles.builtin_file().parent
#: What a picture job reports as it runs: fields of the job's record, and a preview (a JPEG) or None.
Report = Callable[[dict[str, Any], "bytes | None"], None]


class Cluster(Protocol):
    """Where a studio runs picture jobs besides this machine: :class:`stylecraft.api.ray_engine.RayJobs`."""

    def slots(self) -> int:
        """How many jobs it can run at once."""
        ...

    def run(self, work: Callable[..., Any], args: Sequence[Any], stop: threading.Event,
            on_progress: Report) -> Any:
        """``work(*args, remote_stop)`` there; its progress to ``on_progress`` here until it returns."""
        ...

    def close(self) -> None:
        """Let go of the cluster."""
        ...


@dataclass
class Painted:
    """A picture job's result: the picture, its settings, why it stopped early (None: it ran to its end), the
    iterations done, and for the optimiser its seed and quality numbers."""

    picture: Image.Image
    settings: dict[str, Any]
    stopped: str | None
    done: int
    seed: int | None = None
    quality: dict[str, float] | None = None
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class ModelFile:
    """A real-time model as it travels to a cluster's worker: a file's bytes (None: the built-in network, which
    every installation has) and the style it paints."""

    data: bytes | None
    suffix: str
    style: str | None

    def load(self, device: str) -> Model:
        """The model, loaded on ``device``."""
        if self.data is None:
            return api.load_style_model(styles.builtin_file(), device=device, style=self.style)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"model{self.suffix}"
            path.write_bytes(self.data)
            return api.load_style_model(path, device=device, style=self.style)


def paint_picture(options: dict[str, Any], content: Image.Image, style_pictures: Sequence[Image.Image],
                  masks: Sequence[Image.Image] | None, model: Model | ModelFile | None, device: str,
                  preview_every: int, report: Report, stop: Stop, resume: Path | None = None) -> Painted:
    """Paint a picture job: with the real-time ``model`` (options' method "model"), or by the optimiser towards
    ``style_pictures`` (each in its region of ``masks``, when the job paints regions), reporting progress and a
    preview every ``preview_every`` iterations; ``resume``: the picture of the job's stopped run, whose
    checkpoint lies beside it (on this machine's engine; a cluster's job starts again)."""
    if options["method"] == "model":
        assert model is not None
        report({"iterations": 1}, None)
        loaded = model.load(device) if isinstance(model, ModelFile) else model
        picture = api.apply_model(loaded, content, size=options["size"], preserve_color=options["preserve_color"])
        return Painted(picture, dict(options), None, 1)
    _one_pass_preview(options, content, style_pictures, masks, device, report)
    plan = schedule(TransferConfig(size=options["size"], iterations=options["iterations"]),
                    images.fit_long_side(*content.size, options["size"]))
    result = api.run("transfer", content, list(style_pictures), masks=masks,
                     callbacks=[_progress(report, preview_every, plan)],
                     device=device, stop=stop, size=options["size"], iterations=options["iterations"],
                     style_weight=options["style_weight"], preserve_color=options["preserve_color"],
                     seed=options.get("seed"), resume=resume)
    return Painted(images.to_pil(result.image), result.settings, result.stopped, result.iterations, result.seed,
                   result.settings.get("quality"), result.checkpoint)


def _one_pass_preview(options: dict[str, Any], content: Image.Image, style_pictures: Sequence[Image.Image],
                      masks: Sequence[Image.Image] | None, device: str, report: Report) -> None:
    """The paintings in one pass (each in its region with ``masks``), reported as the job's first preview within
    seconds, before the optimiser's first; a painting the decoders cannot take (one flat colour) has none."""
    try:
        loaded = api.load_one_pass(list(style_pictures), masks=masks, device=device)
        picture = api.apply_model(loaded, content, size=options["size"], preserve_color=options["preserve_color"])
    except StylecraftError as exc:
        log.info("no one-pass preview: %s", one_line(exc))
        return
    # Previews are numbered by the optimiser's iteration (0: none yet); -1 is this one, before the first.
    report({"iterations": options["iterations"], "iteration": 0, "preview": -1}, images.encode_image(picture, "JPEG"))


def seconds_left(plan: Sequence[tuple[tuple[int, int], int]], event: Progress, since: int = 0) -> float | None:
    """The seconds a run of ``plan`` (its scales' sizes and iterations, coarse to fine) should still take after
    ``event``, at the pace of its iterations after ``since`` (where a resumed run began): an iteration's cost is
    taken as its scale's pixels, so the cheap small scales at the start do not promise a quick end. None before
    any iteration, or for a run of another plan."""
    if event.scales != len(plan) or event.elapsed <= 0:
        return None
    done = _work(plan, event.iteration) - _work(plan, since)
    return event.elapsed * (_work(plan, event.iterations) - _work(plan, event.iteration)) / done if done > 0 else None


def _work(plan: Sequence[tuple[tuple[int, int], int]], iterations: int) -> int:
    """The pixels the first ``iterations`` of ``plan`` optimise, all told."""
    total = 0
    for (width, height), count in plan:
        total += min(count, max(0, iterations)) * width * height
        iterations -= count
    return total


def _progress(report: Report, preview_every: int,
              plan: Sequence[tuple[tuple[int, int], int]]) -> Callable[[Progress], None]:
    """The optimiser's callback: a preview every ``preview_every`` iterations, progress (with the time left by
    ``plan``) at most four times a second (and at the last iteration)."""
    last = [0.0]
    since: list[int] = []  # the iteration the run began after (0, or where a resumed run goes on)

    def callback(event: Progress) -> None:
        if not since:
            since.append(event.iteration - 1)
        fields: dict[str, Any] = {}
        preview = None
        if event.iteration % preview_every == 0:
            preview = images.encode_image(images.to_pil(event.image()), "JPEG")
            fields["preview"] = event.iteration
        now = time.monotonic()
        if fields or now - last[0] >= 0.25 or event.iteration == event.iterations:
            last[0] = now
            losses = {k: v for k, v in event.losses.items() if ":" not in k}
            report({"iterations": event.iterations, "iteration": event.iteration, "elapsed": event.elapsed,
                    "seconds_left": seconds_left(plan, event, since[0]), "losses": losses, **fields}, preview)

    return callback


class Worker:
    """Background threads running the store's jobs in queue order: one on this machine's device, or one a job
    ``cluster`` has room for.

    Every ``sweep_every`` seconds they remove uploads that no job uses and that are older than ``upload_ttl``
    seconds.
    """

    def __init__(self, store: JobStore, models: Path, device: str = "auto", preview_every: int = 10,
                 upload_ttl: float = 24 * 3600, sweep_every: float = 300, cluster: Cluster | None = None) -> None:
        self.store = store
        self.models = models
        self.device = device
        self.preview_every = preview_every
        self.upload_ttl = upload_ttl
        self.sweep_every = min(sweep_every, upload_ttl)
        self.cluster = cluster
        self._swept = float("-inf")
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running: list[str] = []
        #: The ends of jobs that the database refused to record, by job id: tried again at each pass.
        self._unrecorded: dict[str, dict[str, object]] = {}
        self._threads = [threading.Thread(target=self._loop, name=f"stylecraft-worker-{device}-{slot}", daemon=True)
                         for slot in range(cluster.slots() if cluster else 1)]

    def start(self) -> None:
        """Start the threads; queued jobs (including those from before a restart) run in order."""
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running jobs (they are marked interrupted) and the threads."""
        self._stop.set()
        for job_id in list(self._running):
            self.store.stop_signal(job_id).set()
        self._wake.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)
        if self.cluster is not None:
            self.cluster.close()

    def wake(self) -> None:
        """Tell the worker that a job was queued."""
        self._wake.set()

    @property
    def alive(self) -> bool:
        """Whether the threads are running."""
        return all(thread.is_alive() for thread in self._threads)

    @property
    def current(self) -> str | None:
        """The id of the running job that started first, if any."""
        running = list(self._running)
        return running[0] if running else None

    @property
    def running(self) -> list[str]:
        """The ids of the running jobs, in the order they started."""
        return list(self._running)

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
            if self._unrecorded.pop(job_id, None) is not None:  # another thread may have taken it
                self._record_end(job_id, fields)
        if time.monotonic() - self._swept >= self.sweep_every:
            self._swept = time.monotonic()
            removed = self.store.remove_unused_uploads(self.upload_ttl)
            if removed:
                log.info("removed %d unused uploads", removed)
        job = self.store.claim_next()
        if job is None:
            return False
        job_id, began = job.id, time.perf_counter()
        self._running.append(job_id)
        if self._stop.is_set():  # stop() came between the claim and now
            self.store.stop_signal(job_id).set()
        try:
            state, error = self._run(job)
        finally:
            self._running.remove(job_id)
        try:
            self._record_end(job_id, {"state": state, "finished": time.time(), "seconds_left": None,
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
        style_pictures = [images.load_image(self.store.upload_path(s)) for s in job.styles]
        masks = regions.masks(self.store, options["regions"]) if options.get("regions") else None
        report = self._report(job_id)
        stop = self.store.stop_signal(job_id)
        if self.cluster is None:
            model = self._model(options["model"]) if options["method"] == "model" else None
            earlier = self.store.job_file(job_id, "result")  # a stopped run's picture, with its checkpoint
            painted = paint_picture(options, content, style_pictures, masks, model, self.device,
                                    self.preview_every, report, stop,
                                    earlier if api.resume_file(earlier).is_file() else None)
        else:
            shipped = self._model_file(options["model"]) if options["method"] == "model" else None
            painted = self.cluster.run(paint_picture, (options, content, style_pictures, masks, shipped,
                                                       self.device, self.preview_every), stop, report)
        picture, settings, stopped, done = painted.picture, painted.settings, painted.stopped, painted.done
        if options["method"] != "model":
            self.store.update(job_id, seed=painted.seed, quality=painted.quality)
        if self.store.stop_requested(job_id):
            stopped = "cancelled"
        names = {"content": self._name(job.content), "styles": [self._name(s) for s in job.styles]}
        self.store.write_file(self.store.job_file(job_id, "result"),
                              images.encode_image(picture, "PNG", {**settings, **names}))
        # a stopped run's checkpoint, which a restart goes on from (a finished one removes it)
        api.save_resume(painted.checkpoint, self.store.job_file(job_id, "result"))
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
                left = event.elapsed * (event.total - event.step) / event.step if event.total and event.step else None
                self.store.update(job_id, iterations=event.total or 0, iteration=event.step,
                                  elapsed=event.elapsed, seconds_left=left)

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

    def _model(self, name: str) -> Model:
        """The real-time model called ``name`` (a built-in style or a file in the models folder), loaded on the
        worker's device."""
        path, style = model_source(self.models, name)
        return api.load_style_model(path, device=self.device, style=style)

    def _model_file(self, name: str) -> ModelFile:
        """The real-time model called ``name`` as it travels to a cluster."""
        path, style = model_source(self.models, name)
        return ModelFile(None if path == styles.builtin_file() else path.read_bytes(), path.suffix, style)

    def _name(self, upload_id: str) -> str:
        try:
            name: str = self.store.upload(upload_id)["name"]
            return name
        except NotFound:
            return "(deleted)"

    def _report(self, job_id: str) -> Report:
        """Where a job's progress goes: its preview file and its record."""

        def report(fields: dict[str, Any], preview: bytes | None) -> None:
            if preview is not None:
                self.store.write_file(self.store.job_file(job_id, "preview"), preview)
            self.store.update(job_id, **fields)

        return report
