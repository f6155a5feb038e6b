"""The compile model: shared entry kernels, and small functions specialised per network.

Two kinds of compiled code:

- The **entry kernels** (``fastbp.kernels.entries``: the epoch of each
  strategy, prediction, evaluation, loss and gradient) are ordinary cached
  Numba kernels, the same for every network: compiled once per machine and
  dtype, then loaded from Numba's on-disk cache.
- A network's **own functions** (``fastbp.kernels.network_functions``: its
  hidden activations, its output activation and loss) depend on its
  *configuration*: the distinct hidden activations, the output and the loss.
  This module writes two small modules per configuration, each shared by
  every configuration with the same part:
  ``<cache>/kernels-<sources digest>/hidden_<key>.py`` for the hidden set and
  ``output_<key>.py`` for the output and loss. Their functions call the
  registry's scalar functions of exactly what the network uses; they are
  compiled for the fixed signatures of their slots, only the slots a call
  needs, and the entry kernels get their addresses
  (``NetworkKernels.addresses``). The optimizer's update rule is a cached
  kernel of the registry, passed the same way.

So a fit compiles only what its network uses, a new network compiles only its
own small functions, and a warm cache loads everything. Layers with the same
activation share one branch of ``hidden_forward``: a layer's row in the layout
table carries the index of its activation among the configuration's distinct
hidden activations (``kinds``), so networks of any depth and width with the
same activations share their compiled functions. ``docs/design.md`` has the
measurements that chose this model.

The cache directory is ``$FASTBP_CACHE_DIR``, else ``$NUMBA_CACHE_DIR/fastbp``,
else ``$XDG_CACHE_HOME/fastbp`` (``~/.cache/fastbp``); it can be deleted at
any time. The first time something compiles with a cold cache, the logger
``fastbp.compile`` says so at INFO level: silent in a program that configures no
logging (the ``fastbp`` logger has a ``NullHandler``), one line on stderr from
the command line (``FASTBP_COMPILE_NOTICE=0`` silences it there).
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .kernels import activations as A
from .kernels import entries as E
from .kernels import losses as L
from .kernels import network_functions as F
from .kernels import optimizers as O
from .kernels._stale_cache import sources_digest

__all__ = [
    "TYPICAL_SECONDS", "entry_compile_seconds", "Config", "NetworkKernels", "kinds", "cache_root", "hidden_source",
    "output_source", "network_kernels", "entry"
]

logger = logging.getLogger("fastbp.compile")

# Seconds a cold compile took on the machine where this was measured (2-core
# Xeon, float32); the notice quotes this machine's own figure instead once it
# has compiled something.
TYPICAL_SECONDS = {"hidden": 0.5, "output": 0.8, "rule": 0.5, "train_epoch": 2.8,
                   "train_epoch_columns": 4.5, "train_epoch_sharded": 2.3,
                   "predict_rows": 0.6, "predict_rows_parallel": 0.5, "evaluate_rows": 0.5,
                   "forward_backward": 1.1, "apply_update": 0.2, "body_shard": 1.1,
                   "body_predict_worker": 0.5, "body_gather_part": 0.3,
                   "body_hidden_forward_part": 1.2, "body_output_backward_part": 1.3,
                   "body_update_part": 0.5, "body_hidden_backward_part": 0.8}


@dataclass(frozen=True)
class Config:
    """What a network's own functions are specialised for.

    Attributes
    ----------
    hidden : tuple of str
        The distinct hidden activations, sorted (a layer refers to its own by index).
    output, loss : str
    """

    hidden: tuple
    output: str
    loss: str

    def __post_init__(self) -> None:
        # the kinds in the layout table index this tuple: one order for one configuration
        if tuple(sorted(set(self.hidden))) != tuple(self.hidden):
            raise ValueError(f"hidden activations must be distinct and sorted, got {self.hidden}")

    @property
    def key(self) -> str:
        return f"{'+'.join(self.hidden) or 'none'}__{self.output}__{self.loss}"

    def describe(self) -> str:
        hidden = ", ".join(self.hidden) or "no hidden layer"
        return f"{hidden} → {self.output}, {self.loss}"


def kinds(activations: Sequence[str]) -> tuple[tuple[str, ...], list[int]]:
    """``(hidden names, kind per layer)``: each hidden layer's index into the distinct names."""
    hidden = tuple(sorted(set(activations[:-1])))
    return hidden, [hidden.index(name) for name in activations[:-1]] + [0]


