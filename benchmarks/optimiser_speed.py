#!/usr/bin/env python3
"""Benchmark: the optimiser of this tree against an earlier commit's, on the same pairs, interleaved.

Each run is a child process, ``python -m stylecraft transfer CONTENT STYLE --quality PRESET --seed S``, with
``PYTHONPATH`` set to one version's ``src``: the baseline's is exported from git (``git archive``, default
commit c990529, the code before issue 25) into the out dir, and the new one is this tree's. The two alternate
pair by pair, and which goes first alternates too (baseline-new, new-baseline, ...), so that both meet the
same machine load. Per run it records the wall time from process start to exit, the optimisation's own time
(from ``--history``), and the quality numbers of ``stylecraft score`` (``stylecraft.quality``, computed here
by this tree for both pictures). Per pair it checks the issue's bar: time at most ``--target`` of the
baseline's, content, style and colour distances within 3 % and structure within 0.02 of the baseline's; and
it writes a side-by-side sheet (content | style | baseline | new) to look at.

    python benchmarks/optimiser_speed.py                          # standard preset, 512 px, six pairs
    python benchmarks/optimiser_speed.py --preset draft           # 384 px
    python benchmarks/optimiser_speed.py --preset fine            # 1024 px
    python benchmarks/optimiser_speed.py --only 2,6               # these pairs only (numbered from 1)
    python benchmarks/optimiser_speed.py --baseline HEAD --baseline-args="--precision fp32"   # one knob, A/B
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import shlex
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

from PIL import Image
from transfer_vs_pastiche import (
    DEFAULT_IMAGES,
    REPO,
    RESULTS,
    Evaluator,
    _git,
    machine_metadata,
    run_child,
    stylecraft_timing,
    write_json,
)

from stylecraft import images, report
from stylecraft.optimize import PRESETS, TransferConfig

#: The six photo x painting pairs of benchmarks/palette.py, in the order they run.
PAIRS = (("chicago.jpg", "the_resevoir_at_poitiers.jpg"), ("sailboat.jpg", "candy.jpg"),
         ("avril.jpg", "contrast_of_forms.jpg"), ("amber.jpg", "asheville.jpg"), ("flowers.jpg", "mosaic.jpg"),
         ("avril.jpg", "sketch.png"))
BASELINE = "c990529"
VERSIONS = ("baseline", "new")
#: The issue's bar: each distance within this fraction of the baseline's, structure within this much.
DISTANCES, DISTANCE_TOLERANCE, STRUCTURE_TOLERANCE = ("content_distance", "style_distance",
                                                      "colour_distance"), 0.03, 0.02


def export_baseline(revision: str, folder: Path) -> Path:
    """``revision``'s ``src`` exported into ``folder`` (once; git archive leaves the repository untouched)."""
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", f"{revision}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    target = folder / f"baseline-{commit[:12]}"
    if not (target / "src" / "stylecraft" / "__init__.py").is_file():
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
                                 capture_output=True, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(target, filter="data")
    return target / "src"


def run_transfer(version: str, source: Path, content: Path, style: Path, args: argparse.Namespace,
                 extra: str) -> dict:
    """One transfer by the code in ``source``, with ``args``' preset, size, seed and ``--args`` plus ``extra``,
    in its own process; its times and files (named after the pair and ``version``)."""
    name = f"{content.stem}__{style.stem}_{version}"
    output, history = args.out_dir / f"{name}.png", args.out_dir / f"{name}_history.json"
    for stale in (output, history):
        stale.unlink(missing_ok=True)
    command = [sys.executable, "-m", "stylecraft", "transfer", str(content), str(style), "-o", str(output),
               "--quality", args.preset, "--size", str(args.size), "--seed", str(args.seed), "--history", str(history),
               "--quiet", "--device", "cpu", *shlex.split(args.args), *shlex.split(extra)]
    logs = args.out_dir / f"{name}.stdout.txt", args.out_dir / f"{name}.stderr.txt"
    environment = {**os.environ, "PYTHONPATH": str(source)}
    record = {"version": version, "source": str(source), "command": command, "output": str(output),
              **run_child(command, *logs, env=environment)}
    if record["returncode"] == 0:
        timing = stylecraft_timing(history)
        settings = timing.pop("settings") or {}
        record.update(optimisation_s=timing.get("optimisation_s"), iterations=timing.get("iterations"),
                      precision=settings.get("precision"))
    else:
        record["stderr_tail"] = logs[1].read_text(errors="replace")[-2000:]
    return record


def cpu_seconds(run: dict) -> float:
    """The child's CPU time, user and system: on a machine shared with other work, a steadier measure of the
    work done than wall time (with one thread, ``OMP_NUM_THREADS=1``, it leaves out waiting for a core)."""
    return float(run["user_cpu_s"] + run["system_cpu_s"])


