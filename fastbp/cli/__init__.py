"""The ``fastbp`` command line: ``train``, ``predict``, ``info``.

``fastbp`` (or ``python -m fastbp``) with no arguments runs the main job
(:mod:`fastbp.cli.main_job`): train on scikit-learn's digits and print
accuracy and time. User mistakes (missing file, unknown column, non-numeric
features, NaN, shapes that do not match the model or each other, a bad
option) print one line, ``fastbp: error: ...``, and exit with status 2; they
never show a traceback.

This module holds the entry points, :func:`main` and :func:`console`; the
package's modules hold the rest:

- ``parser``: the arguments (``build_parser``);
- ``data``: reading a CSV, an ``.npz`` or an embedded data set, and its checks;
- ``npz_rows``: reading one MPI rank's rows of an ``.npz`` or ``.npy``;
- ``scaling``: the standardisation kept beside a trained model;
- ``train``: ``fastbp train`` in one process;
- ``distributed``: ``fastbp train --distributed``, one process per MPI rank;
- ``train_common``: what both train commands do alike;
- ``saved_model``: ``fastbp predict`` and ``fastbp info``;
- ``main_job``: the default job;
- ``errors``: ``CLIError``, a user mistake.
"""
import logging
import os
import sys
import typing

from .errors import CLIError
from .parser import build_parser

__all__ = ["main", "console", "show_library_messages"]


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (tests swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def show_library_messages():
    """The library's warnings on stderr, and its compile notice (``fastbp: compiling
    kernels ..., once per machine``) unless ``FASTBP_COMPILE_NOTICE=0``: a command that
    compiles for seconds says why. Once per process."""
    library = logging.getLogger("fastbp")
    if not any(isinstance(h, _Stderr) for h in library.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name == "fastbp.compile")
        library.addHandler(handler)
    quiet = os.environ.get("FASTBP_COMPILE_NOTICE", "1").lower() in ("0", "false", "no", "off")
    logging.getLogger("fastbp.compile").setLevel(logging.WARNING if quiet else logging.INFO)


def main(argv: typing.Optional[typing.Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    show_library_messages()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        from .main_job import main_job
        main_job()
        return 0
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    try:
        return args.run(args)
    except CLIError as exc:
        if not exc.quiet:
            print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # fastbp's own input checks name the problem
        print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2


def console() -> None:
    """Entry point of the ``fastbp`` console script."""
    try:
        code = main()
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("fastbp: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # the reader went away (``fastbp predict ... | head``)
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)
