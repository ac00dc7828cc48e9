"""One exception hierarchy for stylecraft; the CLI maps each class to an exit code.

Exit codes: 2 for bad input or usage (the user can fix the command), 1 for a failure at run time.
"""

from __future__ import annotations


class StylecraftError(Exception):
    """Base class: a problem stylecraft can explain in one line."""

    exit_code = 1


class UsageError(StylecraftError):
    """Bad input: a file, a value or a combination of options the user can fix."""

    exit_code = 2


class ImageError(UsageError):
    """An image cannot be read, is too large or too small, or an output image cannot be written."""


class WeightsError(UsageError):
    """Network weights are missing, of an unknown format, or do not match the network."""


class ConfigError(UsageError):
    """An option has a value outside its valid range or names something unknown."""


class RunError(StylecraftError):
    """A run failed after it started (out of memory, a device error)."""


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to at most ``limit`` characters, so that an error never echoes a huge input back."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (or its type's name), at most ``limit`` characters."""
    text = str(exc).strip()
    return shorten(text.splitlines()[0] if text else type(exc).__name__, limit)
