#!/usr/bin/env python3
"""Benchmark: stylecraft against pastiche on the same content/style pairs, at the same size, in one run.

Each tool runs as a child process through its own command line, interleaved pair by pair (stylecraft pair 1,
pastiche pair 1, stylecraft pair 2, ...), so that both see the same machine load. Per run it records the
wall time from process start to exit, seconds per full-size iteration, the peak RSS of that child alone
(``os.wait4``), and the quality numbers of ``stylecraft.quality`` (what ``stylecraft score`` prints),
computed here identically for every tool at one evaluation size:

* content distance: ||F(out) - F(content)|| / ||F(content)|| at relu4_2 of VGG-19 (default weights);
* style distance: the mean over relu1_1 ... relu5_1 of ||G(out) - G(style)|| / ||G(style)||, G the Gram matrix;
* colour distance: sliced Wasserstein-1 between the output's and the painting's colours in CIE Lab, divided
  by the photo's own (0: the painting's palette, 1: no closer than the photo);
* structure kept: SSIM of the luminance with the photo's at 128 px long side.

It prints a table and a summary line and writes every record, with machine metadata, to a JSON file.
See benchmarks/README.md for the method and its caveats. Run ``--help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import re
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import torch
from PIL import Image

from stylecraft import files, images, quality, report
from stylecraft.runtime import maxrss_bytes

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "images"
RESULTS = REPO / "benchmarks" / "results"

#: (content, style) in the order they run; --quick uses the first two, the full mode all three.
PAIRS = (("chicago.jpg", "the_resevoir_at_poitiers.jpg"),
         ("sailboat.jpg", "candy.jpg"),
         ("avril.jpg", "contrast_of_forms.jpg"))
MODES = {"quick": {"size": 256, "pairs": 2}, "full": {"size": 512, "pairs": 3}}
TOOLS = ("stylecraft", "pastiche")

PASTICHE_DEFAULT_STEPS = 1000  # pastiche's own --num-steps default
PASTICHE_CHECKPOINTS = (250, 500, 1000)  # iterations at which pastiche's quality is also measured


#: History columns that may tell the scale of a coarse-to-fine schedule; rows of the last value are full size.
SCALE_COLUMNS = ("size", "scale", "level", "stage", "width", "height")

#: pastiche's progress lines: "step elapsed loss" (elapsed in seconds since the process started).
PASTICHE_STEP_LINE = re.compile(r"^\s*(\d+)\s+(\d+(?:\.\d*)?)\s+(\S+)\s*$")


# ---------------------------------------------------------------------------------------------------------
# Running one child process
# ---------------------------------------------------------------------------------------------------------

def find_tool(name: str) -> list[str] | None:
    """The console script of ``name``: the one beside this Python first (same venv), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(name)
    return [found] if found else None


