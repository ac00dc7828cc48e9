"""Checks of settings, written once: choices, numbers, weights, and ``replace`` for frozen settings.

Messages name the Python parameter in backquotes (`style_weight`); the CLI and the studio translate such
names into their own words (``--style-weight``, a form field) where they print.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any, TypeVar

from .errors import ConfigError, one_line, shorten

S = TypeVar("S")

#: The range of every numeric setting, by its parameter name, both ends included: wide enough for any real use,
#: narrow enough that no value overflows a computation, allocates without end or runs for days. Every check of
#: a bounded number reads it here (:func:`within`), for the CLI, the API and the studio alike. Sides and tiles are
#: pixels (65,536 is the studio's largest side too; the pixel limit, ``choices.MAX_PIXELS``, applies to the
#: picture as well); a one-pass painter's tiles (``one_pass_tile``, checked as ``tile``) are larger than the
#: optimiser's, since each repeats a halo of about 70 px in every pass; ``max_memory`` is GiB; a video's
#: ``start`` and ``duration`` are seconds (1e7: four months); weights of loss terms are float32 numbers (a loss they
#: overflow at run time stops the run with its last good picture, exit 1).
BOUNDS: dict[str, tuple[float, float]] = {
    "size": (1, 65536), "style_size": (1, 65536), "width": (1, 65536), "height": (1, 65536),
    "min_size": (1, 65536), "tile": (16, 65536), "one_pass_tile": (128, 65536),
    "iterations": (1, 100_000), "scale_iterations": (1, 100_000), "scales": (1, 32),
    "style_scale": (0.01, 16.0), "lr": (1e-6, 1e3), "max_memory": (0.001, 1e6),
    "content_weight": (0.0, 3e38), "style_weight": (0.0, 3e38), "tv_weight": (0.0, 3e38),
    "color_weight": (0.0, 3e38), "seed": (0, 2**63 - 1), "batch_size": (1, 1024),
    "frame_iterations": (1, 100_000), "fps": (0.01, 1000.0), "start": (0.0, 1e7), "duration": (0.001, 1e7),
    "save_every": (1, 100_000), "cell_side": (16, 4096), "steps": (1, 10_000_000),
    "checkpoint_every": (1, 10_000_000), "sample_every": (1, 10_000_000),
}


def within(name: str, value: float | None, bounds: str | None = None) -> None:
    """ConfigError unless ``value`` (when given) lies in ``BOUNDS[bounds or name]``: refuses NaN, infinities and
    numbers too large for any float alike (compared, never converted)."""
    if value is None:
        return
    low, high = BOUNDS[bounds or name]
    if not low <= value <= high:  # False for NaN too
        raise ConfigError(f"`{name}` must be {low:g} to {high:g} (got {shorten(str(value), 40)})")


def choice(name: str, value: object, choices: Sequence[object]) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"`{name}`: {value!r} is not one of {', '.join(map(str, choices))}")


def non_negative(name: str, value: float) -> None:
    """ConfigError unless ``value`` is a finite number >= 0."""
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"`{name}` must be a finite number >= 0 (got {value})")


def positive(name: str, value: float) -> None:
    """ConfigError unless ``value`` is a finite number > 0."""
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"`{name}` must be a finite number > 0 (got {value})")


def blend(parts: Sequence[tuple[str, str]], what: str) -> list[float]:
    """The shares, summing to 1, of a blend's parts given as (name, weight text) pairs (``name:0.7``; an empty
    text weighs 1): the one parser of blend weights, for built-in styles and paintings alike. A weight that is
    not a finite number >= 0, or weights all 0, are a ConfigError naming ``what`` (and the part)."""
    values = []
    for name, text in parts:
        try:
            value = float(text) if text else 1.0
        except ValueError:
            value = math.nan
        if not 0 <= value < math.inf:  # False for NaN too
            raise ConfigError(f"{what}, {name}: the weight must be a number >= 0 (got {shorten(text, 40)!r})")
        values.append(value)
    if max(values, default=0.0) <= 0:
        raise ConfigError(f"{what}: at least one weight must be greater than 0")
    return normalised(values, len(values))


def at_least(name: str, value: int | None, low: int, what: str = "") -> None:
    """ConfigError if ``value`` (when given) is below ``low``."""
    if value is not None and value < low:
        raise ConfigError(f"`{name}` must be at least {low}{what} (got {value})")


def weights(name: str, values: Sequence[float] | None, count: int) -> None:
    """Relative weights: one per item, finite, >= 0, not all 0 (None: equal weights). The one check of every
    blend (styles, paintings, layers); :func:`normalised` then gives their shares."""
    if values is None:
        return
    if len(values) != count:
        raise ConfigError(f"`{name}`: {len(values)} weights for {count} items")
    for value in values:
        non_negative(name, value)
    if max(values, default=0.0) <= 0:
        raise ConfigError(f"`{name}`: at least one weight must be greater than 0")


def normalised(values: Sequence[float] | None, count: int) -> list[float]:
    """Relative weights (checked by :func:`weights`) as shares summing to 1 (equal shares when None). They are
    divided by the largest first, so that neither huge weights (1e308 twice overflows their sum) nor tiny ones
    (1e-320, whose reciprocal overflows) lose their proportions."""
    chosen = list(values) if values is not None else [1.0] * count
    top = max(chosen, default=1.0)
    scaled = [v / top for v in chosen]
    total = sum(scaled)
    return [v / total for v in scaled]


def replace(settings: S, **changes: Any) -> S:
    """A copy of the frozen dataclass ``settings`` with ``changes`` (lists become tuples, paths strings);
    unknown names are a ConfigError that lists the valid ones."""
    names = {f.name for f in dataclasses.fields(settings)}  # type: ignore[arg-type]
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; valid options: {', '.join(sorted(names))}")
    cleaned = {k: tuple(v) if isinstance(v, list) else os.fspath(v) if isinstance(v, os.PathLike) else v
               for k, v in changes.items()}
    return dataclasses.replace(settings, **cleaned)  # type: ignore[type-var]


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """The optional package ``module``, imported; a ConfigError (exit 2) naming the extra to install when it is
    missing or cannot be imported. Every optional import of stylecraft goes through here."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name == module.split(".")[0]
        found = "is not installed" if missing else f"cannot be imported ({one_line(exc, 120)})"
        raise ConfigError(f'{purpose} needs {module}, which {found}: pip install "stylecraft[{extra}]"') from None
