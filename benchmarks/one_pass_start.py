"""Does the optimiser reach the draft's quality in fewer iterations when it starts from the one-pass picture?

For each pair (a photo of ../shared/images/content, a painting of ../shared/images/style) the draft preset runs
from its default start (the photo in the painting's palette) for its full iterations, and from the one-pass
picture (``--init one-pass``) for a share of them; every picture is scored with ``stylecraft score``. A start
"reaches the draft" at the fewest iterations whose style and colour distances are each within 5 % of the
default draft's and whose structure kept is no lower than the draft's minus 0.02. Times include the one pass.

    python benchmarks/one_pass_start.py [--pairs chicago.jpg:candy.jpg,...] [--shares 0.25,0.5,1] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from builtin_styles import SHARED, at_size
from transfer_vs_pastiche import cpu_model

from stylecraft import api
from stylecraft.optimize import PRESETS

DEFAULT_PAIRS = "chicago.jpg:candy.jpg,sailboat.jpg:the_resevoir_at_poitiers.jpg,avril.jpg:sketch.png"


def reaches(found: dict[str, float], draft: dict[str, float]) -> bool:
    return (found["style_distance"] <= 1.05 * draft["style_distance"]
            and found["colour_distance"] <= 1.05 * draft["colour_distance"]
            and found["structure_kept"] >= draft["structure_kept"] - 0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default=DEFAULT_PAIRS, help="photo:painting,... (default: three pairs)")
    parser.add_argument("--shares", default="0.25,0.5,1", help="shares of the draft's iterations to try")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not (SHARED / "images").is_dir():
        print("one_pass_start: ../shared/images is needed", file=sys.stderr)
        return 2
    iterations = PRESETS["draft"]["iterations"]
    shares = [float(s) for s in args.shares.split(",")]
    work = Path(tempfile.mkdtemp())
    rows = []
    for pair in args.pairs.split(","):
        photo_name, painting_name = pair.split(":")
        photo = at_size(SHARED / "images" / "content" / photo_name, 512, work)
        painting = SHARED / "images" / "style" / painting_name
        row: dict[str, object] = {"photo": photo_name, "painting": painting_name}
        began = time.perf_counter()
        default = api.run("transfer", photo, [painting], preset="draft", seed=0)
        row["draft"] = {"iterations": iterations, "seconds": time.perf_counter() - began,
                        **default.settings["quality"]}
        for share in shares:
            count = max(1, round(iterations * share))
            began = time.perf_counter()
            found = api.run("transfer", photo, [painting], preset="draft", seed=0, init="one-pass",
                            iterations=count)
            row[f"one-pass {count}"] = {"iterations": count, "seconds": time.perf_counter() - began,
                                        **found.settings["quality"]}
        draft = row["draft"]
        assert isinstance(draft, dict)
        first = [v for k, v in row.items() if k.startswith("one-pass") and isinstance(v, dict) and reaches(v, draft)]
        row["reaches_draft_at"] = first[0]["iterations"] if first else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| photo | painting | start | iterations | seconds | style | colour | structure |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, dict):
                print(f"| {row['photo']} | {row['painting']} | {key.split()[0]} | {value['iterations']} | "
                      f"{value['seconds']:.1f} | {value['style_distance']:.3f} | {value['colour_distance']:.3f} | "
                      f"{value['structure_kept']:.2f} |")
    summary = {"cpu": cpu_model(), "reaches_draft_at": [r["reaches_draft_at"] for r in rows]}
    print(f"\nreaches the draft at: {summary['reaches_draft_at']} of {iterations} iterations ({summary['cpu']})")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
