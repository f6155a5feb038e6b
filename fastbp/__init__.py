"""fastbp: fast CPU training of multilayer perceptrons with Numba kernels.

Importing fastbp loads nothing heavy: the public names below are imported on
first use (``fastbp.MLP`` loads the model and Numba, ``fastbp.MLPClassifier``
scikit-learn's estimators), and kernels compile, or load from the on-disk
cache, the first time a network calls them (``fastbp.specialize``).
"""
import importlib
import logging
import typing

from . import _source_tree

# library messages (a kernel compiling, a strategy chosen) go to the ``fastbp`` logger,
# silent unless the program configures logging; the command line shows the compile notice
logging.getLogger("fastbp").addHandler(logging.NullHandler())

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
# sorted(_LAZY) + _SUBMODULES, written out so that type checkers read it
__all__ = ["DivergenceError", "History", "MLP", "MLPClassifier", "MLPRegressor",
           "ModelFileError", "check_gradients", "load", "plot_history",
           "callbacks", "optim", "__version__"]

if typing.TYPE_CHECKING:  # what type checkers see of the names imported on first use
    from . import callbacks, optim
    from .estimators import MLPClassifier, MLPRegressor
    from .gradcheck import check_gradients
    from .history import History
    from .io import ModelFileError, load
    from .model import MLP
    from .plotting import plot_history
    from .training import DivergenceError
else:  # hidden from type checkers, for which a misspelt name is then an error
    def __getattr__(name):
        if name in _LAZY:
            value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        elif name in _SUBMODULES:
            value = importlib.import_module(f".{name}", __name__)
        else:
            raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
