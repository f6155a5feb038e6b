"""The README's example runs as written."""
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


MPI_JOB = "# train_job.py"  # the MPI example: run under mpiexec by test_distributed.py


def python_blocks(mpi=False):
    text = README.read_text()
    blocks = [block.split("```")[0].lstrip("\n") for block in text.split("```python")[1:]]
    return [b for b in blocks if b.startswith(MPI_JOB) == mpi]


@pytest.mark.skipif(not README.exists(), reason="README.md not beside tests/")
def test_readme_python_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    blocks = python_blocks()
    assert blocks, "the README has a python example"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
    assert "MLP(64-128[relu]-64[relu]-10[softmax]" in capsys.readouterr().out
