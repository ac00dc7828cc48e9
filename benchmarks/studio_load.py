#!/usr/bin/env python3
"""Benchmark: the studio's HTTP API under concurrent clients while its worker runs an optimisation.

It starts a real studio (``stylecraft serve`` on 127.0.0.1, a free port, a temporary data folder), uploads
two generated pictures, queues one optimisation job (256 px, 2000 iterations), waits until the job is running
and has written its first preview, and measures the worker's iterations per second idle for a few seconds.
Then ``--clients`` threads, one keep-alive HTTP connection each (``http.client``), call the API for
``--seconds`` in a weighted random mix: ``GET /api/info``, ``GET /api/jobs`` (the gallery), ``GET
/api/jobs/{id}/preview`` of the running job, ``POST /api/uploads`` (a small PNG), ``POST /api/jobs`` then at
once ``POST /api/jobs/{id}/cancel`` and ``DELETE``, or only ``DELETE``, and ``GET /api/events`` (on a new
connection, read until the first ``event:``, a keep-alive or 2 s, then closed). A background job that ends
meanwhile is replaced, so the worker computes throughout.

Reported per call: count, requests per second, p50/p99/max latency of the expected answers in ms (for the
event stream: to the first body byte, and in a second row to the first ``event:``), errors (an unexpected
status or an exception; expected 0) and "other": a preview's 404 before the job has one, or an event stream
without an event within 2 s; neither is an error. Also the server's peak RSS (``VmHWM``, and the most
``VmRSS`` sampled every 0.1 s under load) and the worker's iterations per second idle and under load (the job
runs coarse to fine, so compare the two only at the same size; the JSON gives the sizes). The clients share
the machine with the server: on a small machine they take CPU from it too.

With ``--big-uploads N``, first, on the fresh server, N clients upload at once the same 7000 x 7000 PNG of
smooth gradients (49 MP, under the default limit of 50 MP, in about 150 kB): the server's memory is reported
before (``VmRSS``, ``VmHWM``), during (the most ``VmRSS`` sampled every 0.1 s, ``VmHWM`` at the end) and
after, with each upload's status (201 expected, anything else is an error), seconds and stored size.
``--seconds 0`` skips the load phase: the set-up, the background job and the clients.

    python benchmarks/studio_load.py --clients 8 --seconds 30
    python benchmarks/studio_load.py --big-uploads 3 --seconds 0 --json /tmp/big-uploads-3.json

It prints Markdown (the machine and the settings, then the tables), writes the same as JSON (``--json``,
default benchmarks/results/studio-load.json) and exits 1 if any call failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import io
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from transfer_vs_pastiche import RESULTS, _git, _version, machine_metadata

import stylecraft
from stylecraft.optimize import TransferConfig, schedule

HOST = "127.0.0.1"
#: Relative weights of the client actions.
MIX = {"info": 15, "gallery": 20, "preview": 20, "upload": 15, "job_cancel": 10, "job_delete": 10, "events": 10}
#: Rows of the table, in order.
CALLS = ("GET /api/info", "GET /api/jobs", "GET /api/jobs/{id}/preview", "POST /api/uploads", "POST /api/jobs",
         "POST /api/jobs/{id}/cancel", "DELETE /api/jobs/{id}", "GET /api/events (first byte)",
         "GET /api/events (first event)")
#: Settings of the jobs the clients create and cancel or delete at once (cheap, should one ever run).
CLIENT_JOB = {"size": 64, "iterations": 20}
EVENT_WINDOW = 2.0
#: Side of the picture of ``--big-uploads``: 49 MP, under the studio's default limit of 50 MP.
BIG_SIDE = 7000
MAX_ERROR_EXAMPLES = 20


# ---------------------------------------------------------------------------------------------------------
# Pictures, the server
# ---------------------------------------------------------------------------------------------------------

def picture(kind: str, seed: int, width: int = 256, height: int = 192) -> bytes:
    """A PNG: a colour gradient (``kind`` "gradient") or diagonal stripes ("stripes")."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "stripes":
        period = rng.uniform(12, 32)
        phase = (x + y) / period + rng.uniform(0, 1)
        channels = [0.5 + 0.5 * np.sin(2 * np.pi * (phase + shift)) for shift in (0.0, 1 / 3, 2 / 3)]
    else:
        a, b = rng.uniform(0.2, 1.0, 2)
        channels = [x / width * a, y / height * b, 1 - (x + y) / (width + height)]
    pixels = (np.stack(channels, axis=-1).clip(0, 1) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def big_picture(side: int) -> bytes:
    """A ``side`` x ``side`` PNG of smooth gradients: many pixels in few bytes (about 150 kB at 7000 px)."""
    ramp = np.linspace(0, 255, side).astype(np.uint8)
    pixels = np.empty((side, side, 3), np.uint8)
    pixels[..., 0] = ramp  # dark to light from left to right,
    pixels[..., 1] = ramp[:, None]  # from top to bottom
    pixels[..., 2] = ramp[::-1]  # and from right to left
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def memory_mb(pid: int, key: str) -> float | None:
    """A ``/proc/PID/status`` memory field (``VmRSS``, ``VmHWM``) in MB; None once the process is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024  # kB
    return None


def sample_rss(pid: int, stop: threading.Event, peaks: list[float]) -> None:
    """Keep the largest VmRSS (MB) of ``pid`` in ``peaks[0]``, sampled every 0.1 s until ``stop``."""
    while not stop.wait(0.1):
        peaks[0] = max(peaks[0], memory_mb(pid, "VmRSS") or 0)


def cpu_seconds(pid: int | None = None) -> float | None:
    """CPU seconds used: by the whole machine (``/proc/stat``, busy time) or by process ``pid`` (user + system)."""
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError, ValueError, IndexError):
        if pid is None:
            fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
            return (sum(fields[:3]) + sum(fields[5:8])) / tick  # user nice system, irq softirq steal
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime stime
    return None


def cpu_snapshot(pid: int) -> tuple[float, float | None, float | None, float]:
    """Now: (monotonic s, machine busy CPU s, server CPU s, this process's CPU s)."""
    return time.monotonic(), cpu_seconds(), cpu_seconds(pid), sum(os.times()[:2])


def cpu_window(before: tuple, after: tuple) -> dict:
    """CPU seconds between two snapshots: available, machine, server, this benchmark, other processes."""
    used = [None if a is None or b is None else b - a for a, b in zip(before, after, strict=True)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {"available": used[0] * cores, "machine": used[1], "server": used[2], "benchmark": used[3],
            "other_processes": used[1] - used[2] - used[3] if None not in used else None}


def lscpu_model() -> str | None:
    """``Model name`` as ``lscpu`` prints it."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                              env={**os.environ, "LC_ALL": "C"})
        for line in done.stdout.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                return value.strip()
    return None


def log_errors(text: str) -> dict[str, int]:
    """The server log's error lines and the last line of each traceback (the exception), with their counts."""
    found: dict[str, int] = {}
    in_traceback = False
    for line in text.splitlines():
        if line.startswith("Traceback"):
            in_traceback = True
        elif in_traceback and line and not line[0].isspace():
            if not line.startswith(("During handling", "The above exception")):
                found[line] = found.get(line, 0) + 1
                in_traceback = False
        elif line.startswith(("ERROR", "CRITICAL")):
            found[line] = found.get(line, 0) + 1
    return found


class Server:
    """``stylecraft serve`` in a child process with its own data folder; ``stop`` ends it (always call it)."""

    def __init__(self, data: Path, port: int, device: str, max_queue: int) -> None:
        self.port = port
        self.log_path = data / "serve.log"
        self.command = [sys.executable, "-m", "stylecraft", "serve", "--host", HOST, "--port", str(port),
                        "--data", str(data / "studio"), "--quiet", "--device", device, "--max-queue", str(max_queue)]
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # Its own session: a Ctrl-C in the terminal reaches only this script, which then stops the server itself.
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float) -> dict:
        """Wait until ``/api/info`` answers 200; its JSON. RuntimeError if the server exits or never answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the studio exited with status {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, body = call_once(self.port, "GET", "/api/info", timeout=5)
                if status == 200:
                    return json.loads(body)
            time.sleep(0.2)
        raise RuntimeError(f"the studio did not answer /api/info within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's output."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """SIGINT (uvicorn's graceful shutdown), SIGKILL after 15 s; the exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def call_once(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
              timeout: float = 30) -> tuple[int, bytes]:
    """One request on a new connection (set-up and monitoring, not measured)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def post_json(port: int, path: str, payload: dict) -> tuple[int, bytes]:
    """POST a JSON body (set-up and monitoring)."""
    return call_once(port, "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def multipart(data: bytes, filename: str) -> tuple[bytes, dict]:
    """A ``multipart/form-data`` body with ``data`` as the field ``file``, and its headers."""
    boundary = f"stylecraft-load-{uuid.uuid4().hex}"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload(port: int, data: bytes, filename: str) -> str:
    """Upload a picture (set-up); its id."""
    body, headers = multipart(data, filename)
    status, answer = call_once(port, "POST", "/api/uploads", body, headers)
    if status != 201:
        raise RuntimeError(f"POST /api/uploads answered {status}: {answer[:300]!r}")
    return json.loads(answer)["id"]


# ---------------------------------------------------------------------------------------------------------
# Big uploads
# ---------------------------------------------------------------------------------------------------------

def big_uploads(pid: int, port: int, count: int, timeout: float) -> dict:
    """``count`` clients upload the big picture at once: each one's answer, the server's memory around them."""
    data = big_picture(BIG_SIDE)
    body, headers = multipart(data, "big.png")
    results: list[dict] = [{} for _ in range(count)]

    def send(index: int) -> None:
        began = time.perf_counter()
        try:
            status, answer = call_once(port, "POST", "/api/uploads", body, headers, timeout)
        except (OSError, http.client.HTTPException) as exc:
            results[index] = {"status": None, "answer": f"{type(exc).__name__}: {exc}"}
        else:
            stored = json.loads(answer) if status == 201 else {}
            results[index] = {"status": status, "answer": f"stored {stored['width']} x {stored['height']}"
                              if stored else answer[:300].decode(errors="replace")}
        results[index]["seconds"] = time.perf_counter() - began

    rss_before, hwm_before = memory_mb(pid, "VmRSS"), memory_mb(pid, "VmHWM")
    peaks = [rss_before or 0.0]
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(pid, stop, peaks), daemon=True)
    senders = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(count)]
    print(f"studio_load: {count} uploads at once of a {BIG_SIDE} x {BIG_SIDE} PNG ({len(data) / 1000:.0f} kB) ...",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    for thread in [sampler, *senders]:
        thread.start()
    for thread in senders:
        thread.join()
    wall = time.monotonic() - started
    rss_after = memory_mb(pid, "VmRSS")
    stop.set()
    sampler.join()
    return {"uploads": count, "picture": f"{BIG_SIDE}x{BIG_SIDE}", "png_bytes": len(data), "wall_s": wall,
            "rss_before_mb": rss_before, "hwm_before_mb": hwm_before,
            "max_rss_during_mb": max(peaks[0], rss_after or 0), "hwm_after_mb": memory_mb(pid, "VmHWM"),
            "rss_after_mb": rss_after, "results": results, "errors": sum(r["status"] != 201 for r in results)}


def big_uploads_report(phase: dict) -> str:
    """The big uploads as Markdown: memory, then a table of the uploads."""
    side = phase["picture"].replace("x", " x ")
    lines = [f"### {phase['uploads']} uploads at once of a {side} PNG ({phase['png_bytes'] / 1000:.0f} kB), "
             "on the fresh server",
             "",
             f"- server memory before: VmRSS {fmt(phase['rss_before_mb'], '.0f')} MB, VmHWM "
             f"{fmt(phase['hwm_before_mb'], '.0f')} MB; during: most VmRSS {fmt(phase['max_rss_during_mb'], '.0f')} "
             f"MB (sampled every 0.1 s), VmHWM {fmt(phase['hwm_after_mb'], '.0f')} MB; after: VmRSS "
             f"{fmt(phase['rss_after_mb'], '.0f')} MB",
             f"- all answered in {phase['wall_s']:.1f} s, {phase['errors']} errors",
             "",
             "| upload | status | seconds | answer |",
             "| ---: | ---: | ---: | --- |"]
    for index, result in enumerate(phase["results"], 1):
        lines.append(f"| {index} | {fmt(result['status'], 'd')} | {result['seconds']:.2f} | {result['answer']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# The background job
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Background:
    """The optimisation job kept running during the measurement, replaced if it ends."""

    port: int
    content: str
    style: str
    size: int
    iterations: int
    origin: float = field(default_factory=time.monotonic)
    job_id: str = ""
    jobs: list[dict] = field(default_factory=list)
    samples: list[tuple[float, int, str]] = field(default_factory=list)  # (monotonic s, total iterations, state)
    _done_iterations: int = 0  # of the jobs that ended

    def start_job(self) -> None:
        """Queue a new background job."""
        status, body = post_json(self.port, "/api/jobs", {"content": self.content, "styles": [self.style],
                                                           "size": self.size, "iterations": self.iterations})
        if status != 201:
            raise RuntimeError(f"POST /api/jobs (background job) answered {status}: {body[:300]!r}")
        self.job_id = json.loads(body)["id"]
        self.jobs.append({"id": self.job_id, "queued_after_s": round(time.monotonic() - self.origin, 2)})

    def poll(self) -> dict:
        """The job's JSON, and one sample of the worker's progress."""
        status, body = call_once(self.port, "GET", f"/api/jobs/{self.job_id}")
        if status != 200:
            raise RuntimeError(f"GET /api/jobs/{self.job_id} answered {status}: {body[:300]!r}")
        job = json.loads(body)
        self.samples.append((time.monotonic(), self._done_iterations + job["iteration"], job["state"]))
        return job

    def wait(self, condition: Callable[[dict], bool], what: str, timeout: float) -> dict:
        """Poll until ``condition(job)``; RuntimeError on timeout or if the job ends first."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.poll()
            if condition(job):
                return job
            if job["state"] not in ("queued", "running"):
                raise RuntimeError(f"the background job ended ({job['state']}: {job['error']}) before {what}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the background job was not {what} after {timeout:.0f} s (state {job['state']})")
            time.sleep(0.2)

    def keep_running(self, stop: threading.Event, period: float = 1.0) -> None:
        """Sample progress every ``period`` s until ``stop``; queue a new job when the current one ends."""
        while not stop.wait(period):
            with contextlib.suppress(OSError, http.client.HTTPException, RuntimeError, ValueError):
                job = self.poll()
                if job["state"] not in ("queued", "running"):
                    self.jobs[-1].update(state=job["state"], error=job["error"], iterations_done=job["iteration"])
                    self._done_iterations += job["iteration"]
                    self.start_job()

    def rate(self, since: float, until: float) -> dict:
        """Worker iterations per second between two monotonic times, from the samples, with the iterations."""
        inside = [(t, n) for t, n, _ in self.samples if since <= t <= until]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return {"iterations_per_s": None, "iterations": None}
        return {"iterations_per_s": (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0]),
                "iterations": [inside[0][1], inside[-1][1]]}


def plan(size: int, iterations: int, width: int = 256, height: int = 192) -> list[dict]:
    """The background job's coarse-to-fine stages (TransferConfig defaults): size and the last iteration of each."""
    full = (size, round(height * size / width)) if width >= height else (round(width * size / height), size)
    stages, last = [], 0
    for (w, h), count in schedule(TransferConfig().replace(size=size, iterations=iterations), full):
        last += count
        stages.append({"size": f"{w}x{h}", "iterations": count, "last_iteration": last})
    return stages


def stages_between(stages: list[dict], first: int, last: int) -> list[str]:
    """The sizes the worker computed at from iteration ``first`` to ``last`` of one job."""
    begin = 0
    found = []
    for stage in stages:
        if first < stage["last_iteration"] and last > begin:
            found.append(stage["size"])
        begin = stage["last_iteration"]
    return found


# ---------------------------------------------------------------------------------------------------------
# The clients
# ---------------------------------------------------------------------------------------------------------

@dataclass
class Record:
    """One client's results: latencies of expected answers per call, counts, errors."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    other: dict[str, int] = field(default_factory=dict)
    examples: list[dict] = field(default_factory=list)

    def add(self, call: str, seconds: float | None, outcome: str = "ok", detail: dict | None = None) -> None:
        """Count one call; ``outcome`` is "ok" (latency kept), "other" (expected, not timed) or "error"."""
        self.counts[call] = self.counts.get(call, 0) + 1
        if outcome == "ok" and seconds is not None:
            self.latencies.setdefault(call, []).append(seconds)
        elif outcome == "other":
            self.other[call] = self.other.get(call, 0) + 1
        elif outcome == "error":
            self.errors[call] = self.errors.get(call, 0) + 1
            if len(self.examples) < MAX_ERROR_EXAMPLES:
                self.examples.append({"call": call, **(detail or {})})


class Client:
    """One simulated user: one keep-alive connection, a weighted random loop of API calls."""

    def __init__(self, index: int, port: int, background: Background, pictures: list[bytes],
                 timeout: float, started: float) -> None:
        self.index = index
        self.port = port
        self.background = background
        self.pictures = pictures
        self.timeout = timeout
        self.started = started
        self.random = random.Random(index)
        self.record = Record()
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)

    def request(self, call: str, method: str, path: str, expect: int, body: bytes | None = None,
                headers: dict | None = None, other: tuple[int, ...] = ()) -> bytes | None:
        """One measured request; the body of an expected answer, None otherwise."""
        began = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()  # the next request opens a new connection
            self.record.add(call, None, "error", {"path": path, "exception": f"{type(exc).__name__}: {exc}",
                                                  "after_s": round(time.perf_counter() - began, 3),
                                                  "at_s": round(time.monotonic() - self.started, 2)})
            return None
        seconds = time.perf_counter() - began
        if response.status == expect:
            self.record.add(call, seconds)
            return data
        if response.status in other:
            self.record.add(call, seconds, "other")
            return None
        self.record.add(call, seconds, "error", {"path": path, "status": response.status,
                                                 "body": data[:300].decode(errors="replace"),
                                                 "after_s": round(seconds, 3),
                                                 "at_s": round(time.monotonic() - self.started, 2)})
        return None

    def info(self) -> None:
        self.request("GET /api/info", "GET", "/api/info", 200)

    def gallery(self) -> None:
        self.request("GET /api/jobs", "GET", "/api/jobs", 200)

    def preview(self) -> None:
        self.request("GET /api/jobs/{id}/preview", "GET", f"/api/jobs/{self.background.job_id}/preview", 200,
                     other=(404,))

    def upload(self) -> None:
        body, headers = multipart(self.random.choice(self.pictures), f"client{self.index}.png")
        self.request("POST /api/uploads", "POST", "/api/uploads", 201, body, headers)

    def job(self, cancel: bool) -> None:
        payload = {"content": self.background.content, "styles": [self.background.style], **CLIENT_JOB}
        created = self.request("POST /api/jobs", "POST", "/api/jobs", 201, json.dumps(payload).encode(),
                               {"Content-Type": "application/json"})
        if created is None:
            return
        job_id = json.loads(created)["id"]
        if cancel:
            self.request("POST /api/jobs/{id}/cancel", "POST", f"/api/jobs/{job_id}/cancel", 200)
        self.request("DELETE /api/jobs/{id}", "DELETE", f"/api/jobs/{job_id}", 204)  # keeps the gallery small

    def events(self) -> None:
        """Open the event stream on a new connection, read until an event, a keep-alive or 2 s; close."""
        first_byte, first_event = "GET /api/events (first byte)", "GET /api/events (first event)"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        began = time.perf_counter()
        call = first_byte  # the row an exception counts against
        try:
            conn.request("GET", "/api/events", headers={"Accept": "text/event-stream"})
            sock = conn.sock
            response = conn.getresponse()
            if response.status != 200:
                body = response.read()
                self.record.add(first_byte, None, "error", {"path": "/api/events", "status": response.status,
                                                            "body": body[:300].decode(errors="replace"),
                                                            "at_s": round(time.monotonic() - self.started, 2)})
                return
            seen = response.read1(4096)
            if not seen:
                raise ConnectionError("the event stream ended before its first byte")
            self.record.add(first_byte, time.perf_counter() - began)
            call = first_event
            deadline = began + EVENT_WINDOW
            while b"event:" not in seen and b": keep-alive" not in seen:
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                sock.settimeout(left)
                try:
                    chunk = response.read1(4096)
                except TimeoutError:
                    break
                if not chunk:
                    raise ConnectionError("the event stream ended")
                seen += chunk
            if b"event:" in seen or b": keep-alive" in seen:
                self.record.add(first_event, time.perf_counter() - began)
            else:
                self.record.add(first_event, None, "other")
        except (OSError, http.client.HTTPException) as exc:
            self.record.add(call, None, "error", {"path": "/api/events", "exception": f"{type(exc).__name__}: {exc}",
                                                  "after_s": round(time.perf_counter() - began, 3),
                                                  "at_s": round(time.monotonic() - self.started, 2)})
        finally:
            conn.close()

    def run(self, deadline: float, max_calls: int, stop: threading.Event) -> None:
        """Loop until ``deadline`` (monotonic), ``max_calls`` actions or ``stop``."""
        actions: dict[str, Callable[[], None]] = {
            "info": self.info, "gallery": self.gallery, "preview": self.preview, "upload": self.upload,
            "job_cancel": lambda: self.job(cancel=True), "job_delete": lambda: self.job(cancel=False),
            "events": self.events}
        names, weights = list(MIX), list(MIX.values())
        try:
            for _ in range(max_calls):
                if stop.is_set() or time.monotonic() >= deadline:
                    break
                actions[self.random.choices(names, weights)[0]]()
        finally:
            self.conn.close()


# ---------------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------------

def merge(records: list[Record]) -> Record:
    """One record from every client's."""
    total = Record()
    for record in records:
        for call, values in record.latencies.items():
            total.latencies.setdefault(call, []).extend(values)
        for name in ("counts", "errors", "other"):
            mine = getattr(total, name)
            for call, count in getattr(record, name).items():
                mine[call] = mine.get(call, 0) + count
        total.examples.extend(record.examples)
    total.examples = sorted(total.examples, key=lambda e: e.get("at_s", 0))[:MAX_ERROR_EXAMPLES]
    return total


def rows(total: Record, seconds: float) -> list[dict]:
    """Per call: count, rate, latency percentiles in ms, errors and expected non-200 answers."""
    result = []
    for call in CALLS:
        values = np.array(total.latencies.get(call, []), dtype=float) * 1000
        count = total.counts.get(call, 0)
        if not count:
            continue
        result.append({"call": call, "count": count, "per_second": count / seconds if seconds else None,
                       "p50_ms": float(np.percentile(values, 50)) if values.size else None,
                       "p99_ms": float(np.percentile(values, 99)) if values.size else None,
                       "max_ms": float(values.max()) if values.size else None,
                       "errors": total.errors.get(call, 0), "other": total.other.get(call, 0)})
    return result


def fmt(value: float | None, spec: str) -> str:
    """``value`` formatted, or "-" for None."""
    return "-" if value is None else format(value, spec)


def markdown(table: list[dict]) -> str:
    """The rows as a Markdown table."""
    lines = ["| call | count | req/s | p50 ms | p99 ms | max ms | errors | other |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in table:
        lines.append(f"| `{row['call']}` | {row['count']} | {fmt(row['per_second'], '.1f')} | "
                     f"{fmt(row['p50_ms'], '.1f')} | {fmt(row['p99_ms'], '.1f')} | "
                     f"{fmt(row['max_ms'], '.1f')} | {row['errors']} | {row['other']} |")
    return "\n".join(lines)


def header(data: dict) -> str:
    """Machine, settings and server figures, as Markdown lines above the tables."""
    machine, settings, server, worker = data["machine"], data["settings"], data["server"], data["worker"]
    versions = data["versions"]
    title = (f"under load: {settings['clients']} clients, {settings['seconds']:g} s" if settings["seconds"]
             else f"{settings['big_uploads']} big uploads at once")
    lines = [
        f"## stylecraft studio {title}",
        "",
        f"- CPU: {machine['lscpu_model_name'] or machine['cpu_model']}, {machine['logical_cores']} logical cores "
        f"({machine['usable_cores']} usable); {machine['memory_gib']:.1f} GiB; load average at the start "
        + "/".join(f"{x:.2f}" for x in machine["load_average_at_start"] or []),
        f"- Python {machine['python']}, torch {machine['torch']}, stylecraft {versions['stylecraft']} from "
        f"{versions['stylecraft_path']}; server device {server.get('device')}"]
    if "calls" not in data:
        return "\n".join(lines)
    idle, loaded = data["cpu_seconds"]["idle"], data["cpu_seconds"]["under_load"]

    def speed(window: dict) -> str:
        if window["iterations"] is None:
            return "-"
        first, last = window["iterations"]
        where = f", at {'+'.join(window['stages'])}" if window.get("stages") else ""
        return f"{fmt(window['iterations_per_s'], '.2f')} iterations/s (iterations {first}-{last}{where})"

    return "\n".join([
        *lines,
        f"- settings: --clients {settings['clients']} --seconds {settings['seconds']:g}; background job "
        f"{settings['job_size']} px, {settings['job_iterations']} iterations; mix "
        + ", ".join(f"{k} {v}" for k, v in MIX.items()),
        f"- measured {data['measured_s']:.1f} s: {data['total_calls']} calls "
        f"({data['total_calls'] / data['measured_s']:.1f}/s), {data['total_errors']} errors",
        f"- server peak RSS {fmt(server['peak_rss_mb'], '.0f')} MB (VmHWM); most VmRSS under load "
        f"{fmt(server['max_rss_under_load_mb'], '.0f')} MB (was {fmt(server['rss_before_load_mb'], '.0f')} MB "
        f"before, {fmt(server['rss_after_load_mb'], '.0f')} MB after)",
        f"- CPU seconds under load: server {fmt(loaded['server'], '.1f')}, the clients "
        f"{fmt(loaded['benchmark'], '.1f')}, other processes {fmt(loaded['other_processes'], '.1f')} (of "
        f"{loaded['available']:.1f}); idle phase: server {fmt(idle['server'], '.1f')}, other processes "
        f"{fmt(idle['other_processes'], '.1f')} (of {idle['available']:.1f})",
        f"- worker: {speed(worker['idle'])} idle, {speed(worker['under_load'])} under load; background job "
        f"{worker['state_at_end']} at the end, {len(worker['jobs'])} queued in all",
    ])


# ---------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------

def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="studio_load.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=_positive, default=8, help="concurrent clients, one thread each "
                        "(default 8)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the clients run (default 30; 0: "
                        "no load phase)")
    parser.add_argument("--max-calls", type=_positive, default=100_000, help="at most this many actions per "
                        "client (default 100000)")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="the worker's speed is measured this "
                        "long without clients first (default 5)")
    parser.add_argument("--size", type=_positive, default=256, help="background job's size (default 256)")
    parser.add_argument("--iterations", type=_positive, default=2000, help="background job's iterations "
                        "(default 2000; a job that ends is replaced)")
    parser.add_argument("--big-uploads", type=int, default=0, metavar="N", help="first, N clients upload a "
                        f"{BIG_SIDE} x {BIG_SIDE} PNG at once (default 0: skipped)")
    parser.add_argument("--device", default="auto", help="the studio's --device (default auto)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a request may take before it "
                        "counts as an error (default 30)")
    parser.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for the studio "
                        "and for the job's first preview (default 180)")
    parser.add_argument("--json", type=Path, default=RESULTS / "studio-load.json",
                        help="results file (default benchmarks/results/studio-load.json)")
    args = parser.parse_args(argv)
    if args.seconds < 0 or args.big_uploads < 0:
        parser.error("--seconds and --big-uploads must not be negative")
    if not args.seconds and not args.big_uploads:
        parser.error("--seconds 0 without --big-uploads measures nothing")
    return args


