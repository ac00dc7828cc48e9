#!/usr/bin/env python3
"""Benchmark: how far the optimiser's picture moves when the photo moves by one grey level, the spread
against which a change's quality numbers (``optimiser_speed.py``'s bar) are read.

An optimisation of a few hundred L-BFGS steps is chaotic: the order of floating-point sums, or a photo that
differs by one grey level on some of its values, sends it down another path to an equally good picture. This
script measures that spread. Per pair and per precision it runs the transfer on the photo itself and on
``--jitters`` copies of it, each with one grey level added to or taken from a random tenth of its values (a
little less: a value at 0 or 255 stays in range; lossless PNG, a different random draw each; a photo larger
than the run's size is shrunk first, so the optimiser sees less than one grey level), and scores every picture
against the original photo and the painting with ``stylecraft score``'s numbers. It reports, per precision,
how far the copies' numbers move from the photo's, and how many copies stay within the bar that
``optimiser_speed.py`` applies to a change (content, style and colour distances within 3 %, structure within
0.02); and, from the second precision on, how far its photo run is from the first precision's (the change
``optimiser_speed.py`` measures for bf16) and how far the means over the photo's and the copies' runs are (the
same change, part of the optimiser's own spread averaged away).

    python benchmarks/optimiser_spread.py                          # standard, 512 px, six pairs, fp32 and bf16
    python benchmarks/optimiser_spread.py --only 2 --jitters 4     # sailboat x candy, four copies
    python benchmarks/optimiser_spread.py --precisions fp32        # fp32 alone
    python benchmarks/optimiser_spread.py --report benchmarks/results/optimiser-spread-standard-512-vm.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

import numpy as np
from optimiser_speed import (
    DISTANCE_TOLERANCE,
    DISTANCES,
    STRUCTURE_TOLERANCE,
    chosen_pairs,
    common_options,
    quality_changes,
    run_transfer,
    settle,
)
from PIL import Image
from transfer_vs_pastiche import REPO, Evaluator, _git, machine_metadata, write_json

from stylecraft import images

#: Share of the photo's values moved by one grey level in a jittered copy.
JITTERED_SHARE = 0.1
NUMBERS = (*DISTANCES, "structure_kept")
#: The --precision values compared ("auto" is left out: it resolves to one of these).
MEASURED = ("fp32", "bf16")


def jittered(photo: Path, seed: int, folder: Path) -> Path:
    """A lossless copy of ``photo`` with one grey level added or taken on a random ``JITTERED_SHARE`` of its
    values (seeded, so a rerun makes the same copy). Values already at 0 or 255 stay put where the step would
    leave the range, so slightly fewer than that share move."""
    rng = np.random.default_rng(seed)
    values = np.asarray(images.load_image(photo).convert("RGB"), dtype=np.int16)
    step = (rng.random(values.shape) < JITTERED_SHARE) * rng.choice(np.array([-1, 1], dtype=np.int16), values.shape)
    copy = folder / f"{photo.stem}-jitter{seed}.png"
    images.save_image(Image.fromarray(np.clip(values + step, 0, 255).astype(np.uint8)), copy)
    return copy


def spread(reference: dict, copies: list[dict]) -> dict:
    """The copies against the photo's run: each number's largest change (relative for the distances,
    absolute for structure) and how many copies stay within the bar."""
    changes = [quality_changes(reference, copy) for copy in copies]
    found = {f"largest_{name}_change": max((c[f"{name}_change"] for c in changes), key=abs)
             for name in (*DISTANCES, "structure")}
    found["within_bar"] = sum(c["quality_kept"] for c in changes)
    found["copies"] = len(copies)
    return found


def means(result: dict) -> dict:
    """Each number's mean over the photo's run and its copies' runs: one precision's picture, less the
    optimiser's own spread."""
    runs = [result["photo"], *result["copies"]]
    return {name: statistics.mean(run[name] for run in runs) for name in NUMBERS}


def moves(changes: dict) -> str:
    return (", ".join(f"{name[:-9]} {changes[f'{name}_change']:+.1%}" for name in DISTANCES)
            + f", structure {changes['structure_change']:+.3f}")


def table(pairs: list[dict]) -> str:
    head = ["pair", "precision", "photo: content / style / colour / structure", "copies: largest content",
            "style", "colour", "structure", "copies within the bar", "photo against first precision",
            "means against first precision"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for pair in pairs:
        for precision, result in pair["precisions"].items():
            s, photo = result["spread"], result["photo"]
            against = [moves(result[key]) if key in result else "" for key in ("against_first", "means_against_first")]
            cells = [pair["label"], precision, " / ".join(f"{photo[k]:.3f}" for k in NUMBERS),
                     *(f"{s[f'largest_{n}_change']:+.1%}" for n in DISTANCES),
                     f"{s['largest_structure_change']:+.3f}", f"{s['within_bar']} of {s['copies']}", *against]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="optimiser_spread.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jitters", type=int, default=2, help="jittered copies of each photo (default 2)")
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="comma-separated --precision values, the first the one the others are read "
                        "against (default fp32,bf16)")
    parser.add_argument("--report", type=Path, metavar="JSON", help="run nothing: print an earlier results "
                        "file's table, its comparisons recomputed")
    parser.add_argument("--rewrite", action="store_true", help="with --report: write the recomputed "
                        "comparisons back into the file")
    common_options(parser, "optimiser-spread")
    args = parser.parse_args(argv)
    if args.report:
        given = [f"--{name}" for name in ("jitters", "precisions", "only", "preset", "size", "args")
                 if getattr(args, name) != parser.get_default(name)]
        if given:
            parser.error(f"--report prints what a results file holds; {', '.join(given)} would not apply")
        if not args.report.is_file():
            parser.error(f"--report: no file {args.report}")
    elif args.rewrite:
        parser.error("--rewrite goes with --report")
    if args.jitters < 1:
        parser.error("--jitters: at least 1")
    args.precision_list = args.precisions.split(",")
    unknown = [p for p in args.precision_list if p not in MEASURED]
    if unknown:
        parser.error(f"--precisions: {', '.join(unknown)} is not one of {', '.join(MEASURED)}")
    if len(set(args.precision_list)) < len(args.precision_list):
        parser.error(f"--precisions: each at most once, not {args.precisions!r}")
    settle(parser, args, "optimiser-spread")
    return args


