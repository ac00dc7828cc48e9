"""stylecraft: neural style transfer for PyTorch.

Public API (re-exports only; nothing here reads files or probes devices at import time)::

    import stylecraft
    picture = stylecraft.transfer("photo.jpg", "painting.jpg", size=512)
    picture.save("out.png")

The names are loaded on first use (the list is in ``__init__.pyi``, read by ``lazy_loader``), so that the
command line's ``--help`` and its usage errors answer without loading torch; the subpackages (``api``,
``images``, ...) are there on first use too.
"""

import importlib.util

import lazy_loader

__getattr__, __dir__, _names = lazy_loader.attach_stub(__name__, __file__)
#: What ``from stylecraft import *`` gives: the API, not the subpackages and modules the stub lists as well.
__all__ = [name for name in _names if importlib.util.find_spec(f"{__name__}.{name}") is None]
