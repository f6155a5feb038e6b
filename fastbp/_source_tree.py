"""Make ``fastbp.kernels`` importable from a source checkout.

Installed (wheel or editable), ``kernels/`` is the subpackage
``fastbp.kernels``. In a checkout, ``python -m fastbp`` or ``python -m pytest``
run from the repository root import this directory's ``fastbp`` instead of the
installed one, and there the kernels sit beside the package, not inside it.
This registers them under their package name; it never makes a top-level
``kernels`` module.
"""
import importlib.util
import sys
from pathlib import Path


def register_sibling_kernels(package_dir):
    """Load ``<package_dir>/../kernels`` as ``fastbp.kernels`` if it is not inside."""
    if (Path(package_dir) / "kernels").is_dir() or "fastbp.kernels" in sys.modules:
        return
    sibling = Path(package_dir).parent / "kernels"
    if not (sibling / "__init__.py").is_file():
        return
    found = importlib.util.find_spec("fastbp.kernels")
    if found is not None and found.origin and Path(found.origin).parent.resolve() == sibling.resolve():
        return  # an editable install of this checkout already maps it
    # else load the sibling: an editable install of another checkout maps the name to
    # that checkout's kernels, which would run beside this checkout's Python code
    spec = importlib.util.spec_from_file_location(
        "fastbp.kernels", sibling / "__init__.py", submodule_search_locations=[str(sibling)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastbp.kernels"] = module
    spec.loader.exec_module(module)
    sys.modules["fastbp"].kernels = module  # as the import system does for a submodule
