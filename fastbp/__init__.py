"""fastbp: fast CPU training of multilayer perceptrons with Numba kernels.

Importing fastbp compiles nothing: kernels compile (or load from Numba's
on-disk cache) the first time they run.
"""
from ._source_tree import register_sibling_kernels

register_sibling_kernels(__path__[0])

from ._cache import drop_stale_kernel_cache  # noqa: E402

drop_stale_kernel_cache()

from . import callbacks, optim  # noqa: E402
from .gradcheck import check_gradients  # noqa: E402
from .history import History  # noqa: E402
from .model import MLP, DivergenceError  # noqa: E402
from .estimators import MLPClassifier, MLPRegressor  # noqa: E402
from .io import ModelFileError, load  # noqa: E402
from .plotting import plot_history  # noqa: E402

__version__ = "0.1.0"
__all__ = ["MLP", "DivergenceError", "MLPClassifier", "MLPRegressor", "History", "ModelFileError", "callbacks",
           "check_gradients", "load", "optim", "plot_history", "__version__"]
