"""The feature network: VGG with named layers (vgg.py), its weights (weights.py), and which one a run uses
(network.py)."""

from .network import FeatureNetwork
from .vgg import POOLINGS, VGG, canonical_layer, downsampling, layer_names
from .weights import FORMATS, WeightSet, find_weights, from_state_dict, load_weights

__all__ = ["FORMATS", "POOLINGS", "VGG", "FeatureNetwork", "WeightSet", "canonical_layer", "downsampling",
           "find_weights", "from_state_dict", "layer_names", "load_weights"]
