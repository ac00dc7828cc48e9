"""The feature network: VGG with named layers (vgg.py) and its weights (weights.py)."""

from .vgg import POOLINGS, VGG, canonical_layer, downsampling, layer_names
from .weights import FORMATS, WeightSet, find_weights, from_state_dict, load_safely, load_weights

__all__ = ["FORMATS", "POOLINGS", "VGG", "WeightSet", "canonical_layer", "downsampling", "find_weights",
           "from_state_dict", "layer_names", "load_safely", "load_weights"]
