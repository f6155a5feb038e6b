"""The package's shape: no import cycles, no module reading another's private attributes,
public names declared."""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"fastbp": ROOT / "fastbp", "fastbp.kernels": ROOT / "kernels"}

# Private names that are a protocol between modules, not one class's state:
# saved classes give io their content (_to_state/_from_state); scikit-learn's
# estimator protocol names fastbp's estimators override and call on themselves.
SHARED_PRIVATE = {"_to_state", "_from_state"}


def modules():
    """``{module name: path}`` of every module of the package (the kernels included)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package,) + parts)] = path
    return found


MODULES = modules()


def imports_of(name, path):
    """The package modules ``name`` imports at any depth of its code (lazy imports too)."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            stem = ".".join(base + ([node.module] if node.module else []))
            targets = [f"{stem}.{a.name}" for a in node.names] + [stem]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    # a package's __init__ is imported with any of its modules: not an edge of its own
    return {t for t in found if not name.startswith(t + ".")}


def test_no_import_cycles():
    graph = {name: imports_of(name, path) for name, path in MODULES.items()}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"
    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_sees_lazy_and_relative_imports():
    edges = imports_of("fastbp.model", MODULES["fastbp.model"])
    assert {"fastbp.network", "fastbp.training", "fastbp.io"} <= edges
    assert "fastbp.distributed" in edges  # imported inside MLP.fit


def defined_private_names(tree):
    """Private names a module defines: functions, classes, attributes it assigns."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


TREES = {name: ast.parse(path.read_text()) for name, path in MODULES.items()}
# every private name some module of the package defines: a read of one of these from
# another module is a read of that module's private state (third-party libraries'
# private names, e.g. Numba's, are not this test's business)
PACKAGE_PRIVATE = set().union(*(defined_private_names(t) for t in TREES.values()))


def foreign_private_reads(tree, package_private=None):
    """``(line, text)`` of every ``obj._name`` read where ``_name`` belongs to another module.

    ``self._x``/``cls._x``/``super()._x`` are the class's own (or inherited) state.
    """
    package_private = PACKAGE_PRIVATE if package_private is None else package_private
    foreign = package_private - defined_private_names(tree) - SHARED_PRIVATE
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in foreign:
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Call) and ast.unparse(owner.func) == "super":
                continue
            found.append((node.lineno, ast.unparse(node)))
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_reads_another_modules_private_attributes(name):
    reads = foreign_private_reads(TREES[name])
    assert not reads, f"{name} reads private attributes it does not own: {reads}"


def test_the_private_attribute_check_catches_a_foreign_read():
    tree = ast.parse("def f(model):\n    return model._layout, self._mine\n")
    assert foreign_private_reads(tree, {"_layout", "_mine"}) == [(2, "model._layout")]


# the modules users import by name: they show their public names and nothing else
USER_MODULES = ["fastbp", "fastbp.callbacks", "fastbp.optim", "fastbp.history", "fastbp.io",
                "fastbp.metrics", "fastbp.gradcheck", "fastbp.plotting", "fastbp.distributed"]


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("fastbp.")
                                        and not n.startswith("fastbp.kernels")
                                        and not n.rpartition(".")[2].startswith("_")))
def test_every_module_declares_its_public_names(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.__all__ names a missing {public}"


@pytest.mark.parametrize("name", USER_MODULES)
def test_user_facing_modules_leak_no_imported_helpers(name):
    """Only ``__all__``, private names, and third-party modules under their usual names
    (``np``): an imported function, class or fastbp module would look like part of the API."""
    module = importlib.import_module(name)
    leaked = [n for n in vars(module) if not n.startswith("_") and n not in module.__all__
              and not (isinstance(getattr(module, n), type(importlib))
                       and (getattr(module, n).__name__ == f"{name}.{n}"  # its own submodule
                            or not getattr(module, n).__name__.startswith("fastbp")))]
    assert not leaked, f"{name} shows imported helpers as public attributes: {leaked}"


# ---------------------------------------------------------------- the kernels' records
# What an entry kernel may call a record's field when it unpacks it; any other name is a
# field read in the wrong place of the tuple.
RECORD_FIELDS = {"network": "NETWORK", "settings": "SETTINGS", "data": "DATA",
                 "work": "WORKSPACE", "columns": "COLUMNS"}
FIELD_ALIASES = {("work", "grads"): {"shard_grads"}, ("work", "sums"): {"shard_loss", "squares"}}


def misread_fields(tree):
    """``(line, record, position, name)`` for each unpacked name that is not its field."""
    from fastbp.kernels import records
    found, unpacked = [], 0
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple)):
            continue
        value = node.value
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "borrow"):
            value = value.args[0]  # borrow(network) keeps the record's order
        if not (isinstance(value, ast.Name) and value.id in RECORD_FIELDS):
            continue
        unpacked += 1
        record = value.id
        fields = getattr(records, RECORD_FIELDS[record])
        names = [t.id for t in node.targets[0].elts]
        if len(names) != len(fields):
            found.append((node.lineno, record, len(names), "wrong length"))
        for k, (name, field) in enumerate(zip(names, fields)):
            if name not in ("_", field) and name not in FIELD_ALIASES.get((record, field), ()):
                found.append((node.lineno, record, k, name))
    return found, unpacked


def test_entry_kernels_unpack_records_in_field_order():
    found, unpacked = misread_fields(ast.parse((ROOT / "kernels" / "entries.py").read_text()))
    assert unpacked >= 8  # every entry kernel unpacks its records
    assert found == []


def test_the_record_check_catches_swapped_fields():
    swapped = ast.parse("def f(network, work):\n    net, layers, params, gammas = network\n"
                        "    acts, zs = work\n")
    found, _ = misread_fields(swapped)
    assert (2, "network", 1, "layers") in found and (2, "network", 2, "params") in found
    assert (3, "work", 2, "wrong length") in found


def test_record_builders_follow_the_field_lists():
    import numpy as np
    from fastbp.kernels import records as R
    a = np.zeros(3)
    assert len(R.network(a, a, a, a)) == len(R.NETWORK)
    assert len(R.settings(a, a, 1, 2)) == len(R.SETTINGS) == len(R.l2_only(np.float64))
    assert len(R.data(a, a, a, 4)) == len(R.DATA)
    assert len(R.workspace(a, a)) == len(R.WORKSPACE)
    assert len(R.columns(*[a] * 7)) == len(R.COLUMNS)
    # scalars become Python numbers: a NumPy scalar would compile the entry kernel again
    settings = R.settings(a, a, np.int64(3), np.int32(1), np.float32(0.5), 0)
    assert [type(v) for v in settings[2:]] == [int, int, float, float]
