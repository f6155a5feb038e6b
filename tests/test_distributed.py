"""Data-parallel training over MPI, run under ``mpiexec -n 2`` in subprocesses."""
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fastbp

MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) or shutil.which("mpiexec")
def mpi_available():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return MPIEXEC is not None


pytestmark = pytest.mark.skipif(not mpi_available(), reason="needs mpi4py and mpiexec")

PRELUDE = """
import json, sys, numpy as np, fastbp
from mpi4py import MPI
from fastbp.distributed import DistributedTrainer
from fastbp.optim import SGD, Adam
comm = MPI.COMM_WORLD
rank, size = comm.rank, comm.size
"""


def mpirun(tmp_path, body, n=2, timeout=300, check=True):
    script = tmp_path / "job.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    result = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, str(script)],
                            capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def rank0_json(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def single_process_order(shards, batch_size, perms):
    """The row order in which one process sees what the ranks' local batches make up."""
    n_ranks = len(shards)
    local = [batch_size // n_ranks + (r < batch_size % n_ranks) for r in range(n_ranks)]
    steps = max(-(-len(s) // b) for s, b in zip(shards, local))
    return np.concatenate([
        np.concatenate([s[p][i * b:(i + 1) * b] for s, p, b in zip(shards, perms, local)])
        for i in range(steps)])


@pytest.mark.parametrize("optimizer", ["SGD(0.05, momentum=0.9)", "Adam(0.01)"])
def test_two_ranks_train_like_one_process_with_the_same_global_batches(tmp_path, optimizer):
    # uneven shards (300 and 301 rows), a batch that does not split evenly (45 = 23 + 22),
    # shuffling, and model.fit(comm=...) on the way
    result = mpirun(tmp_path, f"""
        rng = np.random.default_rng(0)
        X, y = rng.standard_normal((601, 10)), rng.integers(0, 3, 601)
        shard = np.array_split(np.arange(601), size)[rank]
        model = fastbp.MLP([10, 16, 16, 3], dtype="float64", seed=rank)  # rank 0's weights win
        history = model.fit(X[shard], y[shard], optimizer={optimizer}, epochs=3,
                            batch_size=45, verbose=0, comm=comm)
        params = comm.gather(model.params.tolist())
        losses = comm.gather(history.loss)
        if rank == 0:
            print(json.dumps({{"params": params, "losses": losses}}))
    """)
    out = rank0_json(result)
    assert out["params"][0] == out["params"][1]  # bit-identical on every rank
    assert out["losses"][0] == out["losses"][1]

    from fastbp.optim import SGD, Adam  # noqa: F401  (the optimizer expression)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((601, 10)), rng.integers(0, 3, 601)
    shards = np.array_split(np.arange(601), 2)
    single = fastbp.MLP([10, 16, 16, 3], dtype="float64", seed=0)
    generators = [fastbp.MLP([10, 16, 16, 3], seed=r)._rng for r in range(2)]  # as the ranks
    opt = eval(optimizer)
    losses = []
    for _ in range(3):  # one epoch at a time, in the order the ranks' batches make
        perms = [g.permutation(len(s)) for g, s in zip(generators, shards)]
        order = single_process_order(shards, 45, perms)
        losses += single.fit(X[order], y[order], optimizer=opt, epochs=1, batch_size=45,
                             shuffle=False, verbose=0).loss
    np.testing.assert_allclose(out["params"][0], single.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out["losses"][0], losses, rtol=1e-12)


def test_validation_early_stopping_and_callbacks_are_decided_on_rank_0(tmp_path):
    result = mpirun(tmp_path, """
        rng = np.random.default_rng(1)
        X, y = rng.standard_normal((400, 6)), rng.integers(0, 2, 400)
        shard = np.array_split(np.arange(300), size)[rank]
        val = (X[300:], y[300:]) if rank == 0 else None
        seen = []
        model = fastbp.MLP([6, 32, 2], seed=0)
        trainer = DistributedTrainer(model, comm)
        history = trainer.fit(X[shard], y[shard], optimizer=Adam(0.05), epochs=40,
                              batch_size=20, validation_data=val, patience=3, verbose=0,
                              callbacks=[lambda e, logs, m: seen.append(e)])
        out = comm.gather({"val": history.val_loss, "best": history.best_epoch,
                           "reason": history.stop_reason, "params": model.params.tolist(),
                           "callbacks": len(seen)})
        if rank == 0:
            print(json.dumps({"ranks": out}))
    """)
    ranks = rank0_json(result)["ranks"]
    assert ranks[0]["val"] == ranks[1]["val"] and len(ranks[0]["val"]) < 40
    assert ranks[0]["reason"] == ranks[1]["reason"] == "patience"
    assert ranks[0]["best"] == ranks[1]["best"] == len(ranks[0]["val"]) - 4
    assert ranks[0]["params"] == ranks[1]["params"]  # both restored the best epoch
    assert ranks[0]["callbacks"] == len(ranks[0]["val"]) and ranks[1]["callbacks"] == 0


def test_ranks_that_disagree_raise_on_every_rank(tmp_path):
    result = mpirun(tmp_path, """
        messages = []
        model = fastbp.MLP([4, 8 if rank == 0 else 9, 2])
        try:
            DistributedTrainer(model, comm)
        except ValueError as exc:
            messages.append(str(exc))
        X = np.zeros((10, 4)) if rank == 0 else np.full((10, 4), np.nan)
        model = fastbp.MLP([4, 8, 2])
        try:
            model.fit(X, np.arange(10) % 2, comm=comm, verbose=0)
        except ValueError as exc:
            messages.append(str(exc))
        try:  # the same mistake on every rank
            model.fit(np.zeros((10, 4)), np.arange(10) % 2, comm=comm, verbose=0, epochs=0)
        except ValueError as exc:
            messages.append(str(exc))
        everyone = comm.gather(messages)  # one writer: the ranks' output streams interleave
        if rank == 0:
            print(json.dumps({"messages": everyone}))
    """)
    for messages in rank0_json(result)["messages"]:
        assert len(messages) == 3
        assert messages[0].startswith("the ranks disagree on the model: rank 0 has "
                                      "MLP(4-8[relu]-2[softmax]")
        assert "rank 1 has MLP(4-9[relu]-2[softmax]" in messages[0]
        assert messages[1] == "rank 1: ValueError: X contains NaN or infinity"
        assert messages[2].startswith("epochs must be") and "rank" not in messages[2]


def test_a_rank_that_hangs_aborts_the_job_with_a_message_instead_of_hanging(tmp_path):
    result = mpirun(tmp_path, """
        import time
        model = fastbp.MLP([4, 8, 2], seed=0)
        trainer = DistributedTrainer(model, comm, timeout=2)
        if rank == 1:
            time.sleep(120)  # stuck: never reaches the first reduction
        trainer.fit(np.zeros((20, 4)), np.arange(20) % 2, epochs=1, verbose=0)
    """, timeout=100, check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "rank 0: checking the inputs waited more than 2 s" in output, \
        f"exit status {result.returncode}, output: {output[-2000:]!r}"


def test_without_mpi4py_the_error_names_the_extra(monkeypatch):
    from fastbp.distributed import DistributedTrainer
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    with pytest.raises(ImportError, match=r'distributed training needs mpi4py.MPI: '
                                          r'pip install "fastbp\[mpi\]"'):
        DistributedTrainer(fastbp.MLP([2, 2]))


def test_the_readme_job_runs_under_mpiexec(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from test_readme import python_blocks
    (job,) = python_blocks(mpi=True)
    script = tmp_path / "train_job.py"
    script.write_text(job)
    result = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    accuracy = float(result.stdout.split("validation accuracy ")[1])
    assert result.stdout.startswith("2 ranks") and accuracy > 0.85
    assert fastbp.load(tmp_path / "digits-mpi.fastbp").history_.n_epochs >= 4


def test_load_rows_reads_one_ranks_rows_of_npz_and_npy_files(tmp_path):
    from fastbp.cli.npz_rows import load_rows
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((1000, 7)).astype(np.float32), np.arange(1000)
    np.savez(tmp_path / "plain.npz", X=X, y=y, F=np.asfortranarray(X))
    np.savez_compressed(tmp_path / "packed.npz", X=X, y=y, F=np.asfortranarray(X))
    np.save(tmp_path / "X.npy", X)
    for name in ("plain.npz", "packed.npz"):
        np.testing.assert_array_equal(load_rows(tmp_path / name, "X", 100, 250), X[100:250])
        np.testing.assert_array_equal(load_rows(tmp_path / name, "F", 3, 9), X[3:9])
        np.testing.assert_array_equal(load_rows(tmp_path / name, "y", 990, 2000), y[990:])
        with pytest.raises(ValueError, match="has no array 'Z'"):
            load_rows(tmp_path / name, "Z", 0, 1)
    np.testing.assert_array_equal(load_rows(tmp_path / "X.npy", None, 5, 9), X[5:9])
    np.savez(tmp_path / "objects.npz", X=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="Python objects"):
        load_rows(tmp_path / "objects.npz", "X", 0, 1)



@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_a_rank_of_the_cli_reads_its_rows_of_an_npz_without_reading_the_whole_file(
        tmp_path, monkeypatch, save):
    import zipfile
    from numpy.lib import format as npy
    from fastbp.cli import distributed as cli_distributed
    from fastbp.cli.parser import build_parser
    X, y = np.arange(3000.0).reshape(1000, 3), np.arange(1000) % 4
    save(tmp_path / "data.npz", X=X, y=y)

    def whole(*args, **kwargs):
        raise AssertionError("a whole array was read")
    monkeypatch.setattr(npy, "read_array", whole)
    monkeypatch.setattr(np, "load", whole)
    largest_read = []  # a compressed member is decompressed as a stream, in pieces
    read = zipfile.ZipExtFile.read
    monkeypatch.setattr(zipfile.ZipExtFile, "read",
                        lambda self, n=-1: largest_read.append(n) or read(self, n))
    args = build_parser().parse_args(["train", str(tmp_path / "data.npz"), "--distributed"])
    X_mine, y_mine, _ = cli_distributed._shard(args, None, rank=1, size=3)
    np.testing.assert_array_equal(X_mine, X[333:666])  # rank 1 of 3: the middle block
    np.testing.assert_array_equal(y_mine, y[333:666])
    assert -1 not in largest_read and max(largest_read, default=0) <= 333 * 3 * 8


def test_the_default_batch_gives_every_rank_a_row():
    from fastbp.cli.parser import build_parser
    from fastbp.cli.train_common import default_batch_size
    args = build_parser().parse_args(["train", "iris"])
    assert default_batch_size(args, 100_000, at_least=128) == 128
    assert default_batch_size(args, 100_000, at_least=2) == 64
    assert default_batch_size(args, 160, at_least=2) == 10


# ---------------------------------------------------------------- the command line
def fastbp_cli(*args, n=2, cwd=None, timeout=300):
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-m", "fastbp", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_cli_trains_on_two_ranks_each_with_its_own_rows_of_an_npz(tmp_path):
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split
    X, y = make_classification(3001, 12, n_informative=6, n_classes=3, random_state=0)
    y = np.array(["ant", "bee", "cat"])[y]
    np.savez(tmp_path / "data.npz", X=X, y=y)
    result = fastbp_cli("train", "data.npz", "--distributed", "--hidden", "32", "--epochs", "4",
                        "--out", "model.fastbp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # one rank speaks
    assert result.stdout.count("test accuracy:") == 1 and result.stdout.count("saved:") == 1
    assert "2 ranks with 1500–1501 rows each" in result.stdout
    assert result.stdout.count("epoch 4/4") == 1

    # the shards are contiguous row blocks; each rank holds out its own test rows
    model = fastbp.load(tmp_path / "model.fastbp")
    assert list(model.classes_) == ["ant", "bee", "cat"] and model.history_.n_epochs == 4
    parts = [train_test_split(X[rows], np.searchsorted(model.classes_, y[rows]), test_size=0.2,
                              random_state=rank, stratify=y[rows])
             for rank, rows in enumerate([slice(0, 1500), slice(1500, 3001)])]
    X_train = np.concatenate([p[0] for p in parts])
    # the standardisation is the whole training set's, computed from sums over the ranks
    np.testing.assert_allclose(model.input_mean_, X_train.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.input_scale_, X_train.std(axis=0), rtol=1e-10)
    # and the printed test scores are those of every rank's test rows together
    X_test, y_test = np.concatenate([p[1] for p in parts]), np.concatenate([p[3] for p in parts])
    scores = model.evaluate((X_test - model.input_mean_) / model.input_scale_, y_test)
    assert (f"test accuracy: {scores['accuracy']:.4f}  test loss: {scores['loss']:.4f}"
            in result.stdout)

    predicted = subprocess.run([sys.executable, "-m", "fastbp", "predict", "model.fastbp",
                                "data.npz"], capture_output=True, text=True, cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    expected = model.classes_[model.predict((X - model.input_mean_) / model.input_scale_)]
    assert predicted.stdout.split()[1:] == list(expected)


def test_cli_regression_on_two_ranks_scales_the_target_over_every_rank(tmp_path):
    result = fastbp_cli("train", "diabetes", "--distributed", "--hidden", "16", "--epochs", "3",
                        "--out", "model.fastbp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("test r2:") == 1
    assert "regression: 352 training / 90 test samples" in result.stdout  # 176 + 176 / 45 + 45
    model = fastbp.load(tmp_path / "model.fastbp")
    # every rank shuffled the rows with the seed and took its block; the test rows are its own
    from sklearn.datasets import load_diabetes
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    X, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    parts = [train_test_split(X[rows], y[rows], test_size=0.2, random_state=rank)
             for rank, rows in enumerate(np.array_split(order, 2))]
    y_train = np.concatenate([p[2] for p in parts])
    np.testing.assert_allclose(model.target_mean_, [y_train.mean()], rtol=1e-12)
    np.testing.assert_allclose(model.target_scale_, [y_train.std()], rtol=1e-12)
    X_test, y_test = np.concatenate([p[1] for p in parts]), np.concatenate([p[3] for p in parts])
    pred = model.predict((X_test - model.input_mean_) / model.input_scale_)
    pred = pred * model.target_scale_[0] + model.target_mean_[0]
    assert f"test r2: {r2_score(y_test, pred):.4f}" in result.stdout


def test_cli_a_mistake_on_one_rank_stops_every_rank_with_one_message(tmp_path):
    X, y = np.random.default_rng(0).standard_normal((200, 3)), np.arange(200) % 2
    X[150, 1] = np.nan  # in rank 1's rows
    np.savez(tmp_path / "data.npz", X=X, y=y)
    result = fastbp_cli("train", "data.npz", "--distributed", "--out", "model.fastbp",
                        cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("fastbp: error: rank 1: data.npz: the features contain "
                                     "NaN or infinity"), result.stderr[-2000:]
    assert not (tmp_path / "model.fastbp").exists()

    # a mistake that shows only once a rank's targets are encoded (text in a regression
    # target that lands on rank 1 after the shuffle) must not leave rank 0 waiting
    rows = [f"{i},{i % 7},{'abc' if i == 77 else i + 0.5}" for i in range(100)]
    (tmp_path / "mixed.csv").write_text("a,b,t\n" + "\n".join(rows) + "\n")
    result = fastbp_cli("train", "mixed.csv", "--distributed", "--task", "regression",
                        cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().endswith("mixed.csv: the target is not numeric; use --task "
                                          "classification"), result.stderr[-2000:]
    assert result.stderr.count("fastbp: error: rank ") == 1


def test_cli_distributed_without_mpi4py_names_the_extra(monkeypatch, capsys):
    from fastbp import cli
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.delitem(sys.modules, "mpi4py.MPI", raising=False)
    assert cli.main(["train", "iris", "--distributed"]) == 2
    assert capsys.readouterr().err.strip() == (
        'fastbp: error: fastbp train --distributed needs mpi4py.MPI: pip install "fastbp[mpi]"')


def test_cli_ctrl_c_stops_every_rank_at_one_epoch_and_rank_0_saves(tmp_path):
    import signal
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, "-m", "fastbp", "train",
                             "synthetic", "--make-classification", "4000,10,3", "--hidden", "32",
                             "--distributed", "--epochs", "100000", "--out", "partial.fastbp"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        for line in proc.stdout:
            if line.startswith("epoch 3/"):
                proc.send_signal(signal.SIGINT)  # the launcher passes it to every rank
                break
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[0] == "fastbp: interrupted; stopping after the current epoch", err
    assert len(lines) == 2 and lines[1].startswith("interrupted after ") and "saved" in lines[1]
    model = fastbp.load(tmp_path / "partial.fastbp")
    assert model.history_.n_epochs >= 3 and model.history_.stop_reason == "interrupted"
    assert f"interrupted after {model.history_.n_epochs} epochs" in lines[1]
