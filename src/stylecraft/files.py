"""Files written atomically: a result is either complete or the old file untouched, whatever kills the writer.

Every file stylecraft writes (pictures, models, checkpoints, videos, records, the studio's uploads) goes
through :func:`atomic_file`: a locked temporary file beside the target, renamed over it at the end. A later
write of the same file removes the temporary files that killed writers left behind.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import IO

from .errors import ImageError, UsageError

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: stale temporary files are told by their age instead of a lock
    fcntl = None

#: A temporary file of an atomic write that is unlocked and this many seconds old was left by a dead writer;
#: where files cannot be locked, one this old.
FRESH_PART_AGE, STALE_PART_AGE = 5, 3600


def check_writable(path: str | os.PathLike[str], inputs: Iterable[object] = ()) -> Path:
    """Fail early if a file cannot be created at ``path``: the folder is missing, not a folder, or read-only;
    or ``path`` is the same file as one of ``inputs`` (paths; other kinds of input are ignored), which the
    output would destroy."""
    path = Path(path)
    if path.exists():
        for source in inputs:
            if isinstance(source, (str, os.PathLike)) and Path(source).exists() and os.path.samefile(path, source):
                raise UsageError(f"{path}: is the input {source} itself; write the result to another file")
    folder = path.parent
    if not folder.exists():
        raise ImageError(f"{path}: the folder {folder} does not exist")
    if not folder.is_dir():
        raise ImageError(f"{path}: {folder} is not a folder")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder")
    if path.exists() and not path.is_file():  # a device or a pipe: a result renamed over it would replace it
        raise ImageError(f"{path}: is not a regular file; write the result to a file")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".stylecraft-probe-"):
            pass
    except OSError as exc:
        raise ImageError(f"{path}: cannot write in {folder} ({exc.strerror or exc})") from exc
    return path


def make_folder(path: str | os.PathLike[str]) -> Path:
    """The output folder ``path``, created with its parents if need be; an ImageError (one line) where it
    cannot be: a file or a device is in the way, or the parent is read-only."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ImageError(f"{path}: is not a folder (give a folder, or a file name with an image type such as .png)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"{path}: cannot create the folder ({exc.strerror or exc})") from exc
    return path


def _read_umask() -> int:
    """The process's umask, read once at import: Linux shows it in /proc; elsewhere it is set and restored
    before any thread of ours can create files."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: New files get the permissions the user's umask allows (mkstemp alone would make them private).
FILE_MODE = 0o666 & ~_read_umask()


def _remove_stale_parts(path: Path) -> None:
    """Remove the temporary files of earlier writes of ``path`` whose writer died (a kill -9 during a save):
    a live writer holds a lock on its file."""
    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        try:
            if time.time() - part.stat().st_mtime < (FRESH_PART_AGE if fcntl else STALE_PART_AGE):
                continue  # a writer may have just made it and not locked it yet
            with open(part, "rb") as stream:
                if fcntl is not None:
                    fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
                part.unlink()
        except OSError:  # locked by a live writer, or already gone
            continue


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: int | None = None) -> Iterator[IO[bytes]]:
    """A binary stream to a temporary file beside ``path``, renamed over ``path`` when the block ends
    normally and removed when it raises: ``path`` is complete or as it was. ``mode`` gives it those permissions
    (0o600 for a private file) instead of what the umask allows; the temporary file is private all along.

    The temporary file is locked while it is written, so that the next write of ``path`` can tell (and
    remove) those left behind by a process that was killed.
    """
    path = Path(path)
    _remove_stale_parts(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "w+b") as stream:
            if fcntl is not None:
                fcntl.flock(stream, fcntl.LOCK_EX)
            yield stream
            stream.flush()
            os.chmod(temp, FILE_MODE if mode is None else mode)
            os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` atomically, with permissions ``mode`` if given (see :func:`atomic_file`)."""
    with atomic_file(path, mode) as stream:
        stream.write(data)
