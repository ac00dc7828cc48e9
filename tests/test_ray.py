"""The Ray engine on a local cluster of a head and two worker nodes of one CPU each (``ray.cluster_utils``), shared
by the module's tests: the same pictures as the local engine, a corrupt input reported, resume, a worker node
killed mid-batch; and the studio's jobs on the cluster. Skipped where the ``ray`` extra is not installed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import RAY_WAIT, make_content, make_style
from PIL import Image

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402 - only once ray is known to be there

from stylecraft import api, images  # noqa: E402
from stylecraft.api.batch import BatchSettings  # noqa: E402
from stylecraft.api.ray_engine import RayEngine, RayJobs  # noqa: E402
from stylecraft.cli import main  # noqa: E402
from stylecraft.errors import UsageError  # noqa: E402
from stylecraft.feedforward import TransformerNet, save_model  # noqa: E402
from stylecraft.studio.worker import paint_picture  # noqa: E402

NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[Cluster, list[Any]]]:
    """A head with no CPU of its own (all work goes to the workers) and two worker nodes of one CPU each."""
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    nodes = [made.add_node(**NODE) for _ in range(2)]
    made.wait_for_nodes()
    ray.init(address=made.address)
    try:
        yield made, nodes
    finally:
        ray.shutdown()
        made.shutdown()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_model(TransformerNet(width=8), path, {"style": "stripes"})
    return path


def photos(folder: Path, count: int, side: int = 48) -> list[Path]:
    folder.mkdir(parents=True)
    paths = [folder / f"photo{index:02d}.png" for index in range(count)]
    for index, path in enumerate(paths):
        make_content(side + 4 * (index % 3), side).save(path)
    return paths


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


def test_ray_paints_what_local_paints_reports_a_corrupt_picture_and_resumes(cluster, model, tmp_path, capsys,
                                                                             monkeypatch):
    inputs = photos(tmp_path / "in", 6)
    corrupt = tmp_path / "in" / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    settings = BatchSettings(model=str(model), batch_size=2)
    monkeypatch.chdir(tmp_path)  # paths relative to here, which the workers' working folder is not
    result = api.paint_batch(["in"], "ray", settings, engine=RayEngine(workers=2))
    assert {r.input for r in result.painted} == {f"in/{p.name}" for p in inputs}
    assert len(result.painted) == 6 and [r.input for r in result.failed] == ["in/corrupt.png"]
    assert "corrupt.png" in str(result.failed[0].error)
    local = api.paint_batch([tmp_path / "in"], tmp_path / "local", settings)
    assert len(local.painted) == 6
    for path in inputs:
        difference = np.abs(pixels(tmp_path / "ray" / path.name) - pixels(tmp_path / "local" / path.name))
        assert difference.max() <= 1, path
    corrupt.unlink()
    assert main(["batch", "in", "-o", "ray", "--model", str(model), "--batch-size", "2", "--engine", "ray",
                 "--workers", "2"]) == 0
    assert "6 skipped" in capsys.readouterr().err
    lines = (tmp_path / "ray" / "manifest.jsonl").read_text().splitlines()
    assert sum('"input"' in line for line in lines) == 7  # nothing painted again


def test_a_painting_paints_on_ray_as_it_does_here(cluster, tmp_path):
    """A picture where a network is expected: each worker takes the painting's statistics once."""
    photos(tmp_path / "in", 3)
    make_style(64, 64).save(tmp_path / "painting.png")
    # The workers are other processes: the test session's pin of the CPU's bf16 does not reach them.
    settings = BatchSettings(model=str(tmp_path / "painting.png"), batch_size=2, precision="fp32")
    result = api.paint_batch([tmp_path / "in"], tmp_path / "ray", settings, engine=RayEngine(workers=1))
    local = api.paint_batch([tmp_path / "in"], tmp_path / "local", settings)
    assert len(result.painted) == len(local.painted) == 3
    for record in local.painted:
        name = Path(record.output).name
        # The worker runs with another thread count than this process: float sums in another order, which the
        # painting's palette step can carry to 2 levels of 255 on some CPUs (AVX2 without AVX-512 measured 2).
        difference = np.abs(pixels(tmp_path / "ray" / name) - pixels(tmp_path / "local" / name))
        assert difference.max() <= 3 and difference.mean() < 0.5


