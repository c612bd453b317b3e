"""The ``skadaptive`` command: ``demo``, ``frontier``, ``predict`` and ``recalibrate``.

Problems with files or arguments end with a one-line message and exit code 1
(usage errors: 2), never a traceback; output paths are checked before any
work. ``skadaptive --version`` prints the version.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from . import _demo, _frontier, _predict, _recalibrate
from ._demo import run_demo  # noqa: F401 (for tests and scripts)
from ._io import FEATURE_NAMES_WARNING, CommandError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="skadaptive",
        description="Adaptive inference for scikit-learn: cheap models first.",
    )
    parser.add_argument(
        "--version", action="version", version=f"skadaptive {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _demo.add_parser(commands)
    _frontier.add_parser(commands)
    _predict.add_parser(commands)
    _recalibrate.add_parser(commands)
    # Named by the commands where none is given: "the following arguments
    # are required: command" said nothing of which.
    commands.metavar = "{" + ",".join(commands.choices) + "}"
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``skadaptive`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments after the program name; ``sys.argv[1:]`` when None.

    Returns
    -------
    exit_code : int
        0 on success, 1 when a file or argument is wrong.

    Examples
    --------
    >>> from skadaptive.cli import main
    >>> main(["predict", "missing.joblib", "--data", "missing.csv"])
    1
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            # A CSV's columns are matched to the models' by name before any
            # model sees them (see _io.align_columns); other files have no
            # names to match, and scikit-learn's warning would repeat at
            # every call of every stage.
            warnings.filterwarnings("ignore", message=FEATURE_NAMES_WARNING)
            return args.run(args)
    except BrokenPipeError:
        # Output piped into a command that stopped reading (e.g. `| head`).
        sys.stderr.close()
        return 0
    except CommandError as exc:
        print(f"skadaptive {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"skadaptive {args.command}: interrupted", file=sys.stderr)
        return 130