def measure(args: argparse.Namespace, server: Server, data: dict, stop: threading.Event) -> None:
    """Set up the background job, run the clients, fill ``data``."""
    port = server.port
    content = upload(port, picture("gradient", 0), "content.png")
    style = upload(port, picture("stripes", 1), "style.png")
    background = Background(port, content, style, args.size, args.iterations)
    background.start_job()
    background.wait(lambda job: job["state"] == "running", "running", args.startup_timeout)
    # Its first preview (iteration 10): past the warm-up iterations, and previews are there to fetch.
    background.wait(lambda job: job["preview"] is not None, "showing a preview", args.startup_timeout)
    pid = server.process.pid
    idle_cpu = cpu_snapshot(pid)
    idle_start = time.monotonic()
    while time.monotonic() - idle_start < args.idle_seconds and not stop.is_set():
        background.poll()
        time.sleep(0.5)
    idle_end = time.monotonic()
    data["cpu_seconds"] = {"idle": cpu_window(idle_cpu, cpu_snapshot(pid))}
    background.poll()

    rss_before = memory_mb(pid, "VmRSS")
    peaks = [rss_before or 0.0]
    watch_stop = threading.Event()
    helpers = [threading.Thread(target=background.keep_running, args=(watch_stop,), daemon=True),
               threading.Thread(target=sample_rss, args=(pid, watch_stop, peaks), daemon=True)]
    pictures = [picture("stripes" if i % 2 else "gradient", 100 + i) for i in range(8)]
    load_cpu = cpu_snapshot(pid)
    started = time.monotonic()
    deadline = started + args.seconds
    clients = [Client(i, port, background, pictures, args.timeout, started) for i in range(args.clients)]
    threads = [threading.Thread(target=c.run, args=(deadline, args.max_calls, stop), name=f"client-{c.index}",
                                daemon=True) for c in clients]
    print(f"studio_load: {args.clients} clients for {args.seconds:g} s against {HOST}:{port} "
          f"(background job {background.job_id} running) ...", file=sys.stderr, flush=True)
    for thread in helpers + threads:
        thread.start()
    for thread in threads:
        thread.join(args.seconds + 2 * args.timeout + 10)  # a request in flight at the deadline may finish
    finished = time.monotonic()
    data["cpu_seconds"]["under_load"] = cpu_window(load_cpu, cpu_snapshot(pid))
    watch_stop.set()
    for thread in helpers:
        thread.join(10)
    hung = [t.name for t in threads if t.is_alive()]
    job = background.poll()
    rss_after = memory_mb(pid, "VmRSS")

    total = merge([c.record for c in clients])
    measured = finished - started
    data["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    table = rows(total, measured)
    data.update({
        "measured_s": measured, "total_calls": sum(total.counts.values()),
        "total_errors": sum(total.errors.values()) + len(hung), "calls": table, "error_examples": total.examples,
        "hung_clients": hung})
    data["server"].update({
        "pid": pid, "exited_during_run": server.process.poll() is not None,
        "peak_rss_mb": memory_mb(pid, "VmHWM"), "max_rss_under_load_mb": max(peaks[0], rss_after or 0),
        "rss_before_load_mb": rss_before, "rss_after_load_mb": rss_after})
    stages = plan(args.size, args.iterations)
    windows = {"idle": background.rate(idle_start, idle_end), "under_load": background.rate(started, finished + 1)}
    for window in windows.values():
        if window["iterations"] is not None and len(background.jobs) == 1:  # one job: its own iteration count
            window["stages"] = stages_between(stages, *window["iterations"])
    data["worker"].update({
        **windows, "plan": stages, "state_at_end": job["state"], "iteration_at_end": job["iteration"],
        "job_id_at_end": job["id"], "jobs": background.jobs,
        "note": "the job runs coarse to fine (plan), and an iteration costs more at a larger size: compare the "
                "idle and loaded speeds only at the same size"})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops the server even if SIGINT was ignored
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # and so does SIGTERM
    started = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_metadata(args.device)
    machine["lscpu_model_name"] = lscpu_model()
    data: dict = {
        "benchmark": "studio_load", "schema": 1,
        "command_line": shlex.join([Path(sys.executable).name, *sys.argv]), "argv": sys.argv,
        "started": started.isoformat(timespec="seconds"), "finished": None,
        "settings": {"clients": args.clients, "seconds": args.seconds, "big_uploads": args.big_uploads,
                     "max_calls": args.max_calls, "idle_seconds": args.idle_seconds, "job_size": args.size,
                     "job_iterations": args.iterations, "device": args.device, "timeout_s": args.timeout,
                     "mix": MIX, "client_job": CLIENT_JOB, "event_window_s": EVENT_WINDOW,
                     "http_client": "http.client, one keep-alive connection per client thread; the event stream "
                     "on a new connection each time"},
        "versions": {"stylecraft": _version("stylecraft"), "torch": machine["torch"], "numpy": _version("numpy"),
                     "fastapi": _version("fastapi"), "uvicorn": _version("uvicorn"),
                     "stylecraft_path": str(Path(stylecraft.__file__).parent), "stylecraft_git": _git()},
        "machine": machine, "server": {}, "worker": {}}
    folder = Path(tempfile.mkdtemp(prefix="stylecraft-load-"))
    stop = threading.Event()
    server = Server(folder, free_port(), args.device, max_queue=max(1000, 10 * args.clients))
    data["server"]["command"] = shlex.join(server.command)
    try:
        data["server"]["device"] = server.wait_ready(args.startup_timeout).get("device")
        if args.big_uploads:
            data["big_uploads"] = big_uploads(server.process.pid, server.port, args.big_uploads, args.timeout)
        if args.seconds:
            measure(args, server, data, stop)
    except KeyboardInterrupt:
        print("studio_load: interrupted; stopping the studio", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, http.client.HTTPException, ValueError) as exc:
        print(f"studio_load: error: {exc}", file=sys.stderr)
        return 1
    finally:
        stop.set()
        data["server"]["exit_status"] = server.stop()
        log = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        data["server"]["log_tracebacks"] = log.count("Traceback (most recent call last)")
        data["server"]["log_errors"] = log_errors(log)
        data["server"]["log_tail"] = log.splitlines()[-30:]
        shutil.rmtree(folder, ignore_errors=True)

    data["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    if str(data["server"].get("device")).startswith("cuda"):
        machine["gpu"] = machine_metadata("cuda").get("gpu")
    print(header(data))
    if "big_uploads" in data:
        print(f"\n{big_uploads_report(data['big_uploads'])}")
    if "calls" in data:
        print(f"\n{markdown(data['calls'])}")
    if data.get("error_examples") or data.get("hung_clients"):
        print("\nerrors (first ones):")
        for example in data["error_examples"]:
            print(f"- {json.dumps(example)}")
        for name in data["hung_clients"]:
            print(f"- {name} still running after the deadline")
    if data["server"]["log_errors"]:
        print(f"\nthe server logged {data['server']['log_tracebacks']} traceback(s); its error lines and exceptions:")
        for line, count in data["server"]["log_errors"].items():
            print(f"- {count} x {line}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2))
    print(f"\nresults: {args.json}")
    return 1 if data.get("total_errors") or data.get("big_uploads", {}).get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