def test_the_optimiser_runs_one_task_a_picture(cluster, tmp_path):
    photos(tmp_path / "in", 2, side=32)
    make_style(32, 32).save(tmp_path / "style.png")
    # The workers are other processes: the test session's pin of the CPU's bf16 does not reach them.
    settings = BatchSettings(style=str(tmp_path / "style.png"), size=32, iterations=3, seed=3, precision="fp32")
    result = api.paint_batch([tmp_path / "in"], tmp_path / "ray", settings, engine=RayEngine())
    assert len(result.painted) == 2 and all(r.quality for r in result.painted)
    local = api.paint_batch([tmp_path / "in"], tmp_path / "local", settings)
    for record in local.painted:
        name = Path(record.output).name
        assert np.abs(pixels(tmp_path / "ray" / name) - pixels(tmp_path / "local" / name)).max() <= 1


def test_a_worker_node_killed_mid_batch_loses_nothing_and_writes_nothing_twice(cluster, model, tmp_path):
    made, nodes = cluster
    inputs = photos(tmp_path / "in", 24, side=96)
    out = tmp_path / "out"
    at_kill: list[int] = []

    def kill_a_node(event: Any) -> None:
        if event.step >= 1 and not at_kill:
            at_kill.append(len(list(out.glob("*.png"))))
            made.remove_node(nodes[0])

    settings = BatchSettings(model=str(model), batch_size=1)
    try:
        result = api.paint_batch([tmp_path / "in"], out, settings, engine=RayEngine(workers=2),
                                 callbacks=[kill_a_node])
    finally:
        nodes[0] = made.add_node(**NODE)  # the next test has two workers again
    assert at_kill and at_kill[0] < len(inputs)  # the node was killed with pictures still to paint
    assert len(result.painted) == len(inputs) and not result.failed
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["input"] for r in records if "input" in r) == sorted(map(str, inputs))  # each exactly once
    runs = {images.read_metadata(out / p.name)["batch"]["run"] for p in inputs}  # type: ignore[index]
    assert len(runs) == 1 and not list(out.glob(".*.part"))
    for path in inputs:
        assert pixels(out / path.name).shape == (96, 96 + 4 * (int(path.stem[-2:]) % 3), 3)


def test_the_studio_runs_two_jobs_at_once_on_the_cluster_and_cancels_one(cluster, tmp_path):
    pytest.importorskip("fastapi")
    from test_studio import finished, new_job, started, studio, wait_for

    with studio(tmp_path, engine="ray", device="auto") as client:
        assert client.get("/api/info").status_code == 200
        quick = new_job(client, size=32, iterations=150)
        slow = new_job(client, size=32, iterations=4000)
        wait_for(client, slow["id"], started, timeout=RAY_WAIT)
        both_painting = time.time()
        assert client.post(f"/api/jobs/{slow['id']}/cancel").status_code == 200
        ended = wait_for(client, slow["id"], finished, timeout=RAY_WAIT)
        assert ended["state"] == "cancelled" and 0 < ended["iteration"] < 4000
        done = wait_for(client, quick["id"], finished, timeout=RAY_WAIT)
        assert done["state"] == "done" and done["iteration"] == 150, done
        assert done["finished"] > both_painting  # the two ran at once, one on each worker node
        assert client.get(f"/api/jobs/{quick['id']}/result").status_code == 200
        assert client.get(f"/api/jobs/{slow['id']}/result").status_code == 200  # the picture so far
        assert (tmp_path / "data" / "jobs" / slow["id"] / "preview.jpg").exists()


def test_a_job_fails_on_the_cluster_with_its_own_error(cluster):
    options = {"method": "optimise", "size": 32, "iterations": 0, "style_weight": 10.0, "preserve_color": False}
    with pytest.raises(UsageError) as failed:
        RayJobs().run(paint_picture, (options, make_content(), [make_style()], None, None, "cpu", 10),
                      threading.Event(), lambda fields, preview: None)
    assert "ray::" not in str(failed.value) and len(str(failed.value).splitlines()) == 1