def quality_changes(baseline: dict, new: dict) -> dict:
    """Each distance's relative change from ``baseline``'s numbers to ``new``'s, structure's change, and
    whether all are within the issue's bar (``quality_kept``)."""
    found = {f"{name}_change": new[name] / baseline[name] - 1 for name in DISTANCES}
    found["structure_change"] = new["structure_kept"] - baseline["structure_kept"]
    found["quality_kept"] = (all(abs(found[f"{n}_change"]) <= DISTANCE_TOLERANCE for n in DISTANCES)
                             and abs(found["structure_change"]) <= STRUCTURE_TOLERANCE)
    return found


def compare(baseline: dict, new: dict, target: float) -> dict:
    """The new run against the baseline's: time ratios, the quality changes, and whether the pair meets the
    bar."""
    found = {"wall_ratio": new["wall_s"] / baseline["wall_s"],
             "cpu_ratio": cpu_seconds(new) / cpu_seconds(baseline)}
    if baseline.get("optimisation_s") and new.get("optimisation_s"):
        found["optimisation_ratio"] = new["optimisation_s"] / baseline["optimisation_s"]
    found.update(quality_changes(baseline, new))
    found["fast_enough"] = found["wall_ratio"] <= target
    return found


def side_by_side(content: Path, style: Path, runs: dict[str, dict], path: Path, title: str) -> None:
    """content | style | baseline | new, captioned with the time and the numbers."""
    side = 512

    def fitted(picture: Path) -> Image.Image:
        image = images.load_image(picture)
        return image.resize(images.fit_long_side(*image.size, side), Image.Resampling.LANCZOS)

    cells = [report.Cell(fitted(content), "content"), report.Cell(fitted(style), "style")]
    for version, run in runs.items():
        cells.append(report.Cell(fitted(Path(run["output"])),
                                 f"{version} {run['wall_s']:.0f} s  c {run['content_distance']:.3f}  "
                                 f"s {run['style_distance']:.3f}  col {run['colour_distance']:.3f}  "
                                 f"st {run['structure_kept']:.3f}"))
    images.save_image(report.contact_sheet([cells], title=title, cell_side=side), path)


