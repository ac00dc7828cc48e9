"""The batch engines by name: this process (:class:`~stylecraft.api.batch.LocalEngine`), or a Ray cluster
(:mod:`stylecraft.api.ray_engine`, imported only when asked for, since only it imports ray)."""

from __future__ import annotations

from .. import checks
from ..choices import ENGINES
from ..errors import ConfigError
from .batch import Engine, LocalEngine


def engine_for(name: str, address: str | None = None, workers: int | None = None,
               gpus_per_worker: float = 0.0) -> Engine:
    """The engine called ``name``: "local" (this process) or "ray" (a Ray cluster at ``address``: "auto" joins
    the running one, None starts one on this machine; ``workers`` actors or tasks at once, each with
    ``gpus_per_worker`` GPUs)."""
    checks.choice("engine", name, ENGINES)
    if name == "local":
        if address is not None or workers is not None or gpus_per_worker:
            raise ConfigError("`address`, `workers` and `gpus_per_worker` go with `engine` ray")
        return LocalEngine()
    checks.require("ray", "ray", "`engine` ray")
    from .ray_engine import RayEngine

    return RayEngine(address, workers, gpus_per_worker)
