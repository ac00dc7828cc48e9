"""The studio on Ray when its processes die (issue 36): a job's progress actor killed by its pid, and a studio
killed with kill -9, whose Ray agents the next studio on its data folder ends. A local cluster of this machine
(``address="local"``: never one that happens to run here); skipped without the ``ray`` extra or ``/proc``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RAY_WAIT
from test_studio import finished, new_job, studio, wait_for

ray = pytest.importorskip("ray")
pytest.importorskip("fastapi")
pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds processes in /proc")

from stylecraft.studio import leftovers  # noqa: E402 - after the skips


def _titled(title: str) -> list[int]:
    """The ids of this user's processes whose command line starts with ``title``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title.encode()):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _has_open(pid: int, part: str) -> bool:
    """Whether process ``pid`` has a file open whose path holds ``part`` (a descriptor closed while the list is
    read is skipped: a starting Python opens and closes several)."""
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if part in os.readlink(f"/proc/{pid}/fd/{fd}"):
                return True
        except OSError:
            continue
    return False


def _wait(test: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@pytest.fixture
def local_cluster() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=80 * 2**20,
             logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def test_a_killed_progress_actor_is_started_again_and_the_job_goes_on(local_cluster: None, tmp_path: Path) -> None:
    """Before: the job failed ("The actor died unexpectedly"), with no retry."""
    with studio(tmp_path, engine="ray", device="auto") as client:
        job = new_job(client, size=32, iterations=4000)
        at = wait_for(client, job["id"], lambda j: j["state"] == "running" and j["iteration"] > 2,
                      timeout=RAY_WAIT)["iteration"]
        session = ray._private.worker._global_node.get_session_dir_path()  # this cluster's, not another's
        [channel] = [pid for pid in _titled("ray::_Channel") if leftovers._holds_files_in(pid, session)]
        os.kill(channel, signal.SIGKILL)
        going = wait_for(client, job["id"], lambda j: finished(j) or j["iteration"] > at + 20, timeout=RAY_WAIT)
        assert going["state"] == "running", going
        assert client.post(f"/api/jobs/{job['id']}/cancel").status_code == 200  # a stop reaches the new actor
        ended = wait_for(client, job["id"], finished, timeout=RAY_WAIT)
        assert ended["state"] == "cancelled" and ended["error"] is None, ended


# Starts a studio's Ray cluster as `stylecraft serve --engine ray` does, holding the data folder, then waits.
STUDIO = """
import sys, time
from pathlib import Path
from stylecraft.studio import app
from stylecraft.studio.config import StudioConfig
from stylecraft.studio.store import JobStore

config = StudioConfig(data=Path(sys.argv[1]), engine="ray", device="cpu")
store = JobStore(config.data)
app._cluster(config)
print("ready", flush=True)
time.sleep(600)
"""


def test_the_ray_agents_a_killed_studio_left_are_ended_and_only_they(tmp_path: Path) -> None:
    """Before: after kill -9 the dashboard and runtime-env agents ran on (about 170 MB), and nothing ended them."""
    data = tmp_path / "data"
    killed = subprocess.Popen([sys.executable, "-c", STUDIO, str(data)], stdout=subprocess.PIPE,
                              env={**os.environ, "RAY_ADDRESS": "local"})
    bystanders = []
    try:
        assert killed.stdout is not None and killed.stdout.readline() == b"ready\n"
        session = Path(json.loads((data / leftovers.RECORD).read_text())["session"])
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        agents = set(_titled("ray::DashboardAgent") + _titled("ray::RuntimeEnvAgent"))
        _wait(lambda: set(leftovers.left_over(data)) <= agents and leftovers.left_over(data))  # the rest ended
        left = leftovers.left_over(data)
        # not Ray's own, though it reads the session's logs; and a process of nobody's session
        bystanders = [subprocess.Popen([sys.executable, "-c", "import sys, time; f = open(sys.argv[1], 'a'); "
                                        "time.sleep(60)", str(session / "logs" / "mine.txt")]),
                      subprocess.Popen(["sleep", "60"])]
        _wait(lambda: _has_open(bystanders[0].pid, str(session)))

        assert sorted(leftovers.end_left_over(data)) == sorted(left)
        assert not (data / leftovers.RECORD).exists()
        assert all(not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
                   for pid in left)
        assert all(process.poll() is None for process in bystanders)
    finally:
        for process in [killed, *bystanders]:
            process.kill()
            process.wait()
