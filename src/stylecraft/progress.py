"""What every long operation (a transfer, a grid, training, a video) shares with whoever watches it: a stop
signal it checks between units of work, and progress events of one shape.

The signal is data, not an exception: a ``threading.Event`` (or anything with ``is_set()``) passed as
``stop=``; when it is set, the operation ends after the unit under way and returns what it has done so far,
its ``stopped`` reason "cancelled". Each operation's events (``optimize.Progress``,
``feedforward.TrainProgress``, :class:`Count` for a video) have the fields of :class:`Event`, so that one
progress display (the CLI's bar, the studio's page) shows any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

#: The ``stopped`` reason of an operation ended by its stop signal.
CANCELLED = "cancelled"


class Stop(Protocol):
    """A stop signal: ``threading.Event`` or anything with ``is_set()``."""

    def is_set(self) -> bool:
        """Whether the operation should end after the unit of work under way."""
        ...


def requested(stop: Stop | None) -> bool:
    """Whether ``stop`` (None: never) has been set."""
    return stop is not None and stop.is_set()


class Event(Protocol):
    """What every progress event has: ``step`` units done of ``total`` (None: not known in advance),
    ``elapsed`` seconds, the ``losses`` of the latest unit (empty where there are none) and ``notes()``, the
    operation's own state as text (a scale, photos skipped), which a display shows beside them and redraws at
    once when it changes; so notes change seldom, never every step as a rate does."""

    @property
    def step(self) -> int: ...

    @property
    def total(self) -> int | None: ...

    @property
    def elapsed(self) -> float: ...

    @property
    def losses(self) -> dict[str, float]: ...

    def notes(self) -> dict[str, str]:
        """The operation's own state, as text for a display."""
        ...


@dataclass(frozen=True)
class Count:
    """The progress of an operation that counts units and has no losses: a video's frames, a folder's
    pictures."""

    step: int
    total: int | None
    elapsed: float
    losses: dict[str, float] = field(default_factory=dict)

    def notes(self) -> dict[str, str]:
        """Nothing beyond the count."""
        return {}
