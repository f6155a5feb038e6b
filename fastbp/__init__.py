"""fastbp: fast CPU training of multilayer perceptrons with Numba kernels.

Importing fastbp loads nothing heavy: the public names below are imported on
first use (``fastbp.MLP`` loads the model and Numba, ``fastbp.MLPClassifier``
scikit-learn's estimators), and kernels compile, or load from the on-disk
cache, the first time a network calls them (``fastbp.specialize``).
"""
import importlib

from . import _source_tree

_source_tree.register_sibling_kernels(__path__[0])

__version__ = "0.1.0"

# public name → the submodule that defines it
_LAZY = {
    "MLP": "model", "DivergenceError": "training",
    "MLPClassifier": "estimators", "MLPRegressor": "estimators",
    "History": "history", "ModelFileError": "io", "load": "io",
    "check_gradients": "gradcheck", "plot_history": "plotting",
}
_SUBMODULES = ("callbacks", "optim")
__all__ = sorted(_LAZY) + list(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
