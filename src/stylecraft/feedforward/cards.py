"""The built-in styles' cards as JSON beside their network (``builtin/styles.json``), so that listing the styles
reads no network and loads no torch. ``tools/build_styles.py`` writes both files together."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any


def cards_file() -> Path:
    """Where the built-in styles' cards are installed."""
    return Path(str(resources.files(__package__) / "builtin" / "styles.json"))


def builtin_cards() -> list[dict[str, Any]] | None:
    """The built-in styles' cards, in the network's order; None where this installation has no cards file."""
    path = cards_file()
    if not path.is_file():
        return None
    cards: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))
    return cards


def write_cards(cards: list[dict[str, Any]]) -> None:
    """Write the cards file beside the built-in network."""
    cards_file().write_text(json.dumps(cards, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
