"""The Ray engine, the one module that imports ray (the ``ray`` extra): batches and studio jobs on a Ray cluster.

Real-time networks follow Ray Data's batch-inference pattern: the pictures' paths are a dataset, painted by
``map_batches`` with a pool of actors, each holding the network (loaded once per actor) on its CPUs or GPUs;
the actors read, paint and write the pictures themselves, so that only paths and records cross the cluster.
The optimiser runs as one Ray task per picture with its resources. Ray retries the work of a worker that dies
(actors are restarted and their batches run again; tasks are retried), and :func:`.batch.written_by` keeps a
retried picture from being written twice. When the cluster itself is gone (this machine's raylet, or the head's
services), the batch ends with :class:`.batch.EngineLost` and one line saying so, keeping what is done. Ctrl-C or
SIGTERM ends the batch too: its work on the cluster is cancelled.

Studio jobs (:class:`RayJobs`) are Ray tasks too; their progress and the request to stop flow through a small
actor (:class:`_Channel`) that the studio polls.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, replace
from typing import Any

import ray
import ray.data

from .. import checks
from ..errors import RunError, one_line
from .batch import BatchSettings, EngineLost, Item, Loading, Record, interrupted, paint_optimised, paint_with_model
from .realtime import load_style_model

#: Times Ray runs a task again after its worker died, before the batch gives the picture up as failed.
RETRIES = 3
#: What Ray raises when the cluster itself is gone, not one worker: this machine's raylet died, or Ray's own
#: services (the head's GCS) cannot be reached.
CLUSTER_GONE = (ray.exceptions.LocalRayletDiedError, ray.exceptions.RaySystemError, ray.exceptions.RpcError)


def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` ("auto": the running one; None: start one on this machine) unless this
    process is connected already; whether this call connected (and so should disconnect)."""
    if ray.is_initialized():
        return False
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise RunError(f"cannot join the Ray cluster at {address}: {one_line(exc)}") from None
    finally:
        if main:  # ray.init makes SIGTERM exit the process at once; the caller's handler (the CLI's stops the batch)
            signal.signal(signal.SIGTERM, handler)
    return True


def gone(reason: BaseException | str) -> EngineLost:
    """The batch's end when the cluster is gone (``reason``: one of :data:`CLUSTER_GONE`, or words), in one line."""
    return EngineLost(f"the Ray cluster is gone ({reason if isinstance(reason, str) else one_line(_cause(reason))})")


class RayletWatch:
    """Whether this machine's raylet, through which this process reaches the cluster, is alive. When it dies, Ray
    ends the process some seconds later without a word of its own; so a thread looks every ``every`` seconds and,
    the raylet gone, sends SIGINT to the main thread (a real signal: Ray Data waits on a lock that only a signal
    wakes), whose engine then ends the batch with :class:`.batch.EngineLost`. Linux only (the raylet is found by
    its socket in ``/proc``); elsewhere it watches nothing."""

    def __init__(self, every: float = 0.25) -> None:
        self.lost = False
        self.pid = _raylet_pid()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        if self.pid is not None and threading.current_thread() is threading.main_thread():
            threading.Thread(target=self._watch, args=(every,), name="raylet-watch", daemon=True).start()

    def _watch(self, every: float) -> None:
        while not self._closed.wait(every):
            with self._lock:
                if not self._closed.is_set() and not _alive(self.pid):
                    self.lost = True
                    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
                    return

    def close(self) -> None:
        """Stop watching (before this process shuts down a cluster it started, whose raylet then ends)."""
        with self._lock:
            self._closed.set()

    def check(self) -> None:
        """:class:`.batch.EngineLost` if the raylet is gone (the interrupt that the watch sent is then its)."""
        if self.lost:
            raise gone("this machine's raylet died") from None


def _raylet_pid() -> int | None:
    """The process id of the raylet this process is connected through, from its socket's name, or None."""
    node = ray.get_runtime_context().get_node_id()
    sockets = [n.get("RayletSocketName") for n in ray.nodes()  # type: ignore[no-untyped-call]
               if n.get("NodeID") == node]
    if not sockets or not sockets[0] or not os.path.isdir("/proc"):
        return None
    wanted = f"--raylet_socket_name={sockets[0]}".encode()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as file:
                    if wanted in file.read().split(b"\0"):
                        return int(entry.name)
            except OSError:
                continue
    return None


def _alive(pid: int | None) -> bool:
    """Whether process ``pid`` is running (a zombie, not yet reaped by the process that started it, is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def slots(gpus: float) -> int:
    """How many workers of one CPU, or of ``gpus`` GPUs, the cluster has room for."""
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, math.floor(resources.get("GPU", 0) / gpus if gpus else resources.get("CPU", 1)))


class _Painter:
    """A Ray Data actor: the network, loaded once, paints each batch of paths and writes the pictures."""

    def __init__(self, settings: BatchSettings, run_id: str) -> None:
        assert settings.model is not None
        self.settings, self.run_id = settings, run_id
        began = time.perf_counter()
        self.model = load_style_model(settings.model, device=settings.device, precision=settings.precision)
        self.loading: Loading | None = Loading.timed(settings.model, began)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        """The batch's records as JSON lines, after the actor's loading with its first batch."""
        items = [Item(str(i), str(o)) for i, o in zip(batch["input"], batch["output"], strict=True)]
        lines = [r.line() for r in paint_with_model(self.model, items, self.settings, self.run_id)]
        if self.loading is not None:
            lines.insert(0, self.loading.line())
            self.loading = None
        return {"record": lines}


class RayEngine:
    """Batches on a Ray cluster (see the module's docstring): ``workers`` actors (networks) or tasks at once
    (optimiser; default: as many as the cluster's resources allow), each with ``gpus_per_worker`` GPUs (0: a
    CPU worker)."""

    def __init__(self, address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0) -> None:
        checks.at_least("workers", workers, 1)
        self.address, self.workers, self.gpus = address, workers, gpus_per_worker

    def paint(self, items: Sequence[Item], settings: BatchSettings, run_id: str) -> Iterator[Record | Loading]:
        """Each record as its picture is done, in any order; closing stops the work not yet started.

        The workers get absolute paths (their working folder is not this one); the records name the pictures
        and settings as they were given."""
        started = connect(self.address)
        watch = RayletWatch()
        given = {os.path.abspath(item.input): item for item in items}
        absolute = [Item(os.path.abspath(item.input), os.path.abspath(item.output)) for item in items]
        remote = replace(settings, model=_absolute(settings.model), style=_absolute(settings.style))
        found = (self._networks if settings.model else self._optimiser)(absolute, remote, run_id, watch)
        try:
            for record in found:
                if isinstance(record, Loading):
                    yield record
                    continue
                item = given[record.input]
                yield replace(record, input=item.input, output=item.output, settings=settings.record())
        finally:
            watch.close()
            watch.check()  # if lost, nothing to stop or shut down: Ray ends this process soon, and a call could hang
            found.close()
            if started:
                ray.shutdown()

    def _pool(self) -> ray.data.ActorPoolStrategy:
        """The actor pool: from one actor up to ``workers``, or to as many as the cluster has CPUs or GPUs for
        (it shrinks when a node is lost, and the lost actors' batches run on the others)."""
        return ray.data.ActorPoolStrategy(min_size=1, max_size=self.workers or slots(self.gpus))

    def _networks(self, items: Sequence[Item], settings: BatchSettings, run_id: str,
                  watch: RayletWatch) -> Generator[Record | Loading, None, None]:
        """The records of the pictures as the actors return them, and each actor's loading. On Ctrl-C the pool's
        batches under way are not known here: their pictures have no record and the next run paints them."""
        ray.data.DataContext.get_current().enable_progress_bars = False  # the batch shows its own
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its plan and timings would break the bar's line
        rows = [asdict(item) for item in items]
        blocks = max(1, min(len(rows), math.ceil(len(rows) / settings.batch_size)))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            _Painter, fn_constructor_kwargs={"settings": settings, "run_id": run_id}, batch_size=settings.batch_size,
            batch_format="numpy", compute=self._pool(), num_cpus=1, num_gpus=self.gpus)
        try:
            for row in dataset.iter_rows():
                line = json.loads(row["record"])
                yield Record(**line) if "input" in line else Loading(**line)
        except KeyboardInterrupt:
            watch.check()
            raise
        except CLUSTER_GONE as exc:
            raise gone(exc) from None

    def _optimiser(self, items: Sequence[Item], settings: BatchSettings, run_id: str,
                   watch: RayletWatch) -> Generator[Record, None, None]:
        """One task a picture, ``workers`` at once; on Ctrl-C the pictures under way are recorded as interrupted
        and their tasks cancelled."""
        task = ray.remote(paint_optimised).options(num_cpus=1, num_gpus=self.gpus, max_retries=RETRIES)
        pending = list(items)[::-1]
        running: dict[ray.ObjectRef[Record], Item] = {}
        limit = self.workers or len(items)
        try:
            while pending or running:
                while pending and len(running) < limit:
                    item = pending.pop()
                    running[task.remote(item, settings, run_id)] = item
                try:
                    [ready], _ = ray.wait(list(running), num_returns=1)
                    record = _outcome(ready, running[ready], settings)
                except KeyboardInterrupt:
                    watch.check()
                    yield from (interrupted(item, settings) for item in running.values())
                    raise
                except CLUSTER_GONE as exc:
                    raise gone(exc) from None
                running.pop(ready)
                yield record
        finally:
            for ref in running if not watch.lost else ():
                ray.cancel(ref)


def _outcome(ref: ray.ObjectRef[Record], item: Item, settings: BatchSettings) -> Record:
    """The record of a finished picture task: the task's own, or one with the error that ended it (the picture's
    own, or its worker lost more times than the retries); the cluster gone is raised as it is."""
    try:
        return ray.get(ref)
    except CLUSTER_GONE:
        raise
    except ray.exceptions.RayError as exc:
        return Record(item.input, item.output, settings.record(), error=one_line(_cause(exc)))


def _absolute(path: str | None) -> str | None:
    """``path`` made absolute when it names a file here (a built-in style's name stays as it is)."""
    return os.path.abspath(path) if path is not None and os.path.exists(path) else path


def _cause(exc: BaseException) -> BaseException:
    """The exception a task raised, out of the error Ray wraps it in."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class _Channel:
    """A studio job's mailbox on the cluster: the task posts its latest progress, the studio reads it and may ask
    the task to stop. An actor whose process dies is started again, and calls made meanwhile wait for it, so the
    job goes on (what the new one lacks: the progress not yet read, and a stop, which the studio asks again)."""

    def __init__(self) -> None:
        self.latest: dict[str, Any] | None = None
        self.preview: bytes | None = None
        self.stopping = False

    def post(self, progress: dict[str, Any], preview: bytes | None) -> None:
        self.latest = {**(self.latest or {}), **progress}
        if preview is not None:
            self.preview = preview

    def take(self) -> tuple[dict[str, Any] | None, bytes | None]:
        found, preview = self.latest, self.preview
        self.latest = self.preview = None
        return found, preview

    def stop(self) -> None:
        self.stopping = True

    def stopped(self) -> bool:
        return self.stopping


class RemoteStop:
    """A job's stop signal on the worker that runs it: asks the job's channel, at most every ``every`` seconds."""

    def __init__(self, channel: Any, every: float = 0.5) -> None:
        self.channel, self.every = channel, every
        self._asked, self._set = -math.inf, False

    def is_set(self) -> bool:
        """Whether the studio asked the job to stop."""
        if not self._set and time.monotonic() - self._asked >= self.every:
            self._asked = time.monotonic()
            self._set = bool(ray.get(self.channel.stopped.remote()))
        return self._set

    def report(self, progress: dict[str, Any], preview: bytes | None = None) -> None:
        """Post the job's progress (and a preview) to the studio, without waiting."""
        self.channel.post.remote(progress, preview)


def _call(work: Callable[..., Any], args: Sequence[Any], remote: RemoteStop) -> Any:
    """A studio job's task: ``work`` with the channel's report and stop signal."""
    return work(*args, remote.report, remote)


class RayJobs:
    """Runs studio jobs as Ray tasks on a cluster: :meth:`run` submits one and, in the calling thread, hands its
    progress to ``on_progress`` until it ends; ``stop`` (a ``threading.Event``) cancels it through its channel."""

    def __init__(self, address: str | None = None, workers: int | None = None, gpus_per_job: float = 0.0) -> None:
        self.started = connect(address)
        self.workers, self.gpus = workers, gpus_per_job

    def slots(self) -> int:
        """How many jobs run at once: ``workers``, or as many as the cluster has room for (one a CPU, or
        ``gpus_per_job`` GPUs)."""
        return self.workers or slots(self.gpus)

    def run(self, work: Callable[..., Any], args: Sequence[Any], stop: threading.Event,
            on_progress: Callable[[dict[str, Any], bytes | None], None], poll: float = 0.25) -> Any:
        """``work(*args, report, stop)`` on the cluster, ``report(fields, preview)`` reaching ``on_progress``
        here and ``stop`` set there when it is here; its return value."""
        channel = _Channel.remote()  # type: ignore[attr-defined]
        task = ray.remote(_call).options(num_cpus=1, num_gpus=self.gpus, max_retries=RETRIES)
        ref = task.remote(work, args, RemoteStop(channel))
        try:
            while True:
                ready, _ = ray.wait([ref], timeout=poll)
                if stop.is_set():  # at every poll: a restarted channel forgot the last request
                    channel.stop.remote()
                progress, preview = ray.get(channel.take.remote())
                if progress is not None or preview is not None:
                    on_progress(progress or {}, preview)
                if ready:
                    try:
                        return ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # the job's own error, not Ray's wrapping of it
                        raise _cause(exc) from None
        finally:
            ray.kill(channel)

    def close(self) -> None:
        """Disconnect from the cluster if this object connected."""
        if self.started:
            ray.shutdown()
