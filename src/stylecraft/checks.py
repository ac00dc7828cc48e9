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

from .errors import ConfigError, one_line

S = TypeVar("S")


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


def mix_weight(text: str, what: str) -> float:
    """The weight of one part of a blend (``name:0.7``): ``text`` as a number >= 0, or 1 when empty; a
    ConfigError that names ``what`` otherwise."""
    try:
        value = float(text) if text else 1.0
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what}: the weight must be a number >= 0 (got {text!r})")
    return value


def at_least(name: str, value: int | None, low: int, what: str = "") -> None:
    """ConfigError if ``value`` (when given) is below ``low``."""
    if value is not None and value < low:
        raise ConfigError(f"`{name}` must be at least {low}{what} (got {value})")


def weights(name: str, values: Sequence[float] | None, count: int) -> None:
    """Relative weights: one per item, finite, >= 0, not all 0 (None: equal weights)."""
    if values is None:
        return
    if len(values) != count:
        raise ConfigError(f"`{name}`: {len(values)} weights for {count} items")
    for value in values:
        non_negative(name, value)
    if sum(values) <= 0:
        raise ConfigError(f"`{name}`: at least one weight must be greater than 0")


def normalised(values: Sequence[float] | None, count: int) -> list[float]:
    """Relative weights divided by their sum (equal weights when None)."""
    chosen = list(values) if values is not None else [1.0] * count
    total = sum(chosen)
    return [v / total for v in chosen]


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
