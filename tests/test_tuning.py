"""strategy="auto": priced on this machine, recorded once, reused by every later fit."""
import json
import threading

import numpy as np
import pytest

import fastbp
from fastbp import tuning

CANDIDATES = {"serial", "blas", "sharded", "columns"}


@pytest.fixture
def records(tmp_path, monkeypatch):
    """A records folder of its own, and no decision remembered by this process."""
    monkeypatch.setattr(tuning, "records_dir", lambda: tmp_path)
    monkeypatch.setattr(tuning, "_chosen", {})
    monkeypatch.setattr(tuning, "_priced", {})
    # a quiet machine: on a busy one nothing is recorded (tested below with a busy figure)
    monkeypatch.setattr(tuning, "_launch_seconds", lambda parts: 2e-6)
    return tmp_path


def test_price_gives_every_candidate_a_positive_time():
    seconds = tuning.price((20, 16, 3), 32, np.float32, 2)
    assert set(seconds) == CANDIDATES
    assert all(np.isfinite(v) and v > 0 for v in seconds.values())
    no_hidden = tuning.price((20, 3), 32, np.float64, 2)
    assert set(no_hidden) == CANDIDATES - {"columns"}  # nothing to split by units


def test_one_part_is_serial_without_pricing(records, monkeypatch):
    monkeypatch.setattr(tuning, "price", lambda *a, **k: pytest.fail("priced one part"))
    assert tuning.choose((784, 256, 10), 128, np.float32, 1) == "serial"
    assert list(records.iterdir()) == []


def test_a_choice_is_recorded_and_read_back_instead_of_pricing_again(records, monkeypatch):
    monkeypatch.setattr(tuning, "price", lambda *a, **k: {"serial": 2.0, "columns": 1.0})
    assert tuning.choose((30, 40, 5), 16, np.float32, 2) == "columns"
    (path,) = records.glob("*.json")
    record = json.loads(path.read_text())
    assert record["strategy"] == "columns" and record["key"] == "30-40-5|batch=16|float32|parts=2"
    # a new process (nothing remembered) reads the record; it never prices again
    monkeypatch.setattr(tuning, "_chosen", {})
    monkeypatch.setattr(tuning, "_priced", {})
    monkeypatch.setattr(tuning, "price", lambda *a, **k: pytest.fail("priced a recorded problem"))
    assert tuning.choose((30, 40, 5), 16, np.float32, 2) == "columns"
    # another dtype, batch or part count is another problem
    monkeypatch.setattr(tuning, "price", lambda *a, **k: {"serial": 1.0, "columns": 2.0})
    assert tuning.choose((30, 40, 5), 16, np.float64, 2) == "serial"
    assert tuning.choose((30, 40, 5), 17, np.float32, 2) == "serial"
    assert len(list(records.glob("*.json"))) == 3


def test_a_price_taken_on_a_busy_machine_is_used_once_and_not_recorded(records, monkeypatch):
    """A parallel phase that waits a scheduler slice (another process holds a core) would
    price every parallel strategy too high for good: that moment's choice runs, unrecorded,
    and the next fit prices again."""
    monkeypatch.setattr(tuning, "price", lambda *a, **k: {"serial": 1.0, "columns": 3.0})
    monkeypatch.setattr(tuning, "_launch_seconds", lambda parts: 8e-3)
    assert tuning.choose((30, 40, 5), 16, np.float32, 2) == "serial"
    assert list(records.glob("*.json")) == []
    launches = iter([2e-6, 8e-3])  # busy by the end of the pricing: not recorded either
    monkeypatch.setattr(tuning, "_launch_seconds", lambda parts: next(launches))
    assert tuning.choose((30, 40, 5), 16, np.float32, 2) == "serial"
    assert list(records.glob("*.json")) == []
    monkeypatch.setattr(tuning, "price", lambda *a, **k: {"serial": 2.0, "columns": 1.0})
    monkeypatch.setattr(tuning, "_launch_seconds", lambda parts: 2e-6)
    assert tuning.choose((30, 40, 5), 16, np.float32, 2) == "columns"  # quiet: recorded
    assert len(list(records.glob("*.json"))) == 1


