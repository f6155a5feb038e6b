"""Convert between ``fastbp.MLP`` and ``torch.nn.Sequential``.

Imported only by ``MLP.to_torch`` / ``MLP.from_torch``, so PyTorch stays
optional. ``nn.Linear`` stores ``W`` as ``(fan_out, fan_in)``, fastbp as
``(fan_in, fan_out)``: the conversion transposes. Each activation's module is
the one its registry entry names (``fastbp.kernels.activations``), with the
entry's arguments; a learnable γ is the module's ``weight``. Two fastbp
activations have no PyTorch module and get one here (``HardLogistic``,
``Exp``); a pickled Sequential that holds them needs fastbp importable.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy.typing as npt
import torch
from torch import nn

from ..kernels.activations import ACTIVATIONS

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["HardLogistic", "Exp", "to_torch", "from_torch"]


class HardLogistic(nn.Module):
    """``clip(z/4 + 1/2, 0, 1)``, fastbp's hard_logistic (``nn.Hardsigmoid`` is ``z/6 + 1/2``)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.clamp(0.25 * z + 0.5, 0.0, 1.0)


class Exp(nn.Module):
    """``e^z``, the output of Poisson regression (the inverse of its log link)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(z)


def _torch_class(entry):
    """The module class an activation's registry entry names: fastbp's own, else ``torch.nn``'s."""
    return globals().get(entry.torch) or getattr(nn, entry.torch)


def _module(name, gamma, slopes):
    """The PyTorch module for one fastbp activation (None for identity)."""
    entry = ACTIVATIONS[name]
    if entry.torch == "Identity":
        return None
    cls = _torch_class(entry)
    if entry.gamma == "learnable":  # one trained parameter per unit: the module's weight
        module = cls(num_parameters=slopes.shape[0])
        module.weight = nn.Parameter(torch.from_numpy(slopes.copy()))
        return module
    return cls(**{k: gamma if v == "gamma" else v for k, v in entry.torch_args.items()})


def to_torch(network: Network, logits: bool = False) -> nn.Sequential:
    """The ``nn.Sequential`` of ``network`` (a ``fastbp.network.Network``): see
    ``MLP.to_torch``."""
    modules = []
    n_layers = len(network.coefs)
    for l, (W, b) in enumerate(zip(network.coefs, network.intercepts)):
        # built on the meta device so that no initial weights are drawn from torch's RNG
        linear = nn.Linear(W.shape[0], W.shape[1], device="meta")
        linear.weight = nn.Parameter(torch.from_numpy(W.T.copy()))  # a copy, not a view
        linear.bias = nn.Parameter(torch.from_numpy(b.copy()))
        modules.append(linear)
        if l == n_layers - 1 and logits:
            break
        name = network.layout.activations[l]
        module = _module(name, network.layout.gamma_per_layer[l], network.slopes.get(l))
        if module is not None:
            modules.append(module)
    return nn.Sequential(*modules)


def _flatten(modules):
    for m in modules:
        if isinstance(m, nn.Sequential):
            yield from _flatten(m)
        else:
            yield m


def _accepted(entry, attr, value, actual):
    allowed = entry.torch_accepts.get(attr)
    if isinstance(allowed, tuple):
        return actual in allowed
    if allowed is not None:
        return actual >= allowed
    return actual == value


def _activation(module, position):
    """``(fastbp name, γ or None, learnable γ or None)`` of one PyTorch activation module."""
    kind = type(module)
    entry = next((e for e in ACTIVATIONS.values() if _torch_class(e) is kind), None)
    if entry is None:
        hint = {nn.Hardsigmoid: " (fastbp's hard_logistic is fastbp.interop.torch.HardLogistic, "
                                "clip(z/4 + 1/2, 0, 1))",
                nn.LogSoftmax: " (use Softmax; predict_proba returns probabilities)",
                nn.Dropout: " (fastbp trains without dropout; remove it for inference)"}
        known = ", ".join(e.torch for e in ACTIVATIONS.values())
        raise ValueError(f"{position}: {kind.__name__} is not supported{hint.get(kind, '')}; "
                         "fastbp converts Linear layers, each followed by at most one of "
                         f"{known} (softmax and exp last only)")
    if entry.gamma == "learnable":
        return entry.name, None, module.weight.detach().to("cpu", torch.float64).numpy()
    gamma = None
    for attr, value in entry.torch_args.items():
        actual = getattr(module, attr)
        if value == "gamma":
            gamma = float(actual)
            if gamma < 0 and not entry.reads_z:
                raise ValueError(f"{position}: {kind.__name__} needs {attr} >= 0, got {gamma}")
        elif not _accepted(entry, attr, value, actual):
            fixed = ", ".join(f"{k}={v:g}" for k, v in entry.torch_args.items() if v != "gamma")
            raise ValueError(f"{position}: fastbp's {entry.name} is {kind.__name__}({fixed}), "
                             f"got {attr}={actual:g}")
    return entry.name, gamma, None