# ----------------------------------------------------------------------------- sources
def cache_root() -> Path:
    """Where generated kernels and their compiled code live (see the module docstring)."""
    if os.environ.get("FASTBP_CACHE_DIR"):
        return Path(os.environ["FASTBP_CACHE_DIR"])
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / "fastbp"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fastbp"


class _Source:
    """The lines of a generated module: imports and functions."""

    def __init__(self):
        self.imports, self.functions = set(), []

    def name(self, fn, prefix):
        """The name a registry function (a Numba dispatcher) goes by in the module."""
        py = getattr(fn, "py_func", fn)
        name = f"{prefix}_{py.__name__}"
        self.imports.add(f"from {py.__module__} import {py.__name__} as {name}")
        return name

    def function(self, signature, body):
        self.functions += ["", "", "@kernel", f"def {signature}:"]
        self.functions += [f"    {line}" for line in body]


def _forward_call(src, act, prefix):
    """The statement applying ``act`` to ``product + b``.

    ``product`` is ``z_out``, which is ``a_out`` itself unless the activation
    keeps ``z`` (``reads_z``), so every other activation runs in place.
    """
    if act.rows_forward is not None:
        return f"{src.name(act.rows_forward, prefix)}(product, b, a_out)"
    f = src.name(act.forward, prefix)
    if act.gamma == "learnable" or act.reads_z:
        stride = int(act.gamma == "learnable")
        return f"_layers.bias_activation_keeping_z(z_out, b, {f}, gamma, {stride}, a_out)"
    return f"_layers.bias_activation(a_out, b, {f}, gamma)"


def _backward_call(src, act, prefix, grad="grad"):
    """The statement turning ``∂loss/∂a`` into ``∂loss/∂z`` for ``act``, or None (f' = 1)."""
    if act.rows_backward is not None:
        return f"{src.name(act.rows_backward, prefix)}({grad}, a)"
    if act.derivative is None:
        return None
    if act.gamma == "learnable":
        return (f"_layers.times_derivative_per_unit({grad}, a, z, "
                f"{src.name(act.derivative, prefix)}, {src.name(act.gamma_derivative, prefix)}, "
                "gamma, gamma_grad)")
    return f"_layers.times_derivative({grad}, a, z, {src.name(act.derivative, prefix)}, gamma)"


def _branches(bodies):
    """``if kind == 0: ... elif kind == 1: ...`` (``pass`` for a branch with nothing to do)."""
    lines = []
    for k, (name, body) in enumerate(bodies):
        lines += [f"{'if' if k == 0 else 'elif'} kind == {k}:  # {name}", f"    {body or 'pass'}"]
    return lines or ["pass"]


def _module_text(doc, src):
    header = [f'"""{doc}', "", "Written by fastbp.specialize; see fastbp/kernels/network_functions.py.",
              '"""', "from fastbp.kernels import layers as _layers",
              "from fastbp.kernels import losses as _losses",
              "from fastbp.kernels._config import kernel"] + sorted(src.imports)
    return "\n".join(header + src.functions) + "\n"


def hidden_source(hidden: Sequence[str]) -> str:
    """The module of the hidden layers' functions for the distinct hidden activations ``hidden``."""
    src = _Source()
    acts = [A.ACTIVATIONS[name] for name in hidden]
    src.function("hidden_forward(kind, product, b, gamma, z_out, a_out)",
                 _branches([(a.name, _forward_call(src, a, f"_h{k}"))
                            for k, a in enumerate(acts)]))
    src.function("hidden_backward(kind, grad, a, z, gamma, gamma_grad)",
                 _branches([(a.name, _backward_call(src, a, f"_h{k}"))
                            for k, a in enumerate(acts)]))
    return _module_text(f"Hidden layers: {', '.join(hidden) or 'none'}.", src)


