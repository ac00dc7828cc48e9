"""What a killed studio leaves of the Ray cluster it started, found and ended by the next studio on its data folder.

A studio with ``engine`` ray and no ``address`` starts a Ray cluster on this machine. When it stops, it shuts the
cluster down; killed (kill -9), it cannot, and Ray's dashboard and runtime-env agents outlive it (about 170 MB),
orphaned, their titles rewritten to ``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent``. So the studio records
the cluster's session folder (``/tmp/ray/session_...``, named by its own processes' command lines) in the data
folder, and the next studio there ends the Ray processes that still hold files in that folder: that session's
and no other's, since a session's processes keep their logs in its folder, and the data folder's lock says that
the studio that started it is gone. Processes that are not Ray's own (a user's script reading the logs) are left
alone. This reads ``/proc``; where there is none (macOS, Windows) nothing is recorded or ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from pathlib import Path

#: The file in the data folder that names the Ray session its studio started.
RECORD = "ray-session.json"
PROC = Path("/proc")
SESSION = re.compile(r"/\S*?/session_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d+_\d+")
#: Seconds the session's processes get to end on SIGTERM before SIGKILL.
GRACE = 3.0


def _arguments(pid: int) -> list[str]:
    """The process's command line, argument by argument (none if it is gone)."""
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _own_processes() -> list[int]:
    """The ids of this user's processes, this one aside."""
    if not PROC.is_dir():
        return []
    uid, me = os.getuid(), os.getpid()
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit() and int(entry.name) != me:
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _status(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the process's name: state, parent, ... (none if it is gone)."""
    try:
        return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _children() -> list[int]:
    """The ids of this process's children."""
    me = str(os.getpid())
    return [pid for pid in _own_processes() if _status(pid)[1:2] == [me]]


def _running(pid: int, started: str) -> bool:
    """Whether the process ``pid`` that started at clock tick ``started`` is still running (not ended, not a
    zombie, and not a new process under a reused id)."""
    status = _status(pid)
    return len(status) > 19 and status[0] != "Z" and status[19] == started


def record(data: Path) -> str | None:
    """Write in ``data`` the session folder of the Ray cluster this process started (read from its children's
    command lines; None, and nothing written, when it started none: it joined a running cluster)."""
    for pid in _children():
        found = SESSION.search(" ".join(_arguments(pid)))
        if found:
            path = data / RECORD
            path.write_text(json.dumps({"session": found.group(0)}))
            path.chmod(0o600)
            return found.group(0)
    return None


def forget(data: Path) -> None:
    """Remove the record: the cluster was shut down as it should be."""
    (data / RECORD).unlink(missing_ok=True)


def _holds_files_in(pid: int, folder: str) -> bool:
    """Whether the process has a file open in ``folder``."""
    try:
        descriptors = os.listdir(PROC / str(pid) / "fd")
    except OSError:
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(PROC / str(pid) / "fd" / descriptor).startswith(folder + "/"):
                return True
        except OSError:
            continue
    return False


def _ray_own(pid: int) -> bool:
    """Whether the process is one of Ray's own: a ``ray::`` worker or agent, or a program (or a Python script)
    from Ray's package."""
    arguments = _arguments(pid)
    return bool(arguments) and (arguments[0].startswith("ray::") or any(f"{os.sep}ray{os.sep}" in argument
                                                                          for argument in arguments[:2]))


def left_over(data: Path) -> list[int]:
    """The Ray processes still running from the session recorded in ``data`` (none without a record)."""
    try:
        session = str(json.loads((data / RECORD).read_text())["session"])
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not SESSION.fullmatch(session):
        return []
    return [pid for pid in _own_processes() if _holds_files_in(pid, session) and _ray_own(pid)]


def end_left_over(data: Path) -> list[int]:
    """End the Ray processes that a killed studio on ``data`` left running (SIGTERM, then SIGKILL for those
    still running after ``GRACE`` seconds, each known by its start time so that a reused id is never hit),
    forget its record, and return their ids."""
    found = {pid: _status(pid)[19] for pid in left_over(data) if len(_status(pid)) > 19}
    _signal(found, signal.SIGTERM)
    _await_end(found, GRACE)
    _signal(found, signal.SIGKILL)
    _await_end(found, GRACE)  # a killed process takes a moment to go
    forget(data)
    return list(found)


def _await_end(found: dict[int, str], seconds: float) -> None:
    """Wait until no process of ``found`` runs, or ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while any(_running(pid, started) for pid, started in found.items()) and time.monotonic() < deadline:
        time.sleep(0.1)


def _signal(found: dict[int, str], sig: signal.Signals) -> None:
    """Send ``sig`` to each process of ``found`` (id: start time) that still runs."""
    for pid, started in found.items():
        if _running(pid, started):
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, sig)
