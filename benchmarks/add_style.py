"""Adding a style to a trained network (its scales and shifts alone) against training a network for it.

Dumoulin, Shlens and Kudlur (2017) report that a new style added to a trained network of many styles, by
training only its instance-normalisation scales and shifts, converges much faster than a network trained
for that style from scratch. This measures it on stylecraft's built-in network: the same painting, photos,
steps, crop size, batch and seed for both runs,

* **added**: ``train --add-to`` the built-in network (the shared convolutions frozen; 2 x 64 numbers per
  normalisation layer are trained),
* **scratch**: ``train`` a full-width single-style network from random weights,

then prints the training losses along the way (the mean over a window of steps) and scores both networks'
pictures of every ``../shared/images/content`` photo with ``stylecraft score`` against the painting. Run it
alone: seconds per step are printed too.

    python benchmarks/add_style.py [--style ../shared/images/style/mosaic.jpg] [--steps 200] [--size 128]
                                   [--batch-size 2] [--precision fp32] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
from pathlib import Path

from transfer_vs_pastiche import cpu_model

from stylecraft import api, images
from stylecraft.feedforward.styles import builtin_file

SHARED = Path(__file__).resolve().parents[2] / "shared"
WINDOW = 20


def windows(history: list[dict[str, float]], key: str, every: int) -> list[float]:
    """The mean of ``key`` over the ``WINDOW`` steps ending at each multiple of ``every``."""
    return [statistics.mean(h[key] for h in history[end - WINDOW:end])
            for end in range(every, len(history) + 1, every)]


def scores(model: Path, style: str | None, painting: Path, size: int) -> dict[str, float]:
    """The mean of each score over the content photos painted by ``model`` at ``size`` px."""
    loaded = api.load_style_model(model, style=style, device="cpu")
    found: dict[str, list[float]] = {}
    for photo in sorted((SHARED / "images" / "content").glob("*.jpg")):
        source = images.to_pil(images.resize_long_side(images.to_tensor(images.load_image(photo)), size))
        for key, value in api.score(api.apply_model(loaded, source), source, painting).as_dict().items():
            found.setdefault(key, []).append(value)
    return {key: statistics.mean(values) for key, values in found.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", type=Path, default=SHARED / "images" / "style" / "mosaic.jpg")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--score-size", type=int, default=256)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (SHARED / "train").is_dir() or not args.style.exists():
        print("add_style: ../shared/train and the style painting are needed", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp())
    common = {"steps": args.steps, "size": args.size, "batch_size": args.batch_size, "sample_every": 10 * args.steps,
              "checkpoint_every": args.steps, "device": "cpu", "precision": args.precision, "seed": 0}
    runs = {"added": {"add_to": builtin_file(), "names": ["new"]}, "scratch": {}}
    found: dict[str, dict[str, object]] = {}
    for name, extra in runs.items():
        output = work / f"{name}.pt"
        result = api.train_network(args.style, SHARED / "train", output, **common, **extra)  # type: ignore[arg-type]
        seconds = [b["elapsed"] - a["elapsed"] for a, b in itertools.pairwise(result.history)]
        every = max(WINDOW, args.steps // 5)
        found[name] = {"style_loss": windows(result.history, "style", every),
                       "content_loss": windows(result.history, "content", every),
                       "seconds_per_step": statistics.median(seconds),
                       "scores": scores(output, "new" if "add_to" in extra else None, args.style, args.score_size)}
        print(json.dumps({name: found[name]}), flush=True)
    every = max(WINDOW, args.steps // 5)
    print(f"\n{args.style.name}: {args.steps} steps at {args.size} px, batch {args.batch_size}, {args.precision} "
          f"({cpu_model()}); losses: the mean of {WINDOW} steps ending at each step shown")
    print(f"{'run':8} " + " ".join(f"{f'style@{s}':>10}" for s in range(every, args.steps + 1, every))
          + f" {'s/step':>7} {'style d':>8} {'colour d':>8} {'content d':>9} {'structure':>9}")
    for name, row in found.items():
        numbers = row["scores"]
        assert isinstance(numbers, dict) and isinstance(row["style_loss"], list)
        print(f"{name:8} " + " ".join(f"{v:>10.3f}" for v in row["style_loss"]) + f" {row['seconds_per_step']:>7.2f}"
              f" {numbers['style_distance']:>8.3f} {numbers['colour_distance']:>8.3f}"
              f" {numbers['content_distance']:>9.3f} {numbers['structure_kept']:>9.3f}")
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "settings": vars(args) | {"style": str(args.style)},
                                         "runs": found}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
