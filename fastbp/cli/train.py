"""``fastbp train DATA``: the command in one process (:func:`cmd_train`).

With ``--distributed`` it hands over to :mod:`fastbp.cli.distributed`, run
under ``mpiexec``; what both do alike is in :mod:`fastbp.cli.train_common`.
"""
import os
import sys
import time

import numpy as np

from .data import (check_class_rows, check_finite, decide_task, encode_targets, load_data,
                   table_options, target_facts)
from .errors import CLIError
from .scaling import fit_target, moments, standardised
from .train_common import (default_batch_size, epoch_callbacks, finish, interrupted,
                           new_model, test_sums, test_summary, train_options)

__all__ = ["cmd_train"]


def _mpi_launch_size():
    """How many processes an MPI launcher started (1 when not launched by one)."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 1


def cmd_train(args):
    """Train a model on ``args.data``, test it on held-out rows, save it (``--out``)."""
    if args.distributed:
        from .distributed import train_distributed
        return train_distributed(args)
    if _mpi_launch_size() > 1:
        print(f"fastbp: note: started by an MPI launcher with {_mpi_launch_size()} processes "
              "but without --distributed, so each trains alone", file=sys.stderr)
    synthetic, hidden = train_options(args)
    X, y, features = load_data(args.data, args.target, synthetic, args.seed,
                               **table_options(args))
    numbers, integral = target_facts(y)
    check_finite(args.data, X, numbers)
    task = decide_task(args.task, numbers is not None, integral,
                       len(np.unique(y if numbers is None else numbers)))
    classes = np.unique(y) if task == "classification" else None
    targets = encode_targets(args.data, y, numbers, task, classes)
    if classes is not None:
        check_class_rows(args.data, classes, np.bincount(targets, minlength=len(classes)))
    # imported once the data is known to be good: a user mistake is reported 0.75 s sooner
    from sklearn.model_selection import train_test_split
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            X, targets, test_size=args.test_fraction, random_state=args.seed,
            stratify=targets if classes is not None else None)
    except ValueError as exc:
        raise CLIError(f"cannot split {len(X)} samples for testing: {exc}") from None
    model, optimizer = new_model(args, X.shape[1], hidden, classes, moments(X_train),
                                 None if classes is not None else moments(y_train))
    model.feature_names_ = features
    n_fit = len(X_train) - int(len(X_train) * (args.val_fraction or 0))
    print(f"{model}\n{task}: {len(X_train)} training / {len(X_test)} test samples"
          + (f", {len(classes)} classes" if classes is not None else ""), flush=True)
    callbacks = epoch_callbacks(args)
    start = time.perf_counter()
    try:
        history = model.fit(standardised(model, X_train), fit_target(model, y_train),
                            optimizer=optimizer, epochs=args.epochs,
                            batch_size=default_batch_size(args, n_fit),
                            validation_fraction=args.val_fraction or None,
                            patience=args.patience, verbose=1 if sys.stderr.isatty() else 2,
                            n_jobs=args.n_jobs, callbacks=callbacks)
    except KeyboardInterrupt:
        return interrupted(model, args)
    elapsed = time.perf_counter() - start
    return finish(args, model, history, elapsed,
                  test_summary(test_sums(model, standardised(model, X_test), y_test),
                               classes is not None), callbacks=callbacks)
