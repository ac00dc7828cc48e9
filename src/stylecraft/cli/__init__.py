"""The ``stylecraft`` command: subcommands on top of the Python API; errors become one line and an exit code.

``parser`` holds the options and the translation of parameter names into flags; ``commands`` what each
subcommand does. Exit codes: 0 done, 1 failure at run time (including a run stopped by a NaN loss), 2 bad
input or usage, 130 interrupted (the image so far is saved). SIGTERM (``kill``, a scheduler's stop) is
handled like Ctrl-C, so a run stopped that way keeps its work too.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence

from ..errors import StylecraftError, one_line, shorten
from .listing import list_builtin
from .parser import build_parser, command_parser, in_cli_words

#: Each subcommand's function in ``commands`` (the rest run ``run_single``). ``commands`` loads torch, so it is
#: imported only once the arguments are good: ``--help`` and usage errors answer without it.
COMMANDS = {"layers": "list_layers", "grid": "run_grid", "train": "run_train", "apply": "run_apply",
            "video": "run_video", "export": "run_export", "serve": "run_serve", "live": "run_serve",
            "batch": "run_batch", "score": "run_score", "styles": "run_styles", "train-decoders": "run_train_decoders"}


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code. SIGTERM interrupts it as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return _main(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words
    try:
        args = parser.parse_args(words)
        listed = list_builtin(args) if args.command == "styles" else None
        if listed is not None:
            return listed
        from . import commands

        run: Callable[[argparse.Namespace], int] = getattr(commands, COMMANDS.get(args.command, "run_single"))
        return run(args)
    except StylecraftError as exc:
        if debug:
            traceback.print_exc()
        message = in_cli_words(str(exc), command_parser(parser, words))
        print(f"stylecraft: error: {shorten(message, 1000)}", file=sys.stderr)
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


__all__ = ["build_parser", "main"]