def test_a_worker_killed_by_its_pid_mid_batch_is_replaced_and_its_pictures_painted(cluster, model, tmp_path):
    """The actor holding the network is killed (SIGKILL, by the pid its loading records): Ray restarts it and
    runs its batches again; every picture is painted once."""
    inputs = photos(tmp_path / "in", 12, side=96)
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_the_worker(event: Any) -> None:
        lines = (out / "manifest.jsonl").read_text().splitlines() if event.step >= 1 else []
        loadings = [line for line in map(json.loads, lines) if "loading" in line]
        if loadings and not killed:
            killed.append(event.step)
            os.kill(int(loadings[0]["worker"].rsplit(":", 1)[1]), signal.SIGKILL)

    result = api.paint_batch([tmp_path / "in"], out, BatchSettings(model=str(model), batch_size=1),
                             engine=RayEngine(workers=1), callbacks=[kill_the_worker])
    assert killed and killed[0] < len(inputs)  # killed with pictures still to paint
    assert len(result.painted) == len(inputs) and not result.failed and result.stopped is None
    assert len({loading.worker for loading in result.loadings}) >= 2  # another actor took over
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["input"] for r in records if "input" in r) == sorted(map(str, inputs))  # each exactly once


@pytest.mark.parametrize("painter", ["optimiser", "network"])
def test_sigterm_stops_a_ray_batch_process_at_once(cluster, tmp_path, painter):
    """``ray.init`` makes SIGTERM exit the process; the batch keeps its own handling: exit 130, what is done kept,
    the rest left (the optimiser's pictures under way recorded as interrupted), and the cluster goes on (the next
    tests use it). The optimiser's tasks and Ray Data's pool both stop."""
    made, _ = cluster
    out = tmp_path / "out"
    if painter == "optimiser":
        count = 3
        photos(tmp_path / "in", count, side=32)
        make_style(32, 32).save(tmp_path / "style.png")
        how = ["--style", str(tmp_path / "style.png"), "--size", "32", "--iterations", "10", "--precision", "fp32"]
    else:
        count = 24
        photos(tmp_path / "in", count, side=64)
        how = ["--model", "great-wave", "--batch-size", "1"]
    argv = [sys.executable, "-m", "stylecraft", "batch", str(tmp_path / "in"), "-o", str(out), *how, "--engine",
            "ray", "--address", made.address, "--workers", "1", "--quiet"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        manifest = out / "manifest.jsonl"
        while not (manifest.exists() and '"input"' in manifest.read_text()) and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130 and "stylecraft: interrupted; painted " in err, err
    records = [json.loads(line) for line in manifest.read_text().splitlines() if '"input"' in line]
    done = [r for r in records if r["error"] is None]
    assert done and len(done) < count and {r["error"] for r in records} <= {None, "interrupted"}
    assert all((out / Path(r["output"]).name).is_file() for r in done)


def children(pid: int) -> dict[int, list[str]]:
    """The command lines of the processes whose parent is ``pid`` (Linux's /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            words = (entry / "cmdline").read_bytes().decode().split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == pid:
            found[int(entry.name)] = words
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the raylet in Linux's /proc")
def test_the_cluster_gone_ends_the_batch_in_one_line(tmp_path):
    """A batch on a Ray of its own (not the module's cluster) whose raylet is killed as the first of two pictures
    is recorded: Ray would end the process without a word; the batch says the cluster is gone, keeps what is done
    and exits 1."""
    photos(tmp_path / "in", 2, side=32)
    make_style(32, 32).save(tmp_path / "style.png")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "stylecraft", "batch", str(tmp_path / "in"), "-o", str(out), "--style",
            str(tmp_path / "style.png"), "--size", "32", "--iterations", "500", "--precision", "fp32", "--engine",
            "ray", "--workers", "1", "--quiet"]
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env={**os.environ, "RAY_ADDRESS": "local"})
    try:
        deadline = time.monotonic() + RAY_WAIT
        while not ((out / "manifest.jsonl").exists() and '"input"' in (out / "manifest.jsonl").read_text()):
            assert time.monotonic() < deadline and process.poll() is None, "the first picture was never recorded"
            time.sleep(0.05)
        [raylet] = [pid for pid, words in children(process.pid).items() if words[0].endswith("/raylet")]
        os.kill(raylet, signal.SIGKILL)
        _, err = process.communicate(timeout=RAY_WAIT)
    finally:
        process.kill()
    ours = [line for line in err.splitlines() if line.startswith("stylecraft:")]
    assert process.returncode == 1 and len(ours) == 1, err[-3000:]
    said = re.match(r"stylecraft: error: the Ray cluster is gone \(this machine's raylet died\); painted (\d) "
                    r"picture\(s\) .*; (\d) picture\(s\) left", ours[0])
    assert said is not None, ours[0]
    painted, left = int(said[1]), int(said[2])  # on busy cores Ray may have finished both before the kill
    assert painted >= 1 and painted + left == 2 and len(list(out.glob("*.png"))) == painted
