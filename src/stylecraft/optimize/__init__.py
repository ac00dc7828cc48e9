"""Optimisation-based style transfer: what to compute (``settings``), the scales (``schedule``) and the loop
(``loop``). Names are loaded on first use (the list is in ``__init__.pyi``), so that the settings and their
defaults are read without loading torch."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
