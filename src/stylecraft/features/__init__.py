"""The feature network: layer names (layers.py), VGG with named layers (vgg.py), its weights (weights.py), and
which one a run uses (network.py). Names are loaded on first use (the list is in ``__init__.pyi``), so that
choosing a network does not load torch."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
