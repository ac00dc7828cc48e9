"""stylecraft: neural style transfer for PyTorch.

Public API (re-exports only; nothing here reads files or probes devices at import time)::

    import stylecraft
    picture = stylecraft.transfer("photo.jpg", "painting.jpg", size=512)
    picture.save("out.png")

The names are loaded on first use (the list is in ``__init__.pyi``, read by ``lazy_loader``), so that the
command line's ``--help`` and its usage errors answer without loading torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
