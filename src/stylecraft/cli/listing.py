"""``stylecraft styles`` without torch: the built-in styles listed from their cards file. A network file, a
sheet, or an installation without the cards file go to ``commands.run_styles``, which loads the network."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..feedforward.cards import builtin_cards


def list_builtin(args: argparse.Namespace) -> int | None:
    """List the built-in styles from their cards; None when the command needs the network itself."""
    if args.sheet or args.output or args.model:
        return None
    found = builtin_cards()
    return None if found is None else print_styles(found, args.json)


def print_styles(found: list[dict[str, Any]], as_json: bool) -> int:
    """One line a style (name, title, artist, year), or the cards as JSON."""
    if as_json:
        print(json.dumps(found, indent=1))
        return 0
    width = max(len(record["name"]) for record in found)
    for record in found:
        made = ", ".join(str(record[k]) for k in ("title", "artist", "year") if record.get(k))
        print(f"{record['name']:<{width}}  {made}".rstrip())
    return 0
