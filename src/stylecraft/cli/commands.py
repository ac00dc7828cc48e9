"""The ``stylecraft`` command's commands: each takes the parsed options, calls the Python API and reports
how it went (a progress bar, one line at the end); the exit code is its return value."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
import webbrowser
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from .. import api, checks, files, images, report
from ..api.batch import INTERRUPTED, BatchSettings
from ..api.engines import engine_for
from ..api.sweep import Axis
from ..errors import ConfigError, ImageError, UsageError, shorten
from ..features import FeatureNetwork, layer_names
from ..feedforward import TrainConfig
from ..optimize import INITS, SCALE_SPLIT, Progress, Result, TransferConfig
from ..progress import Count, Event
from ..quality import DISTANCES, STRUCTURE, Quality
from ..runtime import resolve_device
from ..studio.config import StudioConfig
from ..universal.settings import DecoderConfig, PaintConfig
from .listing import print_styles
from .parser import Parser, add_run_options, build_parser, command_parser, in_cli_words, names

TRAIN_FIELDS = {f.name for f in fields(TrainConfig)}
RUN_FIELDS = {f.name for f in fields(TransferConfig)} | {f.name for f in fields(FeatureNetwork)} | {
    "device", "precision", "max_memory", "preset"}


def studio_config(args: argparse.Namespace) -> StudioConfig:
    """The studio's settings from ``serve``'s options (the config refuses what it cannot honour)."""
    return StudioConfig(data=Path(args.data), db=Path(args.db) if args.db else None,
                        models=Path(args.models) if args.models else None, token=args.token,
                        # on a cluster each worker finds its own device
                        device=str(resolve_device(args.device)) if args.engine == "local" else args.device,
                        host=args.host, engine=args.engine, address=args.address, workers=args.workers,
                        gpus_per_worker=args.gpus_per_worker,
                        max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels, max_queue=args.max_queue,
                        max_video_mb=args.max_video_mb, max_video_seconds=args.max_video_seconds,
                        max_video_pixels=args.max_video_pixels,
                        max_storage_mb=args.max_storage_mb, keep_uploads_hours=args.keep_uploads_hours,
                        certfile=Path(args.certfile) if args.certfile else None,
                        keyfile=Path(args.keyfile) if args.keyfile else None,
                        live_backend=args.live_backend, max_live=args.max_live)


def run_serve(args: argparse.Namespace) -> int:
    """``serve``, and ``live``: the same studio, its live page opened in the browser (or its link printed)."""
    for module in ("fastapi", "uvicorn", "python_multipart"):
        checks.require(module, "studio", "the studio")
    if args.command == "live":
        checks.require("websockets", "studio", "the live camera")
    if args.engine == "ray":
        checks.require("ray", "ray", "`engine` ray")
    from ..studio.app import check_ready, serve

    config = studio_config(args)
    listening = check_ready(config, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    page = "live" if args.command == "live" else ""
    link = f"{config.scheme}://{shown}:{listening.getsockname()[1]}/{page}" + (
        f"?token={quote(args.token, safe='')}" if args.token else "")
    where = config.device if config.engine == "local" else f"a Ray cluster ({config.address or 'started here'})"
    _say(args, f"stylecraft studio on {where}: open {link}  (data: {config.data}; models: "
         f"{config.models_folder}; Ctrl-C stops)")
    if page and not args.no_browser:
        threading.Timer(1.0, webbrowser.open, [link]).start()  # once the server listens
    serve(config, listening, log_level="warning" if args.quiet else "info")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ..feedforward.distributed import from_environment

    args.quiet = args.quiet or not from_environment().main  # under torchrun, rank 0 speaks for all
    if args.teacher_weight is not None and args.teacher is None:
        raise UsageError("--teacher-weight goes with --teacher (a trained network to learn from)")
    output = files.check_writable(args.output, [*args.style, args.sample, args.resume, args.add_to, args.init,
                                                args.teacher])
    options = {k: v for k, v in vars(args).items() if k in TRAIN_FIELDS and v is not None}
    config = TrainConfig().replace(**options)
    network = FeatureNetwork(model=args.model, weights=args.weights)
    samples = Path(args.samples) if args.samples else output.with_name(output.stem + "_samples")
    # The samples' folder may be there from the run a --resume continues: then its files must be writable.
    files.check_writable(samples / "step_000000.png" if samples.is_dir() else samples)
    with _ProgressBar("train", "step", args) as bar:
        result = api.train_network(args.style, args.data, output, config=config, network=network,
                                   device=args.device, precision=args.precision, sample=args.sample,
                                   resume=args.resume, names=args.names, add_to=args.add_to, init=args.init,
                                   teacher=args.teacher,
                                   callbacks=[report.TrainSamples(samples, config.sample_every), bar])
    where = f"{output} ({result.steps} steps, {result.skipped} unreadable photos skipped)"
    return _finish(args, result.stopped, where, "network")


#: `train-decoders`' options, by their parameter names.
DECODER_FIELDS = frozenset(f.name for f in fields(DecoderConfig))


def run_train_decoders(args: argparse.Namespace) -> int:
    options = {k: v for k, v in vars(args).items() if k in DECODER_FIELDS and v is not None}
    with _ProgressBar("train-decoders", "step", args) as bar:
        result = api.train_decoders(args.data, args.output, device=args.device, precision=args.precision,
                                    resume=args.resume, init=args.init, callbacks=[bar], **options)
    return _finish(args, result.stopped, f"{args.output} ({result.steps} steps)", "decoders")


def run_export(args: argparse.Namespace) -> int:
    api.export_model(args.model, args.output, style=args.style)
    _say(args, f"wrote {args.output}")
    return 0


def run_apply(args: argparse.Namespace) -> int:
    from ..photos import find_photos  # loads torch: not for --help

    if not api.is_painting(args.model):
        given = [name for name in ONE_PASS_OPTIONS if name != "palette" and getattr(args, name) is not None]
        if given:
            flag = "mask" if given[0] == "masks" else given[0].replace("_", "-")
            raise UsageError(f"--{flag} goes with a painting (a picture file), not a network")
    sources: list[Path] = []
    for item in map(Path, args.inputs):
        if item.is_dir():
            sources += find_photos(item)
        else:
            sources.append(item)
    if not sources:
        raise UsageError("no images found in the inputs")
    output = Path(args.output)
    single = len(sources) == 1 and not output.is_dir() and output.suffix
    if single:
        targets = [images.check_output_path(output, sources)]
    else:
        files.make_folder(output)
        targets = [images.check_output_path(output / (s.stem + ".png"), sources) for s in sources]
    model = _one_pass(args) if api.is_painting(args.model) else api.load_style_model(
        args.model, backend=args.backend, device=args.device, precision=args.precision, style=args.style)
    destination = dict(zip(sources, targets, strict=True))
    painted = api.apply_many(model, sources, batch_size=args.batch_size, size=args.size,
                             preserve_color=args.preserve_color, tile=args.tile, palette=args.palette)
    failed: list[str] = []
    began = time.perf_counter()
    with _ProgressBar("apply", "image", args, shown=len(sources) > 1) as bar:
        for done, (source, picture) in enumerate(painted, start=1):
            bar(Count(done, len(sources), time.perf_counter() - began))
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


#: `apply`'s options for a painting, by their parameter names: PaintConfig's, then the masks and decoders.
PAINT_OPTIONS = ("strength", "strengths", "style_size", "levels", "transform", "palette")
ONE_PASS_OPTIONS = (*PAINT_OPTIONS, "masks", "decoders")


def _one_pass(args: argparse.Namespace) -> api.OnePass:
    """`apply`'s paintings, checked and with their statistics taken."""
    if args.backend not in ("auto", "torch") or args.style is not None:
        raise UsageError("a painting runs with the torch backend and takes no --style")
    changes = {name: getattr(args, name) for name in PAINT_OPTIONS if getattr(args, name) is not None}
    return api.load_one_pass(args.model, masks=args.masks, config=PaintConfig().replace(**changes),
                             decoders=args.decoders, device=args.device, precision=args.precision)


