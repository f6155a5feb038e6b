"""Optional dependencies: a clear ImportError naming the extra to install."""
import importlib


def require(module, feature, extra):
    """Import ``module`` or raise ``ImportError`` saying ``feature`` needs ``pip install "fastbp[extra]"``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f'{feature} needs {module}: pip install "fastbp[{extra}]"') from None
