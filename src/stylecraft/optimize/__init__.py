"""Optimisation-based style transfer: what to compute (``settings``), the scales (``schedule``) and the loop
(``loop``)."""

from .loop import Callback, Progress, Result, Temporal, build_objective, synthesise
from .schedule import schedule, soft_warning, style_canvas
from .settings import DEFAULT_LR, INITS, MODES, OPTIMIZERS, PRESETS, SCALE_SPLIT, Mode, TransferConfig

__all__ = ["DEFAULT_LR", "INITS", "MODES", "OPTIMIZERS", "PRESETS", "SCALE_SPLIT", "Callback", "Mode", "Progress",
           "Result", "Temporal", "TransferConfig", "build_objective", "schedule", "soft_warning", "style_canvas",
           "synthesise"]