def run_batch(args: argparse.Namespace) -> int:
    settings = BatchSettings(model=args.model, style=args.style, preset=args.preset, size=args.size,
                             preserve_color=args.preserve_color, iterations=args.iterations, seed=args.seed,
                             batch_size=args.batch_size, tile=args.tile, device=args.device,
                             precision=args.precision)
    settings.validate()
    engine = engine_for(args.engine, args.address, args.workers, args.gpus_per_worker)

    def on_start(todo: int, skipped: int) -> None:
        if skipped:
            _say(args, f"{skipped} picture(s) done before, skipped (--force paints them again)")

    def on_warning(message: str) -> None:
        print(f"stylecraft: warning: {message}", file=sys.stderr)

    with _ProgressBar("batch", "picture", args) as bar:
        result = api.paint_batch(args.inputs, args.output, settings, engine=engine, force=args.force,
                                 callbacks=[bar], on_start=on_start, on_warning=on_warning)
    summary = f"painted {len(result.painted)} picture(s) into {args.output} in {result.seconds:.1f} s"
    if result.skipped:
        summary += f", {len(result.skipped)} skipped (done before with these settings)"
    if result.failed:
        first = result.failed[0]
        summary = (f"{len(result.failed)} picture(s) failed ({first.error}"
                   f"{f'; and {len(result.failed) - 1} more' if len(result.failed) > 1 else ''}; each is in "
                   f"{result.manifest}); {summary}")
    if result.stopped is not None:
        left = f"; {result.left} picture(s) left: the same command goes on"
        if result.stopped == INTERRUPTED:
            print(f"stylecraft: interrupted; {summary}{left}", file=sys.stderr)
            return 130
        print(f"stylecraft: error: {result.stopped}; {summary}{left}", file=sys.stderr)
        return 1
    if result.failed:
        print(f"stylecraft: error: {summary}", file=sys.stderr)
        return 1
    _say(args, f"{summary}; manifest: {result.manifest}")
    return 0


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of an optimisation run that the command line set: settings, network, device, precision,
    and ``--init`` as a start image by name or a picture of one's own."""
    chosen = {k: v for k, v in vars(args).items() if k in RUN_FIELDS and v is not None}
    if chosen.get("init") is not None and chosen["init"] not in INITS:
        chosen["init_image"] = chosen.pop("init")
    return chosen