def output_source(output: str, loss: str) -> str:
    """The module of the output layer's functions for ``output`` trained with ``loss``."""
    src = _Source()
    out, entry = A.ACTIVATIONS[output], L.LOSSES[loss]
    src.function("output_forward(product, b, gamma, z_out, a_out)",
                 [_forward_call(src, out, "_out")])
    term, mean = src.name(entry.term, "_loss"), str(entry.mean_over_outputs)
    if output == entry.canonical_output:  # the matched pair: δ = a − y
        body = [f"return _losses.delta_and_loss(a, y, {term}, _losses.canonical_gradient, "
                f"{mean}, scale, delta, True)"]
    else:  # the chain rule through the output's derivative
        backward = _backward_call(src, out, "_out", grad="delta")
        body = [f"total = _losses.delta_and_loss(a, y, {term}, "
                f"{src.name(entry.gradient, '_loss')}, {mean}, scale, delta, True)"]
        body += ([backward] if backward else []) + ["return total"]
    src.function("output_delta(a, y, z, gamma, gamma_grad, scale, delta)", body)
    src.function("output_loss(a, y)", [f"return _losses.delta_and_loss(a, y, {term}, "
                                       f"_losses.canonical_gradient, {mean}, 1.0, a, False)"])
    return _module_text(f"Output layer: {output}, trained with {loss}.", src)


# ----------------------------------------------------------------------------- loading
_lock = threading.Lock()
_modules: dict[str, _Generated] = {}
_networks: dict[Config, NetworkKernels] = {}
_directory = None
_noticed: set[tuple[str, object]] = set()


def _kernels_dir():
    """The generated kernels' directory for these sources (created on first use)."""
    global _directory
    if _directory is None:
        name = f"kernels-{sources_digest()[:16]}"
        path = cache_root() / name
        if not _writable_dir(path):  # a read-only home: compile into a temporary directory
            path = Path(tempfile.gettempdir()) / f"fastbp-{os.getuid()}" / name
            path.mkdir(parents=True, exist_ok=True)
        _directory = path
    return _directory


def _writable_dir(path):
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}-{threading.get_ident()}"
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False


