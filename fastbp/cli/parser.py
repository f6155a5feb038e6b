"""The command line's arguments: :func:`build_parser` (``train``, ``predict``, ``info``).

Each subcommand's namespace carries ``run``, the function that runs it; an
argument mistake prints one line, ``fastbp: error: ...``, and exits with status 2.
"""
import argparse

from .data import EMBEDDED
from .saved_model import cmd_info, cmd_predict
from .train import cmd_train
from .train_common import MIN_STEPS_PER_EPOCH

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other user mistake."""

    def error(self, message):
        self.exit(2, f"fastbp: error: {message} (see {self.prog} --help)\n")


class _Help(argparse.HelpFormatter):
    """Every option's help ends with its default, when it has one."""

    def _get_help_string(self, action):
        text = action.help or ""
        # by identity: 0 == False, and --seed's default 0 is worth showing
        shown = not any(action.default is v for v in (None, False, argparse.SUPPRESS))
        if shown and action.option_strings:
            text += f" (default: {action.default})"
        return text


def _table_arguments(command):
    command.add_argument("--delimiter", help="a CSV's field delimiter: one character, or tab, "
                         "comma, semicolon, pipe, space (default: found from the header)")
    command.add_argument("--decimal", choices=[".", ","],
                         help="a CSV's decimal mark (default: ',' when the delimiter is not "
                              "a comma and the numbers use decimal commas, else '.')")


def build_parser():
    """The ``fastbp`` argument parser."""
    from .. import __version__
    from ..architecture import HIDDEN_ACTIVATIONS
    from ..optim import OPTIMIZERS
    p = _Parser(prog="fastbp", description="Train and use MLPs on the CPU. "
                "With no arguments: train on digits and report.")
    p.add_argument("--version", action="version", version=f"fastbp {__version__}")
    sub = p.add_subparsers(dest="command")
    t = sub.add_parser("train", formatter_class=_Help,
                       help="train a model on a CSV, an .npz or an embedded data set")
    t.add_argument("data", help="a .csv/.tsv (with a header), a .parquet (needs pyarrow), an "
                   f".npz with X and y, or one of {', '.join(EMBEDDED)}, synthetic")
    t.add_argument("--target", help="the target column of a CSV or Parquet file "
                   "(default: the last)")
    _table_arguments(t)
    t.add_argument("--dropna", action="store_true",
                   help="drop the rows with a missing value (default: refuse them, "
                        "naming the columns)")
    t.add_argument("--task", choices=["auto", "classification", "regression"], default="auto",
                   help="what to learn (auto: decided from the target column)")
    t.add_argument("--make-classification", metavar="N,F,C",
                   help="with 'synthetic': samples, features, classes")
    t.add_argument("--hidden", default="128", help="hidden layer sizes, e.g. 256,256")
    t.add_argument("--activation", default="relu", choices=HIDDEN_ACTIVATIONS,
                   help="hidden activation")
    t.add_argument("--epochs", type=int, default=20, help="passes over the training rows")
    t.add_argument("--batch-size", type=int, default=None,
                   help="rows per step (default 64, fewer on small data: at least "
                        f"{MIN_STEPS_PER_EPOCH} steps per epoch)")
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam",
                   help="the update rule")
    t.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="training rows held out to report a validation loss (0: none)")
    t.add_argument("--patience", type=int, default=None,
                   help="stop after this many epochs without a better validation loss "
                        "(default: never)")
    t.add_argument("--test-fraction", type=float, default=0.2,
                   help="rows held out for the test scores")
    t.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="precision of the weights and the arithmetic")
    t.add_argument("--seed", type=int, default=0, help="seed of the splits, weights, order")
    t.add_argument("--n-jobs", type=int, default=None,
                   help="threads (-1: all cores; default: Numba's setting)")
    t.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI: run under mpiexec, each rank with its own "
                        "rows (needs the mpi extra)")
    t.add_argument("--out", help="save the trained model here (checked before training)")
    t.add_argument("--plot", help="write the training curves here (PNG; needs matplotlib; "
                                  "checked before training)")
    t.add_argument("--log", help="write each epoch's losses and scores to this CSV as the "
                                 "epoch ends (checked before training)")
    t.set_defaults(run=cmd_train)
    pr = sub.add_parser("predict", formatter_class=_Help, help="predict with a saved model")
    pr.add_argument("model", help="a model saved by fastbp train --out")
    pr.add_argument("data", help="a .csv/.tsv/.parquet with the model's feature columns, or "
                    "an .npz with X")
    _table_arguments(pr)
    pr.add_argument("--proba", action="store_true", help="class probabilities")
    pr.add_argument("--out", help="write the predictions to this CSV (default: stdout)")
    pr.set_defaults(run=cmd_predict)
    i = sub.add_parser("info", formatter_class=_Help, help="describe a saved model")
    i.add_argument("model", help="a model saved by fastbp (.fastbp)")
    i.set_defaults(run=cmd_info)
    return p