class _ProgressBar:
    """The one progress bar of every long command: a callback for any progress event
    (:class:`stylecraft.progress.Event`) that shows the count, the main loss terms and the operation's notes.

    The bar opens at the first event, so that a run refused while loading (a bad weight file, say) prints its
    error alone. Its figures are refreshed every 10 steps, at the last one, at least every second (reading an
    optimiser's losses waits for the device, so not every step) and whenever the notes change, drawn at once
    then (an optimiser's new scale must show: a print's largest scales take minutes an iteration), and at the last
    step.
    ``--quiet`` (or ``shown`` False) shows nothing.
    """

    #: The loss terms shown, by the names the bar gives them: losses, not the quality numbers printed at the end.
    LOSSES = {"total": "loss", "content": "content loss", "style": "style loss", "tv": "tv loss"}

    def __init__(self, description: str, unit: str, args: argparse.Namespace, shown: bool = True) -> None:
        self.description, self.unit, self.shown = description, unit, shown and not args.quiet
        self.bar: Any = None  # a tqdm bar (tqdm is imported at the first event)
        self._notes: dict[str, str] | None = None
        self._when = -math.inf

    def __enter__(self) -> _ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, event: Event) -> None:
        if not self.shown:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(desc=self.description, unit=self.unit, dynamic_ncols=True, leave=False)
        self.bar.total = event.total
        notes, now = event.notes(), time.monotonic()
        changed = notes != self._notes
        if event.step % 10 == 0 or event.step == event.total or changed or now - self._when >= 1.0:
            self._notes, self._when = notes, now
            losses = event.losses
            self.bar.set_postfix({**{shown: f"{losses[k]:.3g}" for k, shown in self.LOSSES.items() if k in losses},
                                  **notes}, refresh=False)
        self.bar.update(event.step - self.bar.n)
        if changed or event.step == event.total:  # drawn now, not when tqdm's rate limit next allows
            self.bar.refresh()

    def restart(self, description: str) -> None:
        """Close the bar; the next event opens a new one under ``description`` (a grid's next cell)."""
        self.close()
        self.description, self._notes = description, None

    def close(self) -> None:
        """Take the bar off the terminal."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_video(args: argparse.Namespace) -> int:
    optimiser = {name: getattr(args, name) for name in ("iterations", "style_weight", "seed")
                 if getattr(args, name) is not None}
    if args.styles:
        optimiser["frame_iterations"] = args.frame_iterations
    elif optimiser:
        raise UsageError(f"--{next(iter(optimiser)).replace('_', '-')} goes with --style, not --model")
    with _ProgressBar("video", "frame", args) as bar:
        result = api.paint_video(args.input, args.output, model=args.model, styles=args.styles or (),
                                 stability=args.stability, size=args.size, start=args.start, duration=args.duration,
                                 fps=args.fps, batch_size=args.batch_size, preserve_color=args.preserve_color,
                                 tile=args.tile, device=args.device, backend=args.backend, callbacks=[bar],
                                 **optimiser)
    rate = result.frames / result.seconds if result.seconds else 0.0
    where = f"{result.output} ({result.frames} frames, {result.seconds:.1f} s, {rate:.1f} frames/s)"
    return _finish(args, result.stopped, where, "video")


def _say(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def scale_styles(args: argparse.Namespace, styles: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The styles and options of ``--coarse-style`` and ``--fine-style`` (both or neither; no other style)."""
    coarse, fine = getattr(args, "coarse_style", None), getattr(args, "fine_style", None)
    if coarse is None and fine is None:
        return styles, {}
    if coarse is None or fine is None or styles:
        raise UsageError("scale control takes --coarse-style and --fine-style, and no other style")
    return [coarse, fine], {"scale_split": args.scale_split or SCALE_SPLIT}


