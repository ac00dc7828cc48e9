"""Measure a decoders file (or a training checkpoint) on held-out photos and install it as the built-in set.

    python tools/build_decoders.py devdata/run/decoders.pt --command "stylecraft train-decoders ..."
    python tools/build_decoders.py built-in.pt --add relu5_1.pt --command "..."   # a level trained on its own joins

Held-out reconstruction: every photo of ../shared/images/content (never trained on) at 512 px, each level's PSNR
and relative feature error. The table goes into the card and is printed as Markdown; the file is written
float16 to src/stylecraft/universal/builtin/decoders.pt (at most 15 MB).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from stylecraft import images, universal
from stylecraft.runtime import Runtime, cpu_name

HELD_OUT = Path(__file__).resolve().parents[1].parent / "shared" / "images" / "content"
LIMIT = 15 * 2**20


def held_out(size: int) -> list[torch.Tensor]:
    """The held-out photos at ``size`` px (long side), cropped to a multiple of 16."""
    photos = []
    for path in sorted(HELD_OUT.glob("*.jpg")):
        tensor = images.resize_long_side(images.to_tensor(images.load_image(path)), size)
        height, width = tensor.shape[-2:]
        photos.append(tensor[..., :height - height % 16, :width - width % 16])
    return photos


def merged(base: universal.Decoders, card: dict[str, Any], extra: list[str]) -> universal.Decoders:
    """``base`` with the levels of each ``extra`` decoders file added (a level in both: the extra file's), each
    extra file's card kept under the card's "added"."""
    if not extra:
        return base
    state = dict(base.state_dict())
    levels = set(base.levels)
    card["added"] = []
    for path in extra:
        more, more_card = universal.load_decoders(path)
        if more.width != base.width:
            sys.exit(f"{path}: width {more.width}, the set's is {base.width}")
        state.update(more.state_dict())
        levels |= set(more.levels)
        card["added"].append({"levels": more.levels, "steps": more_card.get("steps"), "file": Path(path).name})
    return universal.Decoders.from_record({"levels": sorted(levels), "width": base.width}, state)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("decoders", help="a decoders file or checkpoint (OUTPUT.ckpt)")
    parser.add_argument("--command", required=True, help="the command(s) that trained it, for the card")
    parser.add_argument("--add", action="append", default=[],
                        help="another decoders file or checkpoint whose levels join the set (repeatable)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("-o", "--output", default=str(universal.builtin_file()))
    args = parser.parse_args()
    if not HELD_OUT.is_dir():
        sys.exit(f"no held-out photos at {HELD_OUT}")
    decoders, card = universal.load_decoders(args.decoders)
    decoders = merged(decoders, card, args.add)
    runtime = Runtime(torch.device("cpu"), "fp32")
    vgg = universal.model.encoder_for(decoders, runtime.device)
    table = universal.train.evaluate(decoders, vgg, held_out(args.size), runtime)
    card = {**card, "command": args.command, "held_out": {"photos": str(HELD_OUT.relative_to(HELD_OUT.parents[2])),
                                                          "size": args.size, "levels": table},
            "measured_on": cpu_name()}
    universal.save_decoders(decoders, args.output, card)
    print("| level | PSNR dB | feature error |\n| --- | --- | --- |")
    for level, row in table.items():
        print(f"| {level} | {row['psnr']:.2f} | {row['feature']:.3f} |")
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output}: {size / 2**20:.2f} MB, {card.get('steps')} steps")
    return 0 if size <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