def run_child(command: list[str], stdout_path: Path, stderr_path: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``command`` to completion (in ``env``, default this process's environment); wall seconds (start to
    exit), exit code and the child's own peak RSS.

    ``os.wait4`` gives the resource usage of this one child (ru_maxrss, kB on Linux, bytes on macOS), where
    ``resource.getrusage(RUSAGE_CHILDREN)`` would be the running maximum over every child so far.
    """
    parent_before = resource.getrusage(resource.RUSAGE_SELF)
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        began = time.perf_counter()
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        try:
            _, status, usage = os.wait4(child.pid, 0)
        except BaseException:
            child.kill()
            child.wait()
            raise
        wall = time.perf_counter() - began
    parent_after = resource.getrusage(resource.RUSAGE_SELF)
    child.returncode = os.waitstatus_to_exitcode(status)
    return {"returncode": child.returncode, "wall_s": wall, "peak_rss_mib": maxrss_bytes(usage.ru_maxrss) / 2**20,
            "user_cpu_s": usage.ru_utime, "system_cpu_s": usage.ru_stime,
            # Should be ~0: the benchmark process itself must not compete with the child for the cores.
            "benchmark_process_cpu_s": (parent_after.ru_utime - parent_before.ru_utime
                                        + parent_after.ru_stime - parent_before.ru_stime),
            "load_average_after": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def picture_size(path: Path) -> list[int]:
    """[width, height] of a picture file, from its header."""
    with Image.open(path) as image:
        return list(image.size)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------------------
# Seconds per iteration
# ---------------------------------------------------------------------------------------------------------

def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def full_size_rows(rows: list[dict]) -> list[dict]:
    """The rows of the last (full-size) stage of a stylecraft history.

    Without a size/scale column every row is full size. With one (coarse-to-fine), the full-size stage is
    the run of consecutive rows at the end that share the last row's value.
    """
    columns = [c for c in SCALE_COLUMNS if any(c in row for row in rows)]
    if not columns or not rows:
        return list(rows)

    def tag(row: dict) -> tuple:
        return tuple(_hashable(row.get(c)) for c in columns)

    last = tag(rows[-1])
    stage: list[dict] = []
    for row in reversed(rows):
        if tag(row) != last:
            break
        stage.append(row)
    return stage[::-1]


def median_rate(points: list[tuple[float, float]]) -> float | None:
    """The median seconds per iteration over consecutive (iteration, seconds) points."""
    rates = [(t1 - t0) / (i1 - i0) for (i0, t0), (i1, t1) in zip(points, points[1:], strict=False)
             if i1 > i0 and t1 >= t0]
    return statistics.median(rates) if rates else None


def stylecraft_timing(history_path: Path) -> dict:
    """Iterations and the median seconds per full-size iteration from a stylecraft --history JSON."""
    try:
        data = json.loads(history_path.read_text())
    except (OSError, ValueError):
        return {"s_per_iteration": None, "s_per_iteration_source": "no history file"}
    rows = [row for row in data.get("history", []) if "iteration" in row and "elapsed" in row]
    full = full_size_rows(rows)
    rate = median_rate([(row["iteration"], row["elapsed"]) for row in full])
    source = "history: median between consecutive full-size iterations"
    if rate is None and len(full) == 1 and len(rows) == 1 and full[0]["iteration"] > 0:
        rate = full[0]["elapsed"] / full[0]["iteration"]
        source = "history: the only iteration"
    scale_columns = [c for c in SCALE_COLUMNS if any(c in row for row in rows)]
    return {"iterations": len(rows), "full_size_iterations": len(full), "history_scale_columns": scale_columns,
            "optimisation_s": rows[-1]["elapsed"] if rows else None,
            "s_per_iteration": rate, "s_per_iteration_source": source if rate is not None else "too few rows",
            "settings": data.get("settings")}


def workspace_images(folder: Path) -> dict[int, Path]:
    """pastiche's intermediate pictures, ``NNNN.png`` (zero-padded step, no prefix), by step."""
    if not folder.is_dir():
        return {}
    return {int(p.stem): p for p in folder.glob("*.png") if p.stem.isdigit()}


def pastiche_timing(stdout_path: Path, workspace: dict[int, Path], wall: float) -> dict:
    """Seconds per iteration for pastiche, from the finest record it leaves.

    1. its progress lines (every --info-step iterations, default 100: step and seconds since start);
    2. else the modification times of its intermediate pictures (every --workspace-step iterations);
    3. else the wall time over the iterations (includes start-up).
    All of pastiche's iterations are full size (it has no multi-scale schedule).
    """
    text = stdout_path.read_text(errors="replace") if stdout_path.exists() else ""
    lines = []
    for line in text.splitlines():
        match = PASTICHE_STEP_LINE.match(line)
        if match:
            lines.append((int(match.group(1)), float(match.group(2))))
    printed = {key: value for key, value in (line.split(": ", 1) for line in text.splitlines() if ": " in line)}
    steps = max([s for s, _ in lines] + list(workspace), default=0)
    result = {"iterations": steps, "full_size_iterations": steps, "setup_s": lines[0][1] if lines else None,
              "printed_size": printed.get("size"), "printed_style_size": printed.get("style_sizes[0]"),
              "printed_seed": printed.get("seed")}
    rate = median_rate(lines)
    if rate is not None:
        return {**result, "s_per_iteration": rate,
                "s_per_iteration_source": "progress lines: median between consecutive printed steps"}
    rate = median_rate(sorted((step, path.stat().st_mtime) for step, path in workspace.items()))
    if rate is not None:
        return {**result, "s_per_iteration": rate,
                "s_per_iteration_source": "workspace pictures: median between their modification times"}
    return {**result, "s_per_iteration": wall / steps if steps else None,
            "s_per_iteration_source": "wall time / iterations (includes start-up)"}


# ---------------------------------------------------------------------------------------------------------
# Quality: the same distances for every tool
# ---------------------------------------------------------------------------------------------------------

class Evaluator:
    """Every tool's pictures scored the same way: ``stylecraft.quality``'s numbers at one evaluation size."""

    def __init__(self, eval_size: int) -> None:
        self.size = eval_size
        self.scorer = quality.Scorer()
        self._references: dict[tuple[str, str], quality.Reference] = {}

    @staticmethod
    def _load(path: Path) -> torch.Tensor:
        return images.to_tensor(images.load_image(path))

    def _reference(self, content_path: Path, style_path: Path) -> quality.Reference:
        key = (str(content_path), str(style_path))
        if key not in self._references:
            self._references[key] = self.scorer.reference(self._load(content_path), self._load(style_path),
                                                          self.size)
        return self._references[key]

    def distances(self, picture: torch.Tensor | Path, content_path: Path, style_path: Path) -> dict:
        """The numbers of ``picture`` (a file or an RGB [0, 1] tensor) against the pair."""
        image = self._load(picture) if isinstance(picture, Path) else picture
        return self.scorer.score(image, self._reference(content_path, style_path)).as_dict()

    def references(self, content_path: Path, style_path: Path) -> dict:
        """The numbers of two trivial 'results', to read the others against: the photo and the painting."""
        reference = self._reference(content_path, style_path)
        return {"content_photo_as_output": self.distances(reference.photo, content_path, style_path),
                "style_image_as_output": self.distances(reference.painting, content_path, style_path)}


# ---------------------------------------------------------------------------------------------------------
# One run of each tool
# ---------------------------------------------------------------------------------------------------------

def pair_id(content: Path, style: Path) -> str:
    return f"{content.stem}__{style.stem}"


def run_stylecraft(exe: list[str], content: Path, style: Path, out_dir: Path, args: argparse.Namespace) -> dict:
    name = pair_id(content, style)
    output = out_dir / f"{name}_stylecraft.png"
    history = out_dir / f"{name}_stylecraft_history.json"
    for stale in (output, history):
        stale.unlink(missing_ok=True)
    command = [*exe, "transfer", str(content), str(style), "-o", str(output), "--size", str(args.size),
               "--seed", "0", "--history", str(history), "--quiet", "--device", args.device,
               *shlex.split(args.stylecraft_args)]
    logs = out_dir / f"{name}_stylecraft.stdout.txt", out_dir / f"{name}_stylecraft.stderr.txt"
    record = {"command": command, "output": str(output), "history": str(history),
              "stdout_log": str(logs[0]), "stderr_log": str(logs[1]), **run_child(command, *logs)}
    if record["returncode"] == 0:
        timing = stylecraft_timing(history)
        settings = timing.pop("settings") or {}
        record.update(timing)
        record["setup_and_save_s"] = (record["wall_s"] - timing["optimisation_s"]
                                      if timing.get("optimisation_s") is not None else None)
        record["tool_settings"] = {k: settings.get(k) for k in ("iterations", "optimizer", "device", "size",
                                                               "content_weight", "style_weight", "tv_weight",
                                                               "style_scale", "seed")}
    return record


def pastiche_plan(iterations: int | None) -> tuple[int, list[int], int]:
    """(iterations, checkpoint iterations, --workspace-step) for a pastiche run."""
    total = iterations if iterations is not None else PASTICHE_DEFAULT_STEPS
    checkpoints = sorted({c for c in PASTICHE_CHECKPOINTS if c <= total} | {total})
    return total, checkpoints, math.gcd(*checkpoints)


def run_pastiche(exe: list[str], content: Path, style: Path, out_dir: Path, args: argparse.Namespace) -> dict:
    name = pair_id(content, style)
    output = out_dir / f"{name}_pastiche.png"
    workspace = out_dir / f"{name}_pastiche_steps"
    output.unlink(missing_ok=True)
    for stale in workspace_images(workspace).values():
        stale.unlink()
    total, checkpoints, step = pastiche_plan(args.pastiche_iterations)
    command = [*exe, "--content", str(content), "--styles", str(style), "--output", str(output),
               "--size", str(args.size), "--seed", "0", "--device", args.device,
               "--workspace", str(workspace), "--workspace-step", str(step)]
    if args.pastiche_iterations is not None:
        command += ["--num-steps", str(args.pastiche_iterations)]
    command += shlex.split(args.pastiche_args)
    logs = out_dir / f"{name}_pastiche.stdout.txt", out_dir / f"{name}_pastiche.stderr.txt"
    record = {"command": command, "output": str(output), "workspace": str(workspace),
              "stdout_log": str(logs[0]), "stderr_log": str(logs[1]), **run_child(command, *logs)}
    if record["returncode"] == 0:
        saved = workspace_images(workspace)
        record.update(pastiche_timing(logs[0], saved, record["wall_s"]))
        record["checkpoints"] = [{"iteration": c, "image": str(saved[c])} for c in checkpoints if c in saved]
        if record["iterations"] != total:
            print(f"  note: expected {total} pastiche iterations, saw {record['iterations']}", file=sys.stderr)
    return record


# ---------------------------------------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------------------------------------

def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


TABLE_COLUMNS = (("tool", None, "<"), ("pair", None, "<"), ("iters", "g", ">"), ("full-size iters", "g", ">"),
                 ("s/full-size iter", ".3f", ">"),
                 ("wall s", ".1f", ">"), ("peak RSS MiB", ".0f", ">"), ("content dist", ".4f", ">"),
                 ("style dist", ".4f", ">"), ("colour dist", ".3f", ">"), ("structure", ".3f", ">"))
TABLE_KEYS = ("iterations", "full_size_iterations", "s_per_iteration", "wall_s", "peak_rss_mib", "content_distance",
              "style_distance", "colour_distance", "structure_kept")


def results_table(runs: list[dict], tools: list[str]) -> str:
    rows = []
    for tool in tools:
        mine = [r for r in runs if r["tool"] == tool]
        for r in mine:
            if r["returncode"] != 0:
                rows.append([tool, r["pair_label"], f"failed (exit {r['returncode']})"]
                            + [""] * (len(TABLE_COLUMNS) - 3))
                continue
            rows.append([tool, r["pair_label"], *(_fmt(r.get(key), spec) for key, (_, spec, _) in
                                                  zip(TABLE_KEYS, TABLE_COLUMNS[2:], strict=True))])
        ok = [r for r in mine if r["returncode"] == 0]
        if ok:
            medians = [_median([r.get(key) for r in ok]) for key in TABLE_KEYS]
            rows.append([tool, f"median of {len(ok)}", *(_fmt(m, spec) for m, (_, spec, _) in
                                                           zip(medians, TABLE_COLUMNS[2:], strict=True))])
    return _render([c[0] for c in TABLE_COLUMNS], rows, [c[2] for c in TABLE_COLUMNS])


def checkpoint_table(runs: list[dict]) -> str:
    rows = []
    for r in runs:
        for point in r.get("checkpoints", []):
            if "content_distance" in point:
                rows.append([r["pair_label"], str(point["iteration"]), _fmt(point["content_distance"], ".4f"),
                             _fmt(point["style_distance"], ".4f"), _fmt(point.get("colour_distance"), ".3f"),
                             _fmt(point.get("structure_kept"), ".3f")])
    if not rows:
        return ""
    return _render(["pair", "pastiche iteration", "content dist", "style dist", "colour dist", "structure"], rows,
                   ["<", ">", ">", ">", ">", ">"])


def _render(header: list[str], rows: list[list[str]], align: list[str]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(format(h, f"{a}{w}") for h, w, a in zip(header, widths, align, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(format(str(x), f"{a}{w}") for x, w, a in zip(row, widths, align, strict=True))
              for row in rows]
    return "\n".join(lines)


#: The distances on which stylecraft must be no worse than pastiche (lower is better for each).
COMPARED = ("content", "style", "colour")


def summarise(runs: list[dict]) -> dict:
    """Wall-time ratio pastiche/stylecraft and whether stylecraft is at least as good on the content, style and
    colour distances (the structure kept is reported, not judged)."""
    by_pair: dict[str, dict[str, dict]] = {}
    for r in runs:
        if r["returncode"] == 0 and r.get("content_distance") is not None:
            by_pair.setdefault(r["pair"], {})[r["tool"]] = r
    both = {pair: tools for pair, tools in by_pair.items() if set(TOOLS) <= set(tools)}
    if not both:
        return {"pairs_compared": 0}
    per_pair = []
    keys = [f"{what}_distance" for what in COMPARED] + ["structure_kept"]
    for pair, tools in both.items():
        sc, pa = tools["stylecraft"], tools["pastiche"]
        per_pair.append({"pair": pair, "wall_ratio_pastiche_over_stylecraft": pa["wall_s"] / sc["wall_s"],
                         **{f"{what}_no_worse": sc[f"{what}_distance"] <= pa[f"{what}_distance"]
                            for what in COMPARED},
                         "stylecraft": {k: sc.get(k) for k in keys}, "pastiche": {k: pa.get(k) for k in keys}})
    for p in per_pair:
        p["at_least_as_good"] = all(p[f"{what}_no_worse"] for what in COMPARED)
    return {"pairs_compared": len(per_pair),
            "wall_ratio_pastiche_over_stylecraft": statistics.median(
                p["wall_ratio_pastiche_over_stylecraft"] for p in per_pair),
            "stylecraft_at_least_as_good_on_all": all(p["at_least_as_good"] for p in per_pair),
            "pairs_at_least_as_good": sum(p["at_least_as_good"] for p in per_pair),
            "per_pair": per_pair}


def summary_line(summary: dict) -> str:
    if not summary.get("pairs_compared"):
        return "summary: no pair has a successful run of both tools; nothing to compare"
    n = summary["pairs_compared"]
    ratios = ", ".join(f"{p['wall_ratio_pastiche_over_stylecraft']:.2f}" for p in summary["per_pair"])
    worse = []
    for p in summary["per_pair"]:
        bad = [what for what in COMPARED if not p[f"{what}_no_worse"]]
        if bad:
            worse.append(f"{p['pair']}: {' and '.join(bad)} worse")
    verdict = "yes" if summary["stylecraft_at_least_as_good_on_all"] else "no"
    text = (f"summary: wall time pastiche/stylecraft = {summary['wall_ratio_pastiche_over_stylecraft']:.2f}x "
            f"(median over {n} pair{'s' if n > 1 else ''}: {ratios}); stylecraft at least as good as pastiche's "
            f"final result on the content, style and colour distances: {verdict} "
            f"({summary['pairs_at_least_as_good']}/{n} pairs)")
    return text + (f" [{'; '.join(worse)}]" if worse else "")


def side_by_side(content: Path, style: Path, runs: list[dict], size: int, path: Path) -> None:
    """content | style | stylecraft | pastiche, captioned with the wall time and both distances."""
    side = max(256, min(size, 512))

    def fitted(picture: Path) -> Image.Image:
        image = images.load_image(picture)
        return image.resize(images.fit_long_side(*image.size, side), Image.Resampling.LANCZOS)

    cells = [report.Cell(fitted(content), "content"), report.Cell(fitted(style), "style")]
    for tool in TOOLS:
        run = next((r for r in runs if r["tool"] == tool), None)
        if run is None or run["returncode"] != 0 or not Path(run["output"]).exists():
            continue
        caption = f"{tool} {run['wall_s']:.0f} s"
        if run.get("content_distance") is not None:
            caption += f"  c {run['content_distance']:.3f}  s {run['style_distance']:.3f}"
        cells.append(report.Cell(fitted(Path(run["output"])), caption))
    title = f"{content.name} x {style.name}, {size} px (c, s: content and style distance, lower is closer)"
    images.save_image(report.contact_sheet([cells], title=title, cell_side=side), path)


# ---------------------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------------------

def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _cpuinfo() -> dict:
    info: dict = {"model": platform.processor() or None, "physical_cores": None}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    cores = set()
    physical = core = None
    for line in text.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and not info.get("model_from_cpuinfo"):
            info["model"] = info["model_from_cpuinfo"] = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
    info.pop("model_from_cpuinfo", None)
    info["physical_cores"] = len(cores) or None
    return info


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    return None


def _git() -> dict:
    def git(*words: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(REPO), *words], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no", "--", "src")
    return {"commit": git("rev-parse", "HEAD"), "src_modified": bool(status) if status is not None else None}


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s), for the tables: every figure names the CPU it ran on."""
    return _cpuinfo()["model"] or platform.machine()


def machine_metadata(device: str) -> dict:
    cpu = _cpuinfo()
    meta = {"hostname": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
            "cpu_model": cpu["model"], "logical_cores": os.cpu_count(), "physical_cores": cpu["physical_cores"],
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gib": _memory_gib(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "thread_env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
            "cuda_available": torch.cuda.is_available(), "device": device, "nice": os.nice(0),
            "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    if device.startswith("cuda") and torch.cuda.is_available():
        meta["gpu"] = torch.cuda.get_device_name(0)
    return meta


# ---------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------

def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="transfer_vs_pastiche.py", description=__doc__.split("\n\n")[0],
        epilog="Method, caveats and the results file: benchmarks/README.md")
    parser.add_argument("--quick", action="store_true",
                        help="quick mode: 256 px, 2 pairs (default: full mode, 512 px, 3 pairs)")
    parser.add_argument("--size", type=_positive, help="output long side in pixels for both tools "
                        "(default: 256 quick, 512 full)")
    parser.add_argument("--eval-size", type=_positive, help="long side at which the distances are computed "
                        "(default: --size)")
    parser.add_argument("--pairs", type=_positive, help=f"use the first N pairs (at most {len(PAIRS)}; "
                        "default: 2 quick, 3 full)")
    parser.add_argument("--pastiche-iterations", type=_positive,
                        help=f"pastiche --num-steps (default: not passed, pastiche's own {PASTICHE_DEFAULT_STEPS})")
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated tools to run (default: both)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        help="passed to both tools (default: cuda if this torch sees a GPU, else cpu)")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES,
                        help="folder with content/ and style/ (default: ../shared/images from the repo root, "
                        f"{DEFAULT_IMAGES})")
    parser.add_argument("--out-dir", type=Path, help="folder for the pictures, logs and histories "
                        "(default: benchmarks/results/<mode>/)")
    parser.add_argument("--json", type=Path, help="results file (default: "
                        "benchmarks/results/transfer-<mode>-<hostname>.json)")
    parser.add_argument("--stylecraft-args", default="", help="extra stylecraft transfer options, e.g. "
                        "--stylecraft-args=\"--iterations 5\" for a smoke test (default: none, stylecraft's defaults)")
    parser.add_argument("--pastiche-args", default="", help="extra pastiche options (default: none)")
    args = parser.parse_args(argv)
    args.mode = "quick" if args.quick else "full"
    args.size = args.size or MODES[args.mode]["size"]
    args.eval_size = args.eval_size or args.size
    args.pairs = args.pairs or MODES[args.mode]["pairs"]
    if args.pairs > len(PAIRS):
        parser.error(f"--pairs: at most {len(PAIRS)} pairs are defined")
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown or not args.tools:
        parser.error(f"--tools: choose from {','.join(TOOLS)} (got {unknown or 'nothing'})")
    args.tools = [t for t in TOOLS if t in args.tools]
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: this torch sees no CUDA GPU")
    args.out_dir = args.out_dir or RESULTS / args.mode
    args.json = args.json or RESULTS / f"transfer-{args.mode}-{socket.gethostname()}.json"
    for option in ("stylecraft_args", "pastiche_args"):
        try:
            shlex.split(getattr(args, option))
        except ValueError as exc:
            parser.error(f"--{option.replace('_', '-')}: {exc}")
    return args


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.images / "content").is_dir() or not (args.images / "style").is_dir():
        print(f"transfer_vs_pastiche: skipped: the benchmark images are not here ({args.images} needs content/ "
              "and style/ folders); nothing was run", file=sys.stderr)
        return 0
    pairs = []
    for content_name, style_name in PAIRS[: args.pairs]:
        content, style = args.images / "content" / content_name, args.images / "style" / style_name
        missing = [str(p) for p in (content, style) if not p.is_file()]
        if missing:
            print(f"transfer_vs_pastiche: skipping pair {content_name} x {style_name}: missing {', '.join(missing)}",
                  file=sys.stderr)
            continue
        pairs.append((content, style))
    if not pairs:
        print("transfer_vs_pastiche: skipped: none of the pairs' images is present; nothing was run", file=sys.stderr)
        return 0
    executables = {}
    for tool in args.tools:
        executables[tool] = find_tool(tool)
        if executables[tool] is None:
            hint = "pip install -r benchmarks/requirements.txt" if tool == "pastiche" else "pip install -e ."
            print(f"transfer_vs_pastiche: error: the `{tool}` command is not installed ({hint})", file=sys.stderr)
            return 2
    args.out_dir.mkdir(parents=True, exist_ok=True)

    started = datetime.datetime.now(datetime.timezone.utc)
    total, checkpoints, workspace_step = pastiche_plan(args.pastiche_iterations)
    data = {"benchmark": "transfer_vs_pastiche", "schema": 1, "mode": args.mode,
            "command_line": shlex.join([Path(sys.executable).name, *sys.argv]), "argv": sys.argv,
            "started": started.isoformat(timespec="seconds"), "finished": None,
            "settings": {"size": args.size, "eval_size": args.eval_size, "device": args.device,
                         "tools": args.tools, "pairs": [[str(c), str(s)] for c, s in pairs], "seed": 0,
                         "pastiche_iterations": total, "pastiche_checkpoints": checkpoints,
                         "pastiche_workspace_step": workspace_step, "stylecraft_args": args.stylecraft_args,
                         "pastiche_args": args.pastiche_args, "out_dir": str(args.out_dir),
                         "content_layer": quality.CONTENT_LAYER, "style_layers": list(quality.STYLE_LAYERS),
                         "executables": executables},
            "versions": {"stylecraft": _version("stylecraft"), "pastiche": _version("pastiche"),
                         "torch": torch.__version__, "numpy": _version("numpy"), "Pillow": _version("Pillow"),
                         "stylecraft_git": _git()},
            "machine": machine_metadata(args.device), "pairs": [], "runs": [], "summary": None}

    print(f"transfer_vs_pastiche: {args.mode} mode, {args.size} px, {len(pairs)} pair(s), tools "
          f"{', '.join(args.tools)}, device {args.device}; pictures in {args.out_dir}", file=sys.stderr)
    if os.nice(0) > 0:
        print(f"transfer_vs_pastiche: warning: running at nice {os.nice(0)}; on a busy machine the tools' "
              "multithreaded kernels then stall badly (seen: over 20x slower) and the timings mean little",
              file=sys.stderr)
    evaluator = Evaluator(args.eval_size)
    runners = {"stylecraft": run_stylecraft, "pastiche": run_pastiche}
    count, order = len(pairs) * len(args.tools), 0
    for content, style in pairs:
        label = f"{content.stem} x {style.stem}"
        pair_runs = []
        for tool in args.tools:
            order += 1
            print(f"[{order}/{count}] {tool}: {label} ...", file=sys.stderr, flush=True)
            load = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
            record = {"tool": tool, "pair": pair_id(content, style), "pair_label": label, "order": order,
                      "content": str(content), "style": str(style), "size": args.size, "load_average_before": load,
                      **runners[tool](executables[tool], content, style, args.out_dir, args)}
            if record["returncode"] == 0 and Path(record["output"]).exists():
                record["output_size"] = picture_size(Path(record["output"]))
                record.update(evaluator.distances(Path(record["output"]), content, style))
                for point in record.get("checkpoints", []):
                    point.update(evaluator.distances(Path(point["image"]), content, style))
                print(f"    {record['wall_s']:.1f} s, peak RSS {record['peak_rss_mib']:.0f} MiB, content "
                      f"{record['content_distance']:.4f}, style {record['style_distance']:.4f}", file=sys.stderr)
            else:
                record["ok"] = False
                record["stderr_tail"] = tail(Path(record["stderr_log"]))
                print(f"    FAILED (exit {record['returncode']}) after {record['wall_s']:.1f} s; "
                      f"see {record['stderr_log']}:\n{record['stderr_tail']}", file=sys.stderr)
            record.setdefault("ok", True)
            pair_runs.append(record)
            data["runs"].append(record)
            write_json(args.json, data)
        sheet = args.out_dir / f"{pair_id(content, style)}_side_by_side.png"
        side_by_side(content, style, pair_runs, args.size, sheet)
        data["pairs"].append({"pair": pair_id(content, style), "content": str(content), "style": str(style),
                              "side_by_side": str(sheet), "reference": evaluator.references(content, style)})

    data["summary"] = summarise(data["runs"])
    data["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    write_json(args.json, data)

    print()
    print(f"stylecraft vs pastiche: {args.size} px output, distances at {args.eval_size} px, device {args.device}, "
          f"{data['machine']['cpu_model']} ({data['machine']['usable_cores']} usable cores)")
    print(results_table(data["runs"], args.tools))
    points = checkpoint_table(data["runs"])
    if points:
        print()
        print(points)
    print()
    if len(args.tools) < 2:
        print(f"summary: only {args.tools[0]} ran; nothing to compare")
    else:
        print(summary_line(data["summary"]))
    print(f"results: {args.json}")
    print(f"pictures: {args.out_dir}")
    return 0 if all(r["ok"] for r in data["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
