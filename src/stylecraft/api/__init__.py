"""The Python API: paths or PIL images in, PIL images out. The CLI and the web studio are built on it, and it
is the one place where inputs are validated.

``transfer`` holds the optimisation front (:func:`run`, :func:`transfer`, :func:`reconstruct`,
:func:`texture`); ``realtime`` the real-time networks (train, load, export, apply); ``video`` paints videos
with them. Names are loaded on first use (the list is in ``__init__.pyi``), so that the version and the
settings' names are read without loading torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
