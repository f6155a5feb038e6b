"""Stopping a fit at a consistent point: divergence and Ctrl-C.

``GuardedEpochs`` runs an epoch kernel and checks its outcome. The kernels stop
an epoch before the update of a step whose loss is not finite, but an update
can itself overflow (a finite loss with a huge gradient or learning rate
makes weights or Adam's moments infinite). So after every epoch the
parameters (finite and within ``magnitude_limit``) and optimizer state
(finite) are checked (one pass over each, negligible
next to an epoch); on any failure the epoch is replayed step by step from a
copy taken at its start (the kernels are deterministic) and the model is left
with the parameters and state from just before the first bad step.

``deferred_interrupt`` holds back Ctrl-C while a fit runs in the main thread:
Numba kernels cannot be interrupted mid-call anyway, and an interrupt landing
between a kernel's return and the bookkeeping after it would leave the step
count or history out of step with the weights. The fit checks ``pending`` after
each epoch and raises ``KeyboardInterrupt`` there.
"""
import signal
import sys
import threading
import weakref
from contextlib import contextmanager

import numpy as np

from ._validation import magnitude_limit
from .kernels.checks import all_finite, peak_magnitude


# scratch buffers per owner, outside its attributes: not pickled, saved or compared
_SCRATCH: weakref.WeakKeyDictionary[object, dict[str, np.ndarray]] = weakref.WeakKeyDictionary()


def scratch_like(owner, name, array):
    """An uninitialised array like ``array``, kept for ``owner``'s next call.

    Fits called in a loop (``partial_fit``, one-epoch ``fit``) would otherwise
    get fresh pages every time: for a 1.9M-parameter network the page faults
    of the copies cost more than copying.
    """
    if owner is None:
        return np.empty_like(array)
    kept = _SCRATCH.setdefault(owner, {})
    buffer = kept.get(name)
    if buffer is None or buffer.shape != array.shape or buffer.dtype != array.dtype:
        buffer = kept[name] = np.empty_like(array)
    return buffer


class GuardedEpochs:
    """Run epochs of ``steps`` (``fastbp.training``), never leaving non-finite state.

    ``steps`` has ``n_steps(perm)`` and ``run(perm, first, stop) -> mean loss``;
    ``params`` and ``state`` (an optimizer state with ``buffers`` and ``step``)
    are the arrays its steps update in place.
    """

    def __init__(self, steps, params, state, owner=None):
        self.steps, self.params, self.state = steps, params, state
        self._limit = magnitude_limit(params.dtype)
        self._params_copy = scratch_like(owner, "_guard_params", params)
        self._state_copy = scratch_like(owner, "_guard_state", state.buffers)

    def _healthy(self, loss):
        # weights beyond magnitude_limit are finite but of no use: their squares overflow,
        # and neither the params setter nor fastbp.load accepts them
        if not np.isfinite(loss):
            return False
        return (peak_magnitude(self.params) <= self._limit
                and all_finite(self.state.buffers.reshape(-1)))

    def _save(self):
        self._params_copy[...] = self.params
        self._state_copy[...] = self.state.buffers

    def _restore(self):
        self.params[...] = self._params_copy
        self.state.buffers[...] = self._state_copy

    def run(self, perm):
        """One epoch over ``perm``: ``(loss, None)``, or ``(None, failed step index)``.

        On failure the parameters, optimizer state and ``state.step`` are those
        from before the failing step of this epoch. ``state.step`` counts the
        steps before the first one a ``steps.run`` call runs.
        """
        n_steps, step0 = self.steps.n_steps(perm), self.state.step
        self._save()
        loss = self.steps.run(perm, 0, n_steps)
        if self._healthy(loss):
            self.state.step = step0 + n_steps
            return loss, None
        self._restore()
        for s in range(n_steps):  # replayed step by step from the copy: the kernels are
            self.state.step = step0 + s  # deterministic, so the first bad step is found
            self._save()
            if not self._healthy(self.steps.run(perm, s, s + 1)):
                self._restore()
                return None, s
        raise RuntimeError("an epoch failed that its step-by-step replay did not: "
                           "the steps are not deterministic")


class BestWeights:
    """The parameters of the best epoch so far, put back when a fit ends.

    ``ending(history)`` wraps a fit's loop: on ``KeyboardInterrupt`` it records
    the stop in ``history`` and keeps the last epoch's weights (they go with the
    optimizer state); on any other end it restores the best epoch's, if kept.
    """

    def __init__(self, params, enabled):
        self.params, self.enabled, self.copy = params, enabled, None

    def keep(self):
        if self.enabled:
            self.copy = self.params.copy()

    @contextmanager
    def ending(self, history):
        interrupted = False
        try:
            yield
        except KeyboardInterrupt:
            interrupted = True
            history.stopped_early, history.stop_reason = True, "interrupted"
            raise
        finally:
            if (not interrupted and self.copy is not None
                    and history.best_epoch != history.n_epochs - 1):
                self.params[...] = self.copy


class _Interrupt:
    pending = False


@contextmanager
def deferred_interrupt(quiet=False):
    """Hold Ctrl-C (SIGINT) until the caller checks ``.pending`` at a safe point.

    Only in the main thread, and only while Python's default handler is
    installed (a notebook's or the user's own handler is left alone). Says
    so on stderr unless ``quiet`` (an MPI rank other than 0: one line per job).
    """
    flag = _Interrupt()
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield flag
        return

    def hold(signum, frame):
        if not (flag.pending or quiet):
            print("\nfastbp: interrupted; stopping after the current epoch", file=sys.stderr)
        flag.pending = True
    signal.signal(signal.SIGINT, hold)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