def region_options(args: argparse.Namespace, styles: list[str]) -> tuple[list[str], dict[str, Any]]:
    """The styles and the ``masks`` and ``style_masks`` of a transfer's region options (--mask, --style-mask,
    --mask-from, --regions)."""
    masks: list[Any] | None = args.masks
    if args.regions and not args.mask_from:
        raise UsageError("--regions names the colours of a --mask-from picture: give one")
    if args.mask_from:
        if masks:
            raise UsageError("--mask and --mask-from do not go together: give one or the other")
        if args.regions:
            pairs = [part.partition("=") for part in names(args.regions)]
            if styles or any(not colour or not path for colour, _, path in pairs):
                raise UsageError("--regions takes COLOUR=STYLE,... and the styles then come from it alone")
            styles = [path.strip() for _, _, path in pairs]
            masks = api.region_masks(args.mask_from, colours=[colour.strip() for colour, _, _ in pairs])
        else:
            masks = api.region_masks(args.mask_from, count=len(styles))
    sources = [None if m == "all" else m for m in args.style_masks] if args.style_masks else None
    return styles, {k: v for k, v in (("masks", masks), ("style_masks", sources)) if v is not None}


def run_single(args: argparse.Namespace) -> int:
    mode = args.command
    words = command_parser(build_parser(), [mode])  # the plan names options by their flags
    options = run_options(args)
    content = getattr(args, "content", None)
    styles = getattr(args, "styles", None)
    if mode == "transfer":
        styles, scale = scale_styles(args, styles or [])
        styles, regions = region_options(args, styles)
        options.update(scale, **regions)
    inputs = [content, *(styles or []), args.init, getattr(args, "mask_from", None),
              *options.get("masks", []), *(options.get("style_masks") or [])]
    output = images.check_output_path(args.output, inputs, args.bit_depth)
    history_path = report.check_suffix(args.history, report.HISTORY_TYPES, "--history", inputs) if args.history \
        else None
    plot_path = report.check_suffix(args.plot, (".png",), "--plot", inputs) if args.plot else None
    if plot_path:
        checks.require("matplotlib", "plot", "`plot`")
    gif_path = report.check_suffix(args.animation, (".gif",), "--animation", inputs) if args.animation else None
    if args.snapshots and not args.save_every:
        raise ConfigError("`snapshots` needs `save_every` N")
    callbacks: list[Callable[[Progress], None]] = []
    if args.save_every:
        folder = args.snapshots or output.with_name(output.stem + "_snapshots")
        callbacks.append(report.Snapshots(folder, args.save_every))
    animation = None
    if gif_path:
        animation = report.Animation()
        callbacks.append(animation)
    with _ProgressBar(mode, "it", args) as bar:
        # --quiet hears no plan, so the run spends nothing on timing the step the plan's estimate needs
        plan = None if args.quiet else lambda line: _say(args, f"plan: {in_cli_words(line, words)}")
        result = api.run(mode, content, styles, callbacks=[*callbacks, bar], resume=args.resume, on_plan=plan,
                         **options)
    _write(result, output, history_path, plot_path, gif_path, animation, args.bit_depth)
    return _report_end(args, result, output)


def _write(result: Result, output: Path, history: Path | None, plot: Path | None, gif: Path | None,
           animation: report.Animation | None, bit_depth: int) -> None:
    images.save_image(result.image, output, metadata=result.settings, bit_depth=bit_depth)
    api.save_resume(result.checkpoint, output)
    if history:
        report.write_history(result.history, history, extra={"settings": result.settings,
                                                             "peak_memory_mb": result.settings["peak_memory_mb"]})
    if plot and result.history:
        report.plot_history(result.history, plot, title=f"{result.settings['mode']}: {output.name}")
    if gif and animation:
        animation.save(gif)


def _report_end(args: argparse.Namespace, result: Result, output: Path) -> int:
    start = result.settings.get("start", "noise")
    # Only a start from noise draws on the seed; from the photo, its palette or a picture the run is determined.
    seed = f"seed {result.seed}" if start == "noise" else f"start: {start}, no seed needed"
    where = f"{output} ({seed}, {result.iterations} iterations, {result.elapsed:.1f} s)"
    if "quality" in result.settings:
        where += f"; {Quality(**result.settings['quality']).describe()}"
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


