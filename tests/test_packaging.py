"""What ``pip install`` brings: one version, the license, and no MPI or PyTorch by default."""
import re
import tomllib
from importlib import metadata
from pathlib import Path

import fastbp

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(requirements):
    return {re.split(r"[<>=!\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_version_is_written_once_and_installed_as_written():
    assert "version" not in PROJECT and "version" in PROJECT["dynamic"]
    assert metadata.version("fastbp") == fastbp.__version__


def test_a_plain_install_and_the_test_extra_pull_no_mpi_and_no_torch_where_not_needed():
    extras = PROJECT["optional-dependencies"]
    assert not names(PROJECT["dependencies"]) & {"torch", "mpi4py", "mpich", "jax"}
    assert not names(extras["test"]) & {"mpi4py", "mpich"}
    assert names(extras["mpi"]) == {"mpi4py", "mpich"}


def test_the_license_is_an_spdx_expression_with_its_file():
    assert PROJECT["license"] == "BSD-3-Clause" and PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("BSD 3-Clause License")
    assert not any(c.startswith("License ::") for c in PROJECT["classifiers"])


def test_every_torch_requirement_is_the_one_verified_range():
    extras = PROJECT["optional-dependencies"]
    torch_specs = {r for reqs in extras.values() for r in reqs if names([r]) == {"torch"}}
    assert torch_specs == {"torch>=2.3,<2.14"}
    assert {"pandas", "pyarrow"} <= names(extras["data"]) <= names(extras["test"]) | {"pandas"}


def test_the_installed_torch_is_a_cpu_build_in_the_range():
    """What the test extra resolved to: the CPU build (no CUDA runtime pulled in)."""
    import pytest
    torch = pytest.importorskip("torch")
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version
    assert torch.version.cuda is None, torch.__version__
    assert Version(torch.__version__) in SpecifierSet(">=2.3,<2.14")


def test_the_package_type_checks_with_its_configuration():
    """``mypy`` with ``[tool.mypy]`` of pyproject.toml (the public API is annotated and
    ``py.typed`` ships in the wheel)."""
    import subprocess
    import sys
    import pytest
    pytest.importorskip("mypy")
    assert (ROOT / "fastbp" / "py.typed").exists()
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout
