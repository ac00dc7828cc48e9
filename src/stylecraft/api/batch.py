"""Batch painting: many pictures (folders, globs, lists of paths) into a folder that mirrors their relative paths,
with a real-time network or the optimiser, on this machine or on a Ray cluster (:mod:`stylecraft.api.ray_engine`).

The destination holds a manifest (``manifest.jsonl``, one JSON record a line: input, output, settings, seconds,
quality numbers, error; and a line of its own for each loading of a network, so that no picture's seconds include
it) written by the process that runs the batch; a second run with the same settings skips what it records as
done, and ``force`` redoes it. The destination's own pictures are never inputs. Whoever paints a picture writes
it, atomically, to the destination (a path every worker can reach), stamped with the run's id: a retried picture
whose output this run already wrote is recorded, not painted again, so a worker killed mid-batch loses nothing
and writes nothing twice. A picture that cannot be read is one record with its error; the batch goes on.

Ctrl-C or SIGTERM (a ``KeyboardInterrupt``) ends the whole batch: the pictures done are kept and recorded, the
picture under way is recorded as not done (its error :data:`INTERRUPTED`), and the rest wait for the next run.
An engine that can paint no more (a Ray cluster gone) raises :class:`EngineLost`, which ends the batch the same
way, with its reason.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .. import checks, feedforward, files, images
from ..choices import PRECISIONS
from ..errors import ConfigError, ImageError, RunError, UsageError, one_line
from ..optimize import PRESETS
from ..photos import PHOTO_TYPES, find_photos
from ..progress import CANCELLED, Count, Stop, requested
from .one_pass import is_painting
from .realtime import Model, apply_many, load_style_model
from .transfer import run

#: The manifest's name in the destination.
MANIFEST = "manifest.jsonl"
#: What a list of paths given as a source is called (one path a line).
LIST_TYPES = (".txt", ".lst")
#: The metadata key of the batch's own record in each output: the run that wrote it and its seconds.
STAMP = "batch"
#: The error of a picture under way when Ctrl-C or SIGTERM ended the batch (not done; the next run paints it),
#: and the batch's ``stopped`` reason then.
INTERRUPTED = "interrupted"


class EngineLost(RunError):
    """The engine can paint no more pictures (a Ray cluster gone): the batch ends with what it has done."""


@dataclass(frozen=True)
class Item:
    """One picture of a batch: where it is read from and where its painting goes."""

    input: str
    output: str


@dataclass(frozen=True)
class BatchSettings:
    """What every picture of a batch is painted with: a real-time ``model`` (a file every worker can read, or a
    built-in style's name or blend) or the optimiser towards ``style`` (a painting) with the ``preset``'s
    defaults; ``size`` (long side; None: the input's for a network, the preset's for the optimiser);
    ``precision`` the optimiser's and a painting's (auto: bf16 where the worker's device has it,
    :func:`.transfer.run`, :func:`.realtime.load_style_model`; a trained network runs fp32)."""

    model: str | None = None
    style: str | None = None
    preset: str | None = None
    size: int | None = None
    preserve_color: bool = False
    iterations: int | None = None
    seed: int | None = None
    batch_size: int = 4
    tile: int = feedforward.TILE
    device: str = "auto"
    precision: str = "auto"

    def validate(self) -> None:
        """ConfigError unless exactly one way of painting is chosen and the numbers make sense."""
        if (self.model is None) == (self.style is None):
            raise ConfigError("give `model` (a real-time network) or `style` (a painting for the optimiser)")
        if self.model is not None:
            for name in ("preset", "iterations", "seed"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"`{name}` goes with `style` (the optimiser), not `model`")
        if self.preset is not None:
            checks.choice("preset", self.preset, tuple(PRESETS))
        checks.at_least("size", self.size, 16)
        checks.at_least("iterations", self.iterations, 1)
        checks.at_least("batch_size", self.batch_size, 1)
        checks.at_least("tile", self.tile, 64)
        checks.choice("precision", self.precision, PRECISIONS)
        if self.model is not None and not is_painting(self.model) and self.precision not in ("auto", "fp32"):
            raise ConfigError(f"`precision` {self.precision} goes with a painting or `style`; a network runs fp32")

    def record(self) -> dict[str, Any]:
        """The settings a manifest records and a resumed run must match (not where or how fast it ran)."""
        return {k: v for k, v in asdict(self).items() if k not in ("batch_size", "device", "precision")}


@dataclass
class Record:
    """The manifest's line for one picture: ``error`` None when it was painted."""

    input: str
    output: str
    settings: dict[str, Any]
    seconds: float = 0.0
    quality: dict[str, float] | None = None
    error: str | None = None

    def line(self) -> str:
        """The record as one JSON line."""
        return json.dumps(asdict(self), sort_keys=True)


def interrupted(item: Item, settings: BatchSettings) -> Record:
    """The record of a picture that Ctrl-C or SIGTERM stopped before it was done."""
    return Record(item.input, item.output, settings.record(), error=INTERRUPTED)


@dataclass
class Loading:
    """The manifest's line for a network loaded by a worker (``worker``: host and process): its seconds are
    nobody's picture's. It has no ``input``, so a reader of pictures' records passes it by."""

    loading: str
    seconds: float
    worker: str

    @classmethod
    def timed(cls, model: str, began: float) -> Loading:
        """The loading of ``model`` in this process, begun at ``began`` (``time.perf_counter()``)."""
        return cls(model, time.perf_counter() - began, f"{socket.gethostname()}:{os.getpid()}")

    def line(self) -> str:
        """The loading as one JSON line."""
        return json.dumps(asdict(self), sort_keys=True)


@dataclass
class BatchResult:
    """How a batch went: records of the pictures painted, failed and ``interrupted`` in this run, those skipped
    as done before, the networks' loadings, the manifest, the seconds it took and ``stopped`` when the batch
    ended early: "cancelled" (its stop signal), :data:`INTERRUPTED` (Ctrl-C or SIGTERM) or the reason the engine
    was lost; ``left`` pictures then wait for the next run."""

    painted: list[Record] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
    interrupted: list[Record] = field(default_factory=list)
    skipped: list[Item] = field(default_factory=list)
    loadings: list[Loading] = field(default_factory=list)
    manifest: Path = Path(MANIFEST)
    seconds: float = 0.0
    stopped: str | None = None
    left: int = 0


class Engine(Protocol):
    """Where a batch's pictures are painted: takes the pictures to do and yields each one's record as it is
    done, in any order, and a :class:`Loading` for each network it loads; closing the iterator stops the work
    not yet started. On Ctrl-C it records the pictures it knows to be under way as :func:`interrupted` and
    raises the ``KeyboardInterrupt`` on; :class:`EngineLost` when it can paint no more."""

    def paint(self, items: Sequence[Item], settings: BatchSettings, run_id: str) -> Iterator[Record | Loading]:
        ...


def collect(sources: Sequence[str | os.PathLike[str]], destination: str | os.PathLike[str]) -> list[Item]:
    """The pictures named by ``sources`` (folders, searched recursively; globs; lists of paths in ``.txt`` or
    ``.lst`` files; picture files), each with its output under ``destination``: its path relative to its
    folder, glob base or list's common folder, as PNG."""
    destination = Path(destination)
    found: dict[Path, Path] = {}
    for source in map(str, sources):
        if glob.has_magic(source):
            base = Path(*itertools.takewhile(lambda part: not glob.has_magic(part), Path(source).parts[:-1]))
            paths = [Path(p) for p in sorted(glob.glob(source, recursive=True))
                     if Path(p).is_file() and Path(p).suffix.lower() in PHOTO_TYPES]
            found.update((p, p.relative_to(base)) for p in paths)
        elif Path(source).is_dir():
            found.update((p, p.relative_to(source)) for p in find_photos(source))
        elif Path(source).suffix.lower() in LIST_TYPES and Path(source).is_file():
            listed = [Path(source).parent / line.strip() for line in Path(source).read_text().splitlines()
                      if line.strip() and not line.startswith("#")]
            common = Path(os.path.commonpath([p.absolute().parent for p in listed])) if listed else Path()
            found.update((p, p.absolute().relative_to(common)) for p in listed)
        elif Path(source).is_file():
            found[Path(source)] = Path(Path(source).name)
        else:
            raise UsageError(f"{source}: no such file, folder or matching pictures")
    if not found:
        raise UsageError("no pictures found in the inputs")
    painted_here = destination.resolve()
    found = {path: relative for path, relative in found.items() if not path.resolve().is_relative_to(painted_here)}
    if not found:
        raise UsageError(f"no pictures found in the inputs outside the output folder {destination}")
    items: list[Item] = []
    outputs: dict[Path, Path] = {}
    for path, relative in found.items():
        output = destination / relative.with_suffix(".png")
        if output in outputs:
            raise UsageError(f"{path} and {outputs[output]} would both be painted to {output}; give them apart")
        outputs[output] = path
        items.append(Item(str(path), str(output)))
    return items


def read_manifest(path: Path) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """The last record of each input in the manifest at ``path``, and the numbers of the lines that are not
    JSON records (cut short by a killed run, say), which are left out. Lines without an input (a network's
    loading) are passed by."""
    found: dict[str, dict[str, Any]] = {}
    torn: list[int] = []
    if path.exists():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            try:
                record = json.loads(line)
            except ValueError:
                torn.append(number)
                continue
            if not isinstance(record, dict):
                torn.append(number)
            elif isinstance(record.get("input"), str):
                found[record["input"]] = record
    return found, torn


def _ends_a_line(path: Path) -> bool:
    """Whether the file at ``path`` is empty, absent or ends with a newline: the next record starts a line."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"


def written_by(item: Item, run_id: str) -> Record | None:
    """The record of ``item`` if this run (``run_id``) has already written its output: a retried worker then
    records it instead of painting it again."""
    if not Path(item.output).exists():
        return None
    try:
        metadata = images.read_metadata(item.output) or {}
    except (OSError, ValueError):
        return None
    stamp = metadata.get(STAMP) or {}
    if stamp.get("run") != run_id:
        return None
    return Record(item.input, item.output, stamp.get("settings", {}), stamp.get("seconds", 0.0),
                  metadata.get("quality"))


def _save(item: Item, picture: Any, metadata: dict[str, Any], settings: BatchSettings, run_id: str,
          seconds: float) -> Record:
    """Write ``item``'s picture atomically with its settings and the run's stamp; its record."""
    Path(item.output).parent.mkdir(parents=True, exist_ok=True)
    stamp = {"run": run_id, "seconds": seconds, "settings": settings.record()}
    images.save_image(picture, item.output, metadata={**metadata, "source": item.input, STAMP: stamp})
    return Record(item.input, item.output, settings.record(), seconds, metadata.get("quality"))


def paint_with_model(model: Model, items: Sequence[Item], settings: BatchSettings,
                     run_id: str) -> Iterator[Record]:
    """Paint ``items`` with a loaded network, in batches of ``settings.batch_size`` pictures (pictures of one size
    run together: the batched ``apply`` path), writing each output; yield each record (with the error of a picture
    that cannot be read). A picture's seconds are its share of its batch's painting and its own writing."""
    todo = []
    for item in items:
        done = written_by(item, run_id)
        if done is not None:
            yield done
        else:
            todo.append(item)
    for start in range(0, len(todo), settings.batch_size):
        chunk = todo[start:start + settings.batch_size]
        began = time.perf_counter()
        painted = list(apply_many(model, [item.input for item in chunk], batch_size=len(chunk), size=settings.size,
                                  preserve_color=settings.preserve_color, tile=settings.tile))
        share = (time.perf_counter() - began) / len(chunk)
        for item, (_, picture) in zip(chunk, painted, strict=True):
            if isinstance(picture, ImageError):
                yield Record(item.input, item.output, settings.record(), share, error=one_line(picture))
                continue
            began = time.perf_counter()
            metadata = {"model": settings.model, "style": model.metadata.get("style")}
            yield _save(item, picture, metadata, settings, run_id, share + time.perf_counter() - began)


def paint_optimised(item: Item, settings: BatchSettings, run_id: str, stop: Stop | None = None) -> Record:
    """Paint one picture with the optimiser towards ``settings.style`` and write it; its record (a picture that
    cannot be read, or is too small to paint, gives a record with its error)."""
    done = written_by(item, run_id)
    if done is not None:
        return done
    began = time.perf_counter()
    options: dict[str, Any] = {k: v for k, v in (("size", settings.size), ("iterations", settings.iterations),
                                 ("seed", settings.seed), ("preserve_color", settings.preserve_color or None))
               if v is not None}
    try:
        result = run("transfer", item.input, settings.style, device=settings.device, precision=settings.precision,
                     preset=settings.preset, stop=stop, **options)
    except UsageError as exc:
        return Record(item.input, item.output, settings.record(), time.perf_counter() - began,
                      error=one_line(exc))
    if result.stopped == INTERRUPTED:  # the optimiser's own reason for Ctrl-C
        return interrupted(item, settings)
    if result.stopped:
        return Record(item.input, item.output, settings.record(), time.perf_counter() - began,
                      error=f"stopped: {result.stopped}")
    return _save(item, images.to_pil(result.image), result.settings, settings, run_id, time.perf_counter() - began)


def until_interrupted(units: Iterable[Sequence[Item]], paint: Callable[[Sequence[Item]], Iterable[Record]],
                      settings: BatchSettings) -> Iterator[Record]:
    """The records of ``paint`` over each unit of pictures in turn until Ctrl-C or SIGTERM: then the pictures of
    the unit under way that have no record yet are recorded as :func:`interrupted`, no other unit starts and the
    ``KeyboardInterrupt`` goes on to the batch. A picture that ``paint`` itself records as interrupted (the
    optimiser stops at Ctrl-C) ends the units too."""
    for unit in units:
        done: set[str] = set()
        try:
            for record in paint(unit):
                done.add(record.input)
                yield record
                if record.error == INTERRUPTED:
                    return
        except KeyboardInterrupt:
            yield from (interrupted(item, settings) for item in unit if item.input not in done)
            raise


class LocalEngine:
    """This process: the network loaded once and the pictures run in batches; the optimiser one picture after
    another."""

    def paint(self, items: Sequence[Item], settings: BatchSettings, run_id: str) -> Iterator[Record | Loading]:
        """Each record as its picture is done, in order (after the network's loading)."""
        if settings.model is None:
            yield from until_interrupted(([item] for item in items),
                                         lambda unit: [paint_optimised(unit[0], settings, run_id)], settings)
            return
        began = time.perf_counter()
        model = load_style_model(settings.model, device=settings.device, precision=settings.precision)
        yield Loading.timed(settings.model, began)
        chunks = (items[start:start + settings.batch_size] for start in range(0, len(items), settings.batch_size))
        yield from until_interrupted(chunks, lambda chunk: paint_with_model(model, chunk, settings, run_id),
                                     settings)


def paint_batch(sources: Sequence[str | os.PathLike[str]], destination: str | os.PathLike[str],
                settings: BatchSettings, *, engine: Engine | None = None, force: bool = False,
                callbacks: Sequence[Callable[[Count], None]] = (), stop: Stop | None = None,
                on_start: Callable[[int, int], None] | None = None,
                on_warning: Callable[[str], None] | None = None) -> BatchResult:
    """Paint every picture of ``sources`` into ``destination`` (see the module's docstring) with ``engine``
    (default: this process); skip those the manifest records as done with the same settings unless ``force``.

    ``callbacks`` receive a :class:`~stylecraft.progress.Count` after each picture; ``on_start`` hears how many
    pictures will be painted and how many are skipped, and ``on_warning`` what is wrong with the manifest (lines
    cut short, skipped), before any work. ``stop``, when set, ends the batch after the pictures under way, and
    so do Ctrl-C and SIGTERM (the rest are left for the next run; see the module's docstring).
    """
    settings.validate()
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise UsageError(f"{destination}: is a file; the outputs go into a folder")
    items = collect(sources, destination)
    for item in items:
        if Path(item.output).exists() and os.path.samefile(item.output, item.input):
            raise UsageError(f"{item.output}: is the input {item.input} itself; write the results to another folder")
    destination.mkdir(parents=True, exist_ok=True)
    files.check_writable(destination / MANIFEST)
    manifest = destination / MANIFEST
    recorded, torn = read_manifest(manifest)
    if torn and on_warning is not None:
        on_warning(f"{manifest}: skipped {len(torn)} line(s) cut short or not a record (line "
                   f"{', '.join(map(str, torn[:5]))}{', ...' if len(torn) > 5 else ''}); their pictures are painted "
                   "again unless recorded elsewhere")
    wanted = settings.record()
    result = BatchResult(manifest=manifest)
    todo = []
    for item in items:
        before = recorded.get(item.input)
        if (not force and before is not None and before.get("error") is None and before.get("settings") == wanted
                and before.get("output") == item.output and Path(item.output).exists()):
            result.skipped.append(item)
        else:
            todo.append(item)
    if on_start is not None:
        on_start(len(todo), len(result.skipped))
    began = time.perf_counter()
    if todo:
        for callback in callbacks:  # a bar opens now, so that its rate and ETA count from the start
            callback(Count(0, len(todo), 0.0))
        records = (engine or LocalEngine()).paint(todo, settings, uuid.uuid4().hex)
        with open(manifest, "a", encoding="utf-8") as log:
            if not _ends_a_line(manifest):  # a line cut short: the next record must not be glued onto it
                log.write("\n")
            try:
                try:
                    _record(records, log, result, len(todo), callbacks, stop, began)
                finally:  # an engine that finds itself lost while it closes says so here
                    close = getattr(records, "close", None)
                    if close is not None:
                        close()
            except KeyboardInterrupt:
                result.stopped = INTERRUPTED
            except EngineLost as exc:
                result.stopped = one_line(exc)
    result.left = len(todo) - len(result.painted) - len(result.failed)
    result.seconds = time.perf_counter() - began
    return result


def _record(records: Iterable[Record | Loading], log: Any, result: BatchResult, total: int,
            callbacks: Sequence[Callable[[Count], None]], stop: Stop | None, began: float) -> None:
    """Write each of an engine's records to the manifest (``log``) as it comes, sort it into ``result`` and tell
    ``callbacks`` of each picture; until the engine ends or ``stop`` is set."""
    for record in records:
        log.write(record.line() + "\n")
        log.flush()
        if isinstance(record, Loading):
            result.loadings.append(record)
            continue
        if record.error == INTERRUPTED:
            result.interrupted.append(record)
            result.stopped = INTERRUPTED
            continue
        (result.failed if record.error else result.painted).append(record)
        event = Count(len(result.painted) + len(result.failed), total, time.perf_counter() - began)
        for callback in callbacks:
            callback(event)
        if requested(stop):
            result.stopped = CANCELLED
            break