def table(pairs: list[dict]) -> str:
    head = ["pair", "baseline s", "new s", "ratio", "CPU s ratio", "content b / n", "style b / n", "colour b / n",
            "structure b / n", "bar"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for pair in pairs:
        b, n, c = pair["runs"]["baseline"], pair["runs"]["new"], pair["comparison"]
        numbers = [f"{b[k]:.3f} / {n[k]:.3f}" for k in (*DISTANCES, "structure_kept")]
        bar = "met" if c["quality_kept"] and c["fast_enough"] else \
            ", ".join(w for w, ok in (("slow", c["fast_enough"]), ("quality", c["quality_kept"])) if not ok)
        times = [f"{b['wall_s']:.1f}", f"{n['wall_s']:.1f}", f"{c['wall_ratio']:.2f}", f"{c['cpu_ratio']:.2f}"]
        lines.append("| " + " | ".join([pair["label"], *times, *numbers, bar]) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="optimiser_speed.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=len(PAIRS), help=f"the first N pairs (default {len(PAIRS)})")
    parser.add_argument("--baseline", default=BASELINE, help=f"git revision of the baseline (default {BASELINE})")
    parser.add_argument("--baseline-args", default="", help="extra transfer options for the baseline only")
    parser.add_argument("--new-args", default="", help="extra transfer options for the new code only")
    parser.add_argument("--target", type=float, default=0.5, help="the bar on new / baseline wall time "
                        "(default 0.5)")
    common_options(parser, "optimiser-speed", "pictures, logs and the exported baseline")
    args = parser.parse_args(argv)
    if not 1 <= args.pairs <= len(PAIRS):
        parser.error(f"--pairs: 1 to {len(PAIRS)}")
    settle(parser, args, "optimiser-speed")
    return args


def common_options(parser: argparse.ArgumentParser, name: str, outputs: str = "pictures and logs") -> None:
    """The options of every benchmark that runs transfers on the six pairs: preset, size, ``--only``, seed,
    extra transfer options, pictures, and where the results go (``name``-preset-size; ``outputs`` says what
    the out dir holds)."""
    parser.add_argument("--preset", choices=tuple(PRESETS), default="standard",
                        help="stylecraft's --quality (default standard)")
    parser.add_argument("--size", type=int, help="output long side (default: the preset's)")
    parser.add_argument("--only", help="these pairs, by number from 1, e.g. \"2,3\"")
    parser.add_argument("--seed", type=int, default=0, help="the transfers' --seed (default 0; it matters only "
                        "where a run starts from noise, e.g. --args=\"--init noise\")")
    parser.add_argument("--args", default="", help="extra transfer options for every run, e.g. \"--iterations 20\"")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="folder with content/ and style/ "
                        f"(default {DEFAULT_IMAGES})")
    parser.add_argument("--out-dir", type=Path, help=f"{outputs} (default benchmarks/results/{name}-"
                        "<preset>-<size>/)")
    parser.add_argument("--json", type=Path, help=f"results file (default benchmarks/results/{name}-<preset>-"
                        "<size>-<hostname>.json)")


def settle(parser: argparse.ArgumentParser, args: argparse.Namespace, name: str) -> None:
    """Fill in ``args``' size (the preset's), chosen pair numbers (``--only``, else the first ``--pairs``),
    out dir and results file (``name``-preset-size); a bad ``--only`` is a usage error."""
    args.size = args.size or PRESETS[args.preset].get("size", TransferConfig().size)
    try:
        args.chosen = ([int(n) for n in args.only.split(",")] if args.only
                       else list(range(1, getattr(args, "pairs", len(PAIRS)) + 1)))
    except ValueError:
        parser.error(f"--only: numbers from 1 to {len(PAIRS)}, comma-separated, not {args.only!r}")
    if not all(1 <= n <= len(PAIRS) for n in args.chosen):
        parser.error(f"--only: numbers from 1 to {len(PAIRS)}")
    tag = f"{name}-{args.preset}-{args.size}"
    args.out_dir = args.out_dir or RESULTS / tag
    args.json = args.json or RESULTS / f"{tag}-{os.uname().nodename}.json"


def chosen_pairs(args: argparse.Namespace, prog: str) -> list[tuple[Path, Path]] | None:
    """The chosen pairs' (photo, painting) paths, with the out dir made; None, having said so, where a
    picture is missing (no ../shared/images)."""
    pairs = [(args.images / "content" / c, args.images / "style" / s) for c, s in (PAIRS[n - 1] for n in args.chosen)]
    missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
    if missing:
        print(f"{prog}: skipped: missing {', '.join(missing)}; nothing was run", file=sys.stderr)
        return None
    args.out_dir.mkdir(parents=True, exist_ok=True)
    return pairs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pairs = chosen_pairs(args, "optimiser_speed")
    if pairs is None:
        return 0
    sources = {"baseline": export_baseline(args.baseline, args.out_dir), "new": REPO / "src"}
    evaluator = Evaluator(None)  # type: ignore[arg-type]  # None: `stylecraft score`'s own evaluation size
    data = {"benchmark": "optimiser_speed", "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "settings": {"preset": args.preset, "size": args.size, "baseline": args.baseline, "args": args.args,
                         "baseline_args": args.baseline_args, "new_args": args.new_args, "target": args.target,
                         "pairs": args.chosen, "seed": args.seed, "sources": {k: str(v) for k, v in sources.items()}},
            "git": _git(), "machine": machine_metadata("cpu"), "pairs": []}
    for index, (content, style) in enumerate(pairs):
        label = f"{content.stem} x {style.stem}"
        order = VERSIONS if index % 2 == 0 else VERSIONS[::-1]
        runs = {}
        for version in order:
            print(f"[{index + 1}/{len(pairs)}] {version}: {label} ...", file=sys.stderr, flush=True)
            extra = args.baseline_args if version == "baseline" else args.new_args
            runs[version] = run_transfer(version, sources[version], content, style, args, extra)
            if runs[version]["returncode"] != 0:
                print(f"optimiser_speed: {version} failed on {label}:\n{runs[version]['stderr_tail']}",
                      file=sys.stderr)
                return 1
            runs[version].update(evaluator.distances(Path(runs[version]["output"]), content, style))
        pair = {"label": label, "order": list(order), "runs": {v: runs[v] for v in VERSIONS},
                "comparison": compare(runs["baseline"], runs["new"], args.target)}
        sheet = args.out_dir / f"{content.stem}__{style.stem}_side_by_side.png"
        side_by_side(content, style, pair["runs"], sheet,
                     f"{label}, {args.preset} {args.size} px: baseline {args.baseline} | new")
        pair["side_by_side"] = str(sheet)
        data["pairs"].append(pair)
        write_json(args.json, data)
    ratios = [p["comparison"]["wall_ratio"] for p in data["pairs"]]
    total = (sum(p["runs"]["new"]["wall_s"] for p in data["pairs"])
             / sum(p["runs"]["baseline"]["wall_s"] for p in data["pairs"]))
    met = all(p["comparison"]["quality_kept"] and p["comparison"]["fast_enough"] for p in data["pairs"])
    cpu = statistics.median(p["comparison"]["cpu_ratio"] for p in data["pairs"])
    data["summary"] = {"median_wall_ratio": statistics.median(ratios), "total_wall_ratio": total,
                       "median_cpu_ratio": cpu, "bar_met": met}
    write_json(args.json, data)
    print(f"{args.preset} preset, {args.size} px, baseline {args.baseline} against this tree; "
          f"{data['machine']['cpu_model']}, {data['machine']['usable_cores']} cores")
    print(table(data["pairs"]))
    print(f"\nnew / baseline wall time: median {statistics.median(ratios):.2f}, total {total:.2f} (CPU time: "
          f"median {cpu:.2f}); bar (time <= "
          f"{args.target:g}x, distances within {DISTANCE_TOLERANCE:.0%}, structure within {STRUCTURE_TOLERANCE}): "
          f"{'met on every pair' if met else 'not met'}")
    print(f"results: {args.json}\npictures: {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
