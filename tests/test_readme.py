"""The examples of the README and of the docs run as written, and the links between the
pages resolve."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


MPI_JOB = "# train_job.py"  # the MPI example (docs/distributed.md): run under mpiexec by test_distributed.py


def doc_pages():
    return sorted(DOCS.glob("*.md"))


def python_blocks(mpi=False, page=None):
    """The ```python blocks of `page` (default: the README and every docs page), in order.

    With ``mpi=True`` only the blocks that start with ``MPI_JOB`` (they run under
    mpiexec), otherwise every other block."""
    pages = [page] if page is not None else [README, *doc_pages()]
    blocks = []
    for path in pages:
        text = path.read_text()
        blocks += [block.split("```")[0].lstrip("\n") for block in text.split("```python")[1:]]
    return [b for b in blocks if b.startswith(MPI_JOB) == mpi]


def run_blocks(page):
    """Runs the page's blocks in order in one namespace, as a reader would paste them."""
    namespace = {"__name__": "docs_example"}
    for code in python_blocks(page=page):
        exec(compile(code, str(page), "exec"), namespace)


@pytest.mark.skipif(not README.exists(), reason="README.md not beside tests/")
def test_readme_python_examples_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    assert python_blocks(page=README), "the README has a python example"
    run_blocks(README)
    assert "MLP(64-128[relu]-64[relu]-10[softmax]" in capsys.readouterr().out


@pytest.mark.parametrize("page", [p for p in doc_pages() if python_blocks(page=p)],
                         ids=lambda p: p.name)
def test_docs_python_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    run_blocks(page)


def test_the_mpi_job_is_in_the_docs():
    assert len(python_blocks(mpi=True)) == 1, "one example starts with " + MPI_JOB


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def without_code(text):
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`]*`", "", text)


def heading_anchors(path):
    """GitHub's anchors of the page's headings."""
    text = re.sub(r"^```.*?^```[^\n]*$", "", path.read_text(), flags=re.S | re.M)
    anchors, seen = set(), {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


@pytest.mark.parametrize("page", [README, ROOT / "CONTRIBUTING.md", *doc_pages()],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    if not page.exists():
        pytest.skip(f"{page.name} not beside tests/")
    broken = []
    for target in LINK.findall(without_code(page.read_text())):
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest}")
        elif anchor and dest.suffix == ".md" and anchor not in heading_anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.name}: " + "; ".join(broken)


def test_the_api_page_lists_every_registered_activation():
    from fastbp.kernels.activations import ACTIVATIONS
    page = (ROOT / "docs" / "api.md").read_text()
    missing = [name for name in ACTIVATIONS if f"| `{name}`" not in page]
    assert not missing, f"docs/api.md's activation table lacks {missing}"

