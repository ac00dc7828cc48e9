"""Every picture the README and the docs show exists, and all of them together stay small enough to ship."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Markdown images, ![alt](path), and HTML ones, <img src="path">.
PICTURE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img[^>]*\ssrc=\"([^\"]+)\"")


def _pictures(page: Path) -> list[Path]:
    found = [a or b for a, b in PICTURE.findall(page.read_text(encoding="utf-8"))]
    return [page.parent / link for link in found if "://" not in link]


def test_every_picture_shown_exists() -> None:
    missing = [f"{page.name}: {picture}" for page in PAGES for picture in _pictures(page) if not picture.is_file()]
    assert missing == []


def test_the_readme_opens_with_pictures_and_shows_at_least_six() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.index("![") < readme.index("## Install")
    assert len(_pictures(ROOT / "README.md")) >= 6


def test_the_pictures_are_webp_or_jpeg_and_at_most_8_mb_in_all() -> None:
    pictures = [p for p in (ROOT / "docs" / "pictures").iterdir() if p.suffix != ".md" and p.name != "timings.json"]
    assert {p.suffix for p in pictures} <= {".jpg", ".webp"}
    assert sum(p.stat().st_size for p in pictures) <= 8 * 1024 * 1024