def _axes(args: argparse.Namespace) -> list[Axis]:
    """The swept axes: inputs first, then each --vary, each value converted as its option would convert it."""
    options = Parser(add_help=False)
    add_run_options(options)
    actions = {action.dest: action for action in options._actions}
    axes = []
    if args.content:
        axes.append(Axis.inputs("content", args.content))
    styles, scale = scale_styles(args, args.style)
    if scale:
        axes.append(Axis("style", ((f"{Path(styles[0]).name} + {Path(styles[1]).name}", {"style": styles}),)))
        axes.append(Axis("scale", (("", scale),)))
    elif styles:
        axes.append(Axis.inputs("style", styles))
    for spec in args.vary:
        name, _, values = spec.partition("=")
        name = name.strip()
        dest = name.lstrip("-").replace("-", "_")
        if dest not in RUN_FIELDS or dest not in actions or not values:
            raise ConfigError(f"--vary {shorten(spec)!r}: give OPTION=V1,V2,... with a run option such as "
                              "style-weight")
        action = actions[dest]
        option_type = cast("Callable[[str], object] | None", action.type)  # a function, never a registered name
        convert = _boolean if action.const is True else option_type or (lambda text: text)
        try:
            cells = [(f"{name}={v.strip()}", run_options(argparse.Namespace(**{dest: convert(v.strip())})))
                     for v in values.split(",")]
        except (argparse.ArgumentTypeError, ValueError) as exc:
            raise ConfigError(f"--vary {shorten(spec)!r}: {exc}") from None
        axes.append(Axis(name, tuple(cells)))
    return axes


def _boolean(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def run_grid(args: argparse.Namespace) -> int:
    output = images.check_output_path(args.output, [*args.content, *args.style, args.init])
    options = run_options(args)
    axes = _axes(args)
    with _ProgressBar(args.mode, "it", args) as bar:

        def on_cell(index: int, total: int, label: str) -> None:
            bar.restart(f"[{index + 1}/{total}] {label}")
            _say(args, f"[{index + 1}/{total}] {label}")

        sheet = api.grid(args.mode, axes, cell_side=args.cell_side, on_cell=on_cell, callbacks=[bar], **options)
    images.save_image(sheet, output, metadata={"grid": vars(args)})
    stopped = sheet.info.get("stopped")
    pictures = "" if stopped else f" ({math.prod(len(axis.cells) for axis in axes)} pictures)"
    return _finish(args, stopped, f"{output}{pictures}", "grid")


def run_styles(args: argparse.Namespace) -> int:
    if bool(args.sheet) != bool(args.output):
        raise UsageError("--sheet PHOTO and -o SHEET go together")
    if args.sheet:
        output = images.check_output_path(args.output, [args.sheet, args.model])
        sheet = api.style_sheet(args.sheet, args.model, size=args.size, device=args.device)
        images.save_image(sheet, output, metadata={"styles": args.model or "built-in", "photo": args.sheet})
        _say(args, f"wrote {output}")
        return 0
    return print_styles(api.list_styles(args.model), args.json)


def run_score(args: argparse.Namespace) -> int:
    with _ProgressBar("score", "picture", args) as bar:
        scored = api.score_many(args.pictures, args.content, args.style, device=args.device, callbacks=[bar])
    found = dict(zip(args.pictures, scored, strict=True))
    if args.json:
        print(json.dumps([{"picture": picture, **quality.as_dict()} for picture, quality in found.items()], indent=1))
        return 0
    width = max(len("picture"), *map(len, found))
    print(f"{'picture':<{width}}  {'content':>7}  {'style':>6}  {'colour':>6}  {'structure':>9}")
    for picture, quality in found.items():
        print(f"{picture:<{width}}  {quality.content_distance:>7.3f}  {quality.style_distance:>6.3f}  "
              f"{quality.colour_distance:>6.2f}  {quality.structure_kept:>9.2f}")
    print(f"content, style, colour: distances {DISTANCES}; structure: kept {STRUCTURE} (docs/quality.md)")
    return 0


def list_layers(args: argparse.Namespace) -> int:
    for name in layer_names(args.model):
        alias = ""
        if name.startswith("relu"):
            block, index = name[4:].split("_")
            alias = f"block{block}_conv{index}"
        elif name.startswith("pool"):
            alias = f"block{name[4:]}_pool"
        print(f"{name:9} {alias}".rstrip())
    return 0


