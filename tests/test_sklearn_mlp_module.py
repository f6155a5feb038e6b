"""scikit-learn's own MLP test module, run against fastbp's estimators.

The module is read from the installed scikit-learn at collection time, its one
import of the estimators swapped for fastbp's, and executed here: pytest then
collects its tests as this module's. A new scikit-learn release that adds or
changes tests shows up here as tests that pass or fail, never as silence.
Nothing in it is skipped or marked by fastbp.
"""
from pathlib import Path

import pytest
import sklearn

SOURCE = Path(sklearn.__file__).parent / "neural_network" / "tests" / "test_mlp.py"
THEIRS = "from sklearn.neural_network import MLPClassifier, MLPRegressor"
OURS = "from fastbp import MLPClassifier, MLPRegressor"


def fastbp_version_of(text):
    """``text`` with its import of scikit-learn's estimators replaced by fastbp's; the
    import must be there exactly once (else the module is not the one this was made for)."""
    if text.count(THEIRS) != 1:
        raise RuntimeError(f"{SOURCE} does not import the estimators as {THEIRS!r} once")
    return text.replace(THEIRS, OURS)


@pytest.fixture
def global_random_seed():
    """scikit-learn's fixture of the same name, at its default seed (its conftest is not
    loaded here)."""
    return 42


exec(compile(fastbp_version_of(SOURCE.read_text()), f"{SOURCE} (with fastbp's estimators)",
             "exec"), globals())
MLPClassifier, MLPRegressor = globals()["MLPClassifier"], globals()["MLPRegressor"]
assert MLPClassifier.__module__ == MLPRegressor.__module__ == "fastbp.estimators"


def test_the_swap_refuses_a_module_that_imports_the_estimators_otherwise():
    assert fastbp_version_of(f"x = 1\n{THEIRS}\n") == f"x = 1\n{OURS}\n"
    with pytest.raises(RuntimeError, match="once"):
        fastbp_version_of("from sklearn.neural_network import MLPClassifier\n")
    with pytest.raises(RuntimeError, match="once"):
        fastbp_version_of(f"{THEIRS}\n{THEIRS}\n")