def test_processes_that_price_at_once_agree_on_the_first_record(records, monkeypatch):
    key = tuning._key((30, 40, 5), 16, np.float32, 2)
    first = tuning._write_first(key, {"key": key, "strategy": "sharded"})
    second = tuning._write_first(key, {"key": key, "strategy": "columns"})
    assert first == second == "sharded"
    assert [p.name for p in records.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_threads_choosing_at_once_get_one_answer(records, monkeypatch):
    answers, calls = [], iter([{"serial": 1.0, "blas": 2.0}, {"serial": 2.0, "blas": 1.0}] * 4)
    monkeypatch.setattr(tuning, "price", lambda *a, **k: next(calls))
    threads = [threading.Thread(target=lambda: answers.append(
        tuning.choose((8, 8, 2), 4, np.float32, 2))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4 and len(set(answers)) == 1


def test_forget_prices_again(records, monkeypatch):
    monkeypatch.setattr(tuning, "price", lambda *a, **k: {"serial": 2.0, "blas": 1.0})
    assert tuning.choose((8, 8, 2), 4, np.float32, 2) == "blas"
    tuning.forget()
    assert list(records.glob("*.json")) == []
    monkeypatch.setattr(tuning, "price", lambda *a, **k: {"serial": 1.0, "blas": 2.0})
    assert tuning.choose((8, 8, 2), 4, np.float32, 2) == "serial"


def test_an_unwritable_records_folder_still_chooses(tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(tuning, "records_dir", lambda: blocker / "records")
    monkeypatch.setattr(tuning, "_chosen", {})
    monkeypatch.setattr(tuning, "_priced", {})
    monkeypatch.setattr(tuning, "price", lambda *a, **k: {"serial": 2.0, "sharded": 1.0})
    monkeypatch.setattr(tuning, "_launch_seconds", lambda parts: 2e-6)  # a quiet machine
    assert tuning.choose((8, 8, 2), 4, np.float32, 2) == "sharded"
    assert "could not record the strategy" in caplog.text


def test_fits_use_the_recorded_strategy_and_a_pin_wins(records, monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    model = fastbp.MLP([6, 16, 3], seed=0)
    key = tuning._key((6, 16, 3), 32, model.dtype, 2)
    tuning._write_first(key, {"key": key, "strategy": "sharded"})
    model.fit(X, y, epochs=1, batch_size=32, n_jobs=2, verbose=0)
    assert model.strategy_ == "sharded"
    model.fit(X, y, epochs=1, batch_size=32, n_jobs=2, verbose=0, strategy="serial")
    assert model.strategy_ == "serial"


def test_machine_identity_is_stable_and_names_the_records_folder():
    assert tuning.machine_id() == tuning.machine_id() and len(tuning.machine_id()) == 16
    assert tuning.records_dir().name == tuning.machine_id()


def test_machine_identity_does_not_depend_on_the_order_the_blas_libraries_are_listed(
        monkeypatch):
    """threadpoolctl lists NumPy's and SciPy's OpenBLAS in an order that varies between
    processes (seen beside a busy process): the identity, and so the records, must not."""
    import threadpoolctl
    libraries = [{"user_api": "blas", "internal_api": "openblas", "version": v,
                  "architecture": "SkylakeX"} for v in ("0.3.31", "0.3.30")]
    found = []
    for order in (libraries, libraries[::-1]):
        monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda order=order: order)
        found.append(tuning._blas())
    assert found[0] == found[1] and "0.3.30" in found[0] and "0.3.31" in found[0]


def test_a_short_fit_does_not_compile_a_strategy_it_cannot_repay(records, monkeypatch):
    """A parallel epoch kernel not compiled yet is chosen only when the fit is long enough
    to repay compiling it; a short fit runs serial and records nothing."""
    from fastbp import specialize
    monkeypatch.setattr(specialize, "entry_compile_seconds",
                        lambda name, dtype: 0.0 if name == "train_epoch" else 5.0)
    monkeypatch.setattr(tuning, "_serial_seconds", lambda *a: 1e-3)
    monkeypatch.setattr(tuning, "price",
                        lambda *a, **k: {"serial": 1e-3, "blas": 1e-3, "sharded": 1e-4,
                                           "columns": 2e-3})
    # 100 steps save at most 0.1 s, less than the 5 s compile: serial, nothing recorded
    assert tuning.choose((30, 40, 5), 16, np.float32, 2, steps=100) == "serial"
    assert list(records.glob("*.json")) == []
    # 100,000 steps repay it: priced, chosen and recorded
    assert tuning.choose((30, 40, 5), 16, np.float32, 2, steps=100_000) == "sharded"
    assert len(list(records.glob("*.json"))) == 1


def test_decide_records_the_choice_that_later_short_fits_run(records, monkeypatch):
    """One-epoch fits of a problem are each too short to price; after ``decide`` they all
    run the priced choice."""
    from fastbp import specialize
    monkeypatch.setattr(specialize, "entry_compile_seconds", lambda name, dtype: 5.0)
    monkeypatch.setattr(tuning, "_serial_seconds", lambda *a: 1e-3)
    monkeypatch.setattr(tuning, "price",
                        lambda *a, **k: {"serial": 1e-3, "blas": 1e-3, "sharded": 1e-4,
                                           "columns": 2e-3})
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    model = fastbp.MLP([6, 16, 3], seed=0)
    model.fit(X, y, epochs=1, batch_size=32, n_jobs=2, verbose=0)
    assert model.strategy_ == "serial" and list(records.glob("*.json")) == []
    assert tuning.decide([6, 16, 3], 32, "float32", n_jobs=2) == "sharded"
    model.fit(X, y, epochs=1, batch_size=32, n_jobs=2, verbose=0)
    assert model.strategy_ == "sharded" and len(list(records.glob("*.json"))) == 1


@pytest.mark.parametrize("args,match", [(([784, 0, 10], 32), "layer sizes"),
                                        (([784, 10], 0), "batch_size"),
                                        (([784, 10], 32, "int8"), "dtype"),
                                        (([784, 10], 32, "float32", 0), "n_jobs")])
def test_decide_refuses_bad_arguments_before_pricing(records, monkeypatch, args, match):
    monkeypatch.setattr(tuning, "price", lambda *a, **k: pytest.fail("priced"))
    with pytest.raises(ValueError, match=match):
        tuning.decide(*args)
    assert list(records.iterdir()) == []
