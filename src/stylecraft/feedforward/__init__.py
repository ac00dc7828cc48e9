"""Real-time style networks (Johnson et al. 2016): the network, its training, its model file, applying it."""

from . import distributed
from .apply import apply
from .export import to_onnx
from .model import StyleModel, load_model, save_model
from .net import WIDTHS, TransformerNet
from .runtimes import PRECISIONS, RuntimeNet, onnx_session, openvino_session
from .train import PhotoFolder, TrainConfig, TrainProgress, TrainResult, train

__all__ = ["PRECISIONS", "WIDTHS", "PhotoFolder", "RuntimeNet", "StyleModel", "TrainConfig", "TrainProgress",
           "TrainResult", "TransformerNet", "apply", "distributed", "load_model", "onnx_session", "openvino_session",
           "save_model", "to_onnx", "train"]
