"""Any painting in one pass (Li et al. 2017's universal style transfer): decoders that invert VGG-19's features,
trained on photos alone (decoders.py, train.py), the painting's statistics taken by whitening and colouring or
AdaIN (transforms.py), the cascade over levels in exact tiles (paint.py), the decoders' file (model.py). Names are
loaded on first use (the list is in ``__init__.pyi``), so that the settings are read without loading torch."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