def _write_if_changed(path, text):
    """Write ``text`` to ``path`` atomically, leaving an identical file untouched.

    Numba's cache is keyed by the file's modification time: rewriting the same
    text would throw the compiled functions away.
    """
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Marker:
    """Whether a piece has compiled on this machine, and how long that took.

    A marker file beside the generated modules holds the seconds a compile
    took; no marker means a cold cache (it lives in the same directory tree as
    Numba's cache when ``NUMBA_CACHE_DIR`` is set).
    """

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype
        self.path = _kernels_dir() / f"{name}.{dtype}.s"

    @property
    def cold(self):
        return not self.path.exists()

    def record(self, seconds):
        try:
            self.path.write_text(f"{seconds:.2f}\n")
        except OSError:
            pass

    def estimate(self):
        """This machine's median for the same kind of piece, else the typical figure."""
        kind = self.name.split("_")[0] if self.name.startswith(("hidden_", "output_", "rule_")) \
            else self.name
        pattern = (f"{kind}_*.{self.dtype}.s" if kind in ("hidden", "output", "rule")
                   else f"{kind}.{self.dtype}.s")
        recorded = []
        for path in self.path.parent.glob(pattern):
            try:
                recorded.append(float(path.read_text()))
            except (OSError, ValueError):
                pass
        if recorded:
            return sorted(recorded)[len(recorded) // 2]
        return TYPICAL_SECONDS.get(kind, 2.0)


def entry_compile_seconds(name: str, dtype: npt.DTypeLike) -> float:
    """What compiling the entry kernel ``name`` for ``dtype`` is expected to take on this
    machine, with the ``prange`` bodies it calls (0 for what has compiled already)."""
    dtype = np.dtype(dtype).name
    markers = [_Marker(name, dtype)] + [_Marker(f"body_{F.BODIES[slot]}", dtype)
                                        for slot in F.ENTRY_SLOTS.get(name, ())
                                        if slot in F.BODIES]
    return sum(marker.estimate() for marker in markers if marker.cold)


def _notice(what, dtype, markers):
    """One line on stderr, once per process and subject, if any of ``markers`` is cold."""
    cold = [m for m in markers if m.cold]
    if cold and (what, dtype) not in _noticed:
        _noticed.add((what, dtype))
        logger.info("fastbp: compiling kernels for %s (%s), about %.0f s, once per machine",
                    what, dtype, max(1.0, sum(m.estimate() for m in cold)))


class _Compiling:
    """Times a compile and records it in its marker when the cache was cold."""

    def __init__(self, marker):
        self.marker = marker

    def __enter__(self):
        self.cold, self.start = self.marker.cold, time.perf_counter()
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None and self.cold:
            self.marker.record(time.perf_counter() - self.start)


def _address(dispatcher, signature):
    """The entry point of ``dispatcher`` compiled (or loaded from the cache) for ``signature``."""
    dispatcher.compile(signature.args)
    result = dispatcher.overloads[signature.args]
    return result.library.get_pointer_to_function(result.fndesc.llvm_func_name)


# the slots each generated module fills
_HIDDEN_SLOTS = {F.HIDDEN_FORWARD: "hidden_forward", F.HIDDEN_BACKWARD: "hidden_backward"}
_OUTPUT_SLOTS = {F.OUTPUT_FORWARD: "output_forward", F.OUTPUT_DELTA: "output_delta",
                 F.OUTPUT_LOSS: "output_loss"}


class _Generated:
    """One generated module and its functions' addresses per dtype."""

    def __init__(self, name, text, slots):
        self.name, self.slots = name, slots
        path = _kernels_dir() / f"{name}.py"
        _write_if_changed(path, text)
        module_name = f"fastbp.kernels.{name}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        self.module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = self.module
        spec.loader.exec_module(self.module)
        self._addresses = {}
        self._lock = threading.Lock()

    def address(self, slot, dtype):
        """The address of ``slot``'s function for ``dtype``, compiled (or loaded) on first use."""
        key = (slot, dtype)
        found = self._addresses.get(key)
        if found is None:
            with self._lock:
                found = self._addresses.get(key)
                if found is None:
                    from numba import from_dtype
                    with _Compiling(_Marker(self.name, dtype)):
                        found = _address(getattr(self.module, self.slots[slot]),
                                         F.signature(slot, from_dtype(np.dtype(dtype))))
                    self._addresses[key] = found
        return found


def _generated(name, text, slots):
    """The :class:`_Generated` module ``name``, written and imported on first use."""
    found = _modules.get(name)
    if found is None:
        with _lock:
            found = _modules.get(name)
            if found is None:
                found = _modules[name] = _Generated(name, text, slots)
    return found


def _name(kind, key):
    return f"{kind}_{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class NetworkKernels:
    """One configuration's compiled functions, as the entry kernels take them.

    The hidden layers' functions depend on the hidden activations only, the
    output layer's on the output and the loss only: each lives in a module of
    its own, shared by every configuration that has the same part.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        hidden_key = "+".join(config.hidden) or "none"
        self.hidden = _generated(_name("hidden", hidden_key), hidden_source(config.hidden),
                                 _HIDDEN_SLOTS)
        self.output = _generated(_name("output", f"{config.output}__{config.loss}"),
                                 output_source(config.output, config.loss), _OUTPUT_SLOTS)
        self._addresses: dict[tuple, tuple] = {}  # (dtype, rule) -> (net, a read-only view)
        self._lock = threading.Lock()

    def addresses(self, dtype: npt.DTypeLike, rule: str | None = None,
                  slots: Sequence[int] = F.TRAIN) -> np.ndarray:
        """The int64 ``net`` array of the entry kernels for ``dtype`` (the optimizer's ``rule``).

        Compiles (or loads from the cache) the functions of ``slots`` on first
        use, and only those: prediction needs the forward ones, evaluation the
        loss too, training the backward ones and the update ``rule`` (None
        leaves the update slot empty). A slot not asked for holds 0, and no
        entry kernel that a caller runs with it calls it.
        """
        dtype = np.dtype(dtype).name
        with self._lock:
            net, view = self._addresses.get((dtype, rule), (None, None))
            if net is None:
                net = np.zeros(F.N_SLOTS, dtype=np.int64)
                view = net.view()
                view.flags.writeable = False  # one signature for the entry kernels
                self._addresses[(dtype, rule)] = net, view
            missing = [s for s in slots if not net[s] and (s != F.UPDATE or rule is not None)]
            if missing:
                self._fill(net, missing, dtype, rule)
        return view

    def _fill(self, net, slots, dtype, rule):
        parts = [part for part in (self.hidden, self.output)
                 if any(s in part.slots for s in slots)]
        _notice(f"this network ({self.config.describe()})", dtype,
                [_Marker(part.name, dtype) for part in parts])
        for part in parts:
            for slot in slots:
                if slot in part.slots:
                    net[slot] = part.address(slot, dtype)
        bodies = [slot for slot in slots if slot in F.BODIES]
        if bodies:  # the parallel entries' prange bodies: shared, like the entries
            from numba import from_dtype
            markers = [_Marker(f"body_{F.BODIES[slot]}", dtype) for slot in bodies]
            _notice("the parallel steps", dtype, markers)
            for slot, marker in zip(bodies, markers):
                with _Compiling(marker):
                    net[slot] = _address(getattr(E, F.BODIES[slot]),
                                         F.signature(slot, from_dtype(np.dtype(dtype))))
        if F.UPDATE in slots:
            from numba import from_dtype
            marker = _Marker(f"rule_{rule}", dtype)
            _notice(f"the {rule} update", dtype, [marker])
            with _Compiling(marker):
                net[F.UPDATE] = _address(O.RULES[rule].update,
                                         F.signature(F.UPDATE, from_dtype(np.dtype(dtype))))


def network_kernels(config: Config) -> NetworkKernels:
    """The :class:`NetworkKernels` of ``config``, generated and imported on first use."""
    found = _networks.get(config)
    if found is None:
        found = _networks.setdefault(config, NetworkKernels(config))
    return found


class _Entry:
    """An entry kernel that says so the first time it compiles on this machine."""

    def __init__(self, name, dtype):
        self.name, self.dtype = name, dtype
        self.dispatcher = getattr(E, name)
        self._ready = False
        self._lock = threading.Lock()

    def __call__(self, *args):
        if not self._ready:
            self._prepare(args)
        return self.dispatcher(*args)

    def _prepare(self, args):
        import numba
        with self._lock:
            if self._ready:
                return
            marker = _Marker(self.name, self.dtype)
            _notice("training and prediction", self.dtype, [marker])
            with _Compiling(marker):
                self.dispatcher.compile(tuple(numba.typeof(a) for a in args))
            self._ready = True


# the wrapper until the first call has compiled, then the kernel
_entries: dict[tuple[str, object], Callable[..., Any]] = {}


def entry(name: str, dtype: npt.DTypeLike) -> Callable[..., Any]:
    """The entry kernel ``name`` of ``fastbp.kernels.entries`` for arrays of ``dtype``.

    Until its first call has compiled (or loaded) it, a wrapper that says so on a
    cold cache; then the kernel itself.
    """
    found = _entries.get((name, dtype))
    if found is None:
        found = _entries.setdefault((name, dtype), _Entry(name, np.dtype(dtype).name))
    if isinstance(found, _Entry) and found._ready:
        _entries[(name, dtype)] = found = found.dispatcher
    return found