def summarise(data: dict) -> None:
    """Fill in ``data``'s comparisons from its runs: each precision's spread, the later precisions against
    the first (photo's run and means), and the summary over pairs."""
    precisions = data["settings"]["precisions"]
    for pair in data["pairs"]:
        first = pair["precisions"][precisions[0]]
        for precision in precisions:
            result = pair["precisions"][precision]
            result["spread"] = spread(result["photo"], result["copies"])
            if precision != precisions[0]:
                result["against_first"] = quality_changes(first["photo"], result["photo"])
                result["means_against_first"] = quality_changes(means(first), means(result))

    def count(precision: str, key: str) -> int:
        return sum(pair["precisions"][precision][key]["quality_kept"] for pair in data["pairs"])

    data["summary"] = {
        "copies_within_bar": {p: sum(pair["precisions"][p]["spread"]["within_bar"] for pair in data["pairs"])
                              for p in precisions},
        "copies_per_precision": len(data["pairs"]) * data["settings"]["jitters"],
        "photo_within_bar_of_first": {p: count(p, "against_first") for p in precisions[1:]},
        "means_within_bar_of_first": {p: count(p, "means_against_first") for p in precisions[1:]},
        "median_largest_colour_change": {
            p: statistics.median(abs(pair["precisions"][p]["spread"]["largest_colour_distance_change"])
                                 for pair in data["pairs"]) for p in precisions}}


def report(data: dict) -> None:
    """Print ``data``'s table and summary lines."""
    settings, summary, machine = data["settings"], data["summary"], data["machine"]
    precisions, pairs = settings["precisions"], len(data["pairs"])
    unfinished = "" if pairs == len(settings["pairs"]) else f" ({pairs} of {len(settings['pairs'])} pairs run)"
    print(f"{settings['preset']} preset, {settings['size']} px, photo and {settings['jitters']} copies moved by one "
          f"grey level on {settings['jittered_share']:.0%} of the values; {machine['cpu_model']}, "
          f"{machine['usable_cores']} cores{unfinished}")
    print(table(data["pairs"]))
    print("\ncopies within the bar (distances within "
          f"{DISTANCE_TOLERANCE:.0%}, structure within {STRUCTURE_TOLERANCE} of the photo's run): "
          + ", ".join(f"{p} {n} of {summary['copies_per_precision']}"
                      for p, n in summary["copies_within_bar"].items()))
    print("median over pairs of the copies' largest colour move: " + ", ".join(
        f"{p} {move:.1%}" for p, move in summary["median_largest_colour_change"].items()))
    for p in precisions[1:]:
        print(f"{p} against {precisions[0]}, pairs within the bar: the photo's run "
              f"{summary['photo_within_bar_of_first'][p]} of {pairs}, the means of the photo's and the copies' "
              f"runs {summary['means_within_bar_of_first'][p]} of {pairs}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        data = json.loads(args.report.read_text())
        summarise(data)
        if args.rewrite:
            write_json(args.report, data)
        report(data)
        return 0
    pairs = chosen_pairs(args, "optimiser_spread")
    if pairs is None:
        return 0
    evaluator = Evaluator(None)  # type: ignore[arg-type]  # None: `stylecraft score`'s own evaluation size
    data = {"benchmark": "optimiser_spread", "started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "settings": {"preset": args.preset, "size": args.size, "jitters": args.jitters,
                         "jittered_share": JITTERED_SHARE, "precisions": args.precision_list, "seed": args.seed,
                         "args": args.args, "pairs": args.chosen},
            "git": _git(), "machine": machine_metadata("cpu"), "pairs": []}
    for index, (content, style) in enumerate(pairs):
        photos = [content, *(jittered(content, seed, args.out_dir) for seed in range(1, args.jitters + 1))]
        pair: dict = {"label": f"{content.stem} x {style.stem}", "precisions": {}}
        for precision in args.precision_list:
            runs = []
            for photo in photos:
                print(f"[{index + 1}/{len(pairs)}] {precision}: {photo.name} x {style.name} ...", file=sys.stderr,
                      flush=True)
                run = run_transfer(precision, REPO / "src", photo, style, args, f"--precision {precision}")
                if run["returncode"] != 0:
                    print(f"optimiser_spread: {precision} failed on {photo.name} x {style.name}:\n"
                          f"{run['stderr_tail']}", file=sys.stderr)
                    return 1
                runs.append({**run, **evaluator.distances(Path(run["output"]), content, style)})
            pair["precisions"][precision] = {"photo": runs[0], "copies": runs[1:]}
        data["pairs"].append(pair)
        write_json(args.json, data)
    summarise(data)
    write_json(args.json, data)
    report(data)
    print(f"results: {args.json}\npictures: {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
