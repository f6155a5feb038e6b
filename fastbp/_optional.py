"""Optional dependencies: a clear ImportError naming the extra to install."""
import importlib
import types


def require(module: str, feature: str, extra: str) -> types.ModuleType:
    """Import ``module`` or raise ``ImportError`` saying ``feature`` needs ``pip install "fastbp[extra]"``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f'{feature} needs {module}: pip install "fastbp[{extra}]"') from None