def _parse(sequential):
    """``[(linear, activation name, γ, prelu weights)]`` for a Sequential, checked."""
    if not isinstance(sequential, nn.Module):
        raise TypeError(f"from_torch needs a torch.nn.Sequential, got {type(sequential).__name__}")
    modules = list(_flatten([sequential] if isinstance(sequential, nn.Sequential)
                            else [sequential]))
    layers = []
    for i, m in enumerate(modules):
        position = f"module {i} ({type(m).__name__})"
        if isinstance(m, nn.Linear) and type(m) is nn.Linear:
            if layers and layers[-1][0].out_features != m.in_features:
                raise ValueError(f"{position} takes {m.in_features} inputs but the layer "
                                 f"before gives {layers[-1][0].out_features}")
            layers.append([m, None, None, None])
            continue
        if not layers:
            raise ValueError(f"{position}: the first module must be a Linear layer")
        if layers[-1][1] is not None:
            raise ValueError(f"{position}: two activations in a row; fastbp has one per layer")
        name, gamma, slopes = _activation(m, position)
        if slopes is not None and slopes.size not in (1, layers[-1][0].out_features):
            raise ValueError(f"{position}: PReLU has {slopes.size} slopes for "
                             f"{layers[-1][0].out_features} units")
        layers[-1][1:] = name, gamma, slopes
    if not layers:
        raise ValueError("from_torch needs at least one Linear layer")
    for i, (_, name, _, _) in enumerate(layers[:-1]):
        if name is not None and not ACTIVATIONS[name].hidden:
            raise ValueError(f"{name} can only follow the last Linear layer (found after "
                             f"layer {i})")
    return [(m, name or "identity", gamma, slopes) for m, name, gamma, slopes in layers]


def _common_gamma(names, gammas):
    """The one γ fastbp's MLP takes, from the layers whose activation has a constant one."""
    wanted = {(n, g) for n, g in zip(names, gammas) if ACTIVATIONS[n].gamma == "constant"}
    if all(g == ACTIVATIONS[n].default_gamma for n, g in wanted):
        return None
    values = {g for _, g in wanted}
    if len(values) > 1:
        raise ValueError("fastbp uses one γ for all its layers that have one (leaky_relu, elu); "
                         f"this Sequential has {sorted(values)}")
    return values.pop()


def from_torch(cls: Any, sequential: nn.Module, output: str | None = None,
               loss: str | None = None, dtype: npt.DTypeLike | None = None) -> Any:
    """``cls`` (``fastbp.MLP``) built from ``sequential``: see ``MLP.from_torch``."""
    layers = _parse(sequential)
    names = [name for _, name, _, _ in layers]
    if output is not None and names[-1] != "identity" and output != names[-1]:
        raise ValueError(f"output={output!r} given, but the Sequential already ends in "
                         f"{names[-1]}")
    if output is not None:
        names[-1] = output
    for i, (m, _, _, _) in enumerate(layers):
        if m.weight.is_meta:
            raise ValueError(f"Linear layer {i} has no data (it is on the meta device)")
    if dtype is None:
        dtype = {torch.float32: "float32", torch.float64: "float64"}.get(layers[0][0].weight.dtype)
        if dtype is None:
            raise ValueError(f"the Linear weights are {layers[0][0].weight.dtype}; pass "
                             "dtype='float32' or 'float64'")
    as_numpy = lambda t: t.detach().to("cpu", torch.float64).numpy()  # noqa: E731
    weights = [as_numpy(m.weight) for m, _, _, _ in layers]
    sizes = [layers[0][0].in_features] + [m.out_features for m, _, _, _ in layers]
    gamma = _common_gamma(names, [g for _, _, g, _ in layers])
    model = cls(sizes, activation=names[:-1], output=names[-1], loss=loss, dtype=dtype,
                gamma=gamma)
    for l, (m, _, _, slopes) in enumerate(layers):
        model.coefs_[l][...] = weights[l].T
        model.intercepts_[l][...] = 0 if m.bias is None else as_numpy(m.bias)
        if slopes is not None:
            model.slopes_[l][...] = slopes  # one shared slope broadcasts to every unit
    return model
