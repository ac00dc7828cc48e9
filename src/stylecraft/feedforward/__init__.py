"""Real-time style networks (Johnson et al. 2016): the network, its training, its model file, applying it."""

from . import distributed, styles
from .apply import TILE, apply
from .data import PHOTO_TYPES, PhotoFolder, find_photos
from .export import to_onnx
from .loaded import Network, RuntimeNet, StyleModel
from .model import load_model, save_model
from .net import WIDTHS, TransformerNet
from .runtimes import PRECISIONS, onnx_session, openvino_session
from .train import TrainConfig, TrainProgress, TrainResult, train

__all__ = ["PHOTO_TYPES", "PRECISIONS", "TILE", "WIDTHS", "Network", "PhotoFolder", "RuntimeNet", "StyleModel",
           "TrainConfig", "TrainProgress", "TrainResult", "TransformerNet", "apply", "distributed", "find_photos",
           "load_model", "onnx_session", "openvino_session", "save_model", "styles", "to_onnx", "train"]
