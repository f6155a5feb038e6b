"""Divergence, interruption, memory refusal, concurrency and determinism."""
import os
import signal
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fastbp
from fastbp import memory
from fastbp.optim import SGD, Adam

STRATEGIES = ["serial", "blas", "sharded", "columns"]


def regression_data(n=256, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal(n) * 100


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


# ------------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_keeps_the_parameters_from_before_the_failing_step(strategy, dtype):
    # float32 with lr 1e6: the loss of a step is still finite but its update overflows the
    # weights, so the loss check alone would leave infinite weights behind
    X, y = regression_data()
    lr = 1e6 if dtype == "float32" else 1e150
    model = fastbp.MLP([12, 32, 32, 1], output="identity", dtype=dtype, seed=0)
    with pytest.warns(RuntimeWarning, match=r"diverged at step (\d+) of epoch 1") as record:
        history = model.fit(X, y, optimizer=SGD(lr, momentum=0.9), epochs=3, batch_size=32,
                            shuffle=False, verbose=0, n_jobs=2, strategy=strategy)
    assert history.stop_reason == "diverged" and history.n_epochs == 0
    assert np.isfinite(model.params).all()
    assert np.isfinite(model._opt_state.buffers).all()
    failed = int(str(record[0].message).split("at step ")[1].split()[0]) - 1
    assert model._opt_state.step == failed
    # the same steps without the failing one, run on their own, give the same parameters
    again = fastbp.MLP([12, 32, 32, 1], output="identity", dtype=dtype, seed=0)
    if failed:
        again.fit(X[:failed * 32], y[:failed * 32], optimizer=SGD(lr, momentum=0.9),
                  epochs=1, batch_size=32, shuffle=False, verbose=0, n_jobs=2,
                  strategy=strategy)
    np.testing.assert_array_equal(model.params, again.params)


def test_adam_moments_that_overflow_count_as_divergence():
    # g² overflows float32 in Adam's second moment while the weights stay finite:
    # the update is then 0 forever, a silent stall, unless the state is checked too
    X, y = regression_data()
    model = fastbp.MLP([12, 16, 1], output="identity", seed=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        model.fit(X * 1e15, y * 1e15, optimizer=Adam(0.01), epochs=2, verbose=0)
    assert np.isfinite(model.params).all() and np.isfinite(model._opt_state.buffers).all()


def test_on_divergence_raise_gives_a_clear_error_and_finite_weights():
    X, y = regression_data()
    model = fastbp.MLP([12, 16, 1], output="identity", seed=0)
    with pytest.raises(fastbp.DivergenceError, match="smaller learning rate"):
        model.fit(X, y, optimizer=SGD(1e6), epochs=3, verbose=0, on_divergence="raise")
    assert np.isfinite(model.params).all() and model.history_.stop_reason == "diverged"
    with pytest.raises(ValueError, match="on_divergence must be"):
        model.fit(X, y, on_divergence="ignore")


def test_estimator_divergence_raises_scikit_learns_error_and_undoes_the_fit():
    X, y = regression_data()
    X, y = X.astype(np.float32), y.astype(np.float32)
    est = fastbp.MLPRegressor(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=1e6,
                              max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")  # as before the call
    est.set_params(learning_rate_init=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    before = [c.copy() for c in est.coefs_ + est.intercepts_]
    n_iter, curve = est.n_iter_, list(est.loss_curve_)
    est.set_params(learning_rate_init=1e6, warm_start=True)
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        est.fit(X, y)
    for a, b in zip(est.coefs_ + est.intercepts_, before):
        np.testing.assert_array_equal(a, b)
    assert est.n_iter_ == n_iter and est.loss_curve_ == curve


# ------------------------------------------------------------------------------- Ctrl-C
def interrupt_after(epoch_to_stop):
    """A callback that sends this process SIGINT at the end of the given epoch."""
    def callback(epoch, logs, model):
        if epoch == epoch_to_stop:
            os.kill(os.getpid(), signal.SIGINT)
    return callback


@pytest.mark.parametrize("strategy", ["serial", "columns"])
def test_ctrl_c_stops_at_a_completed_epoch_and_fit_resumes_exactly(strategy):
    X, y = np.random.default_rng(1).standard_normal((300, 8)), np.arange(300) % 3
    kwargs = dict(batch_size=32, verbose=0, n_jobs=2, strategy=strategy)
    whole = fastbp.MLP([8, 40, 3], seed=5)
    whole.fit(X, y, optimizer=Adam(0.01), epochs=6, **kwargs)

    model = fastbp.MLP([8, 40, 3], seed=5)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, optimizer=Adam(0.01), epochs=6, callbacks=[interrupt_after(2)],
                  **kwargs)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert model.history_.stop_reason == "interrupted" and model.history_.n_epochs == 3
    assert model._opt_state.step == 3 * -(-300 // 32)
    model.fit(X, y, optimizer=model.optimizer, epochs=3, **kwargs)
    np.testing.assert_array_equal(model.params, whole.params)


def test_ctrl_c_in_an_epoch_that_ends_the_fit_is_not_lost():
    X, y = np.random.default_rng(1).standard_normal((100, 4)), np.arange(100) % 2

    def interrupt_and_stop(epoch, logs, model):
        os.kill(os.getpid(), signal.SIGINT)
        return True
    model = fastbp.MLP([4, 8, 2], seed=0)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=5, verbose=0, callbacks=[interrupt_and_stop])
    assert model.history_.stop_reason == "interrupted" and model.history_.n_epochs == 1

    class Interrupted(fastbp.MLPClassifier):
        def _update_no_improvement_count(self, *args):
            super()._update_no_improvement_count(*args)
            os.kill(os.getpid(), signal.SIGINT)
    est = Interrupted(hidden_layer_sizes=(8,), random_state=0)
    with pytest.warns(UserWarning, match="interrupted by user"):
        est.partial_fit(X, y, classes=[0, 1])
    assert est.n_iter_ == 1


def test_a_model_stopped_by_divergence_saves_and_loads(tmp_path):
    # weights that grew past magnitude_limit count as divergence: they could not be loaded
    X, y = regression_data()
    model = fastbp.MLP([12, 16, 1], output="identity", seed=0)
    with pytest.warns(RuntimeWarning, match="diverged"):
        model.fit(X.astype(np.float32), y, optimizer=SGD(1e10), epochs=3, verbose=0)
    assert np.abs(model.params).max() <= np.sqrt(np.finfo(np.float32).max)
    again = fastbp.load(model.save(tmp_path / "diverged.fastbp"))
    np.testing.assert_array_equal(again.params, model.params)


def test_ctrl_c_keeps_the_last_epoch_not_the_best_one():
    # restoring the best epoch would pair its weights with the last epoch's optimizer state
    X, y = np.random.default_rng(1).standard_normal((300, 8)), np.arange(300) % 3
    model = fastbp.MLP([8, 40, 3], seed=5)
    last = {}

    def remember(epoch, logs, m):
        last["params"] = m.params.copy()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, optimizer=SGD(0.5), epochs=20, validation_fraction=0.2, verbose=0,
                  callbacks=[remember, interrupt_after(5)])
    assert len(model.history_.val_loss) == 6
    np.testing.assert_array_equal(model.params, last["params"])


def test_ctrl_c_during_a_kernel_call_leaves_weights_step_count_and_history_in_agreement():
    # the signal lands at a random moment inside a long epoch kernel; whatever the
    # moment, the model must equal a run of exactly the epochs its history records
    X = np.random.default_rng(2).standard_normal((20000, 32))
    y = np.arange(20000) % 4
    model = fastbp.MLP([32, 256, 256, 4], seed=7)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            model.fit(X, y, optimizer=SGD(0.01, momentum=0.9), epochs=10_000, batch_size=64,
                      verbose=0, strategy="serial")
    finally:
        timer.cancel()
    done = model.history_.n_epochs
    assert done >= 1 and model.history_.stop_reason == "interrupted"
    assert model._opt_state.step == done * -(-20000 // 64)
    reference = fastbp.MLP([32, 256, 256, 4], seed=7)
    reference.fit(X, y, optimizer=SGD(0.01, momentum=0.9), epochs=done, batch_size=64,
                  verbose=0, strategy="serial")
    np.testing.assert_array_equal(model.params, reference.params)


def test_estimator_ctrl_c_returns_like_scikit_learn_with_consistent_counters():
    X, y = np.random.default_rng(3).standard_normal((200, 5)), np.arange(200) % 2

    class Stop(fastbp.MLPClassifier):
        def _update_no_improvement_count(self, *args):
            super()._update_no_improvement_count(*args)
            if self.n_iter_ == 4:
                os.kill(os.getpid(), signal.SIGINT)

    est = Stop(hidden_layer_sizes=(10,), max_iter=50, random_state=0)
    with pytest.warns(UserWarning, match="interrupted by user"):
        est.fit(X, y)
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4
    assert est.t_ == 4 * 200 and est._optimizer.state.step == 4 * 1
    reference = fastbp.MLPClassifier(hidden_layer_sizes=(10,), max_iter=4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(X, y)
    for a, b in zip(est.coefs_, reference.coefs_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------- memory
def test_oversized_work_is_refused_up_front_with_the_estimate(monkeypatch):
    monkeypatch.setattr(memory, "CHECK_FROM_BYTES", 0)
    monkeypatch.setattr(memory, "available_bytes", lambda: 50 * 2 ** 20)
    with pytest.raises(MemoryError, match=r"25,055,010 parameters of 5000-5000\[relu\]-10\[softmax\]: about 95.6 MiB"):
        fastbp.MLP([5000, 5000, 10])
    with pytest.raises(MemoryError, match="fitting 50-2000-2000-10 on 500 rows: about"):
        fastbp.MLPClassifier(hidden_layer_sizes=(2000, 2000), solver="lbfgs").fit(
            np.zeros((500, 50)), np.arange(500) % 10)
    model = fastbp.MLP([50, 100, 10], seed=0)
    before = model.params.copy()
    X = np.zeros((100, 50))
    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)
    with pytest.raises(MemoryError, match=r"fitting 50-100\[relu\]-10\[softmax\] on 100 rows"
                                          r": about .* KiB"):
        model.fit(X, np.arange(100) % 10, epochs=1, verbose=0)
    assert np.array_equal(model.params, before) and model.history_ is None
    assert model.optimizer is None
    with pytest.raises(MemoryError, match="predicting 1,000 rows"):
        model.predict(np.zeros((1000, 50)))


def test_small_requests_do_not_read_the_memory_counters(monkeypatch):
    def unexpected():
        raise AssertionError("read /proc for a small request")
    monkeypatch.setattr(memory, "available_bytes", unexpected)
    model = fastbp.MLP([5, 8, 2], seed=0)
    model.fit(np.zeros((20, 5)), np.arange(20) % 2, epochs=1, verbose=0)
    assert model.predict(np.zeros((1, 5))).shape == (1,)


def test_the_estimate_counts_the_training_rows_copied_by_a_validation_split(monkeypatch):
    import fastbp.training
    model = fastbp.MLP([2000, 4, 2], seed=0)
    X = np.zeros((20000, 2000), np.float32)
    asked = []

    def record(n_bytes, what):
        asked.append(n_bytes)
        raise MemoryError(what)  # stop the fit before it allocates anything
    monkeypatch.setattr(fastbp.training, "check_fits", record)
    with pytest.raises(MemoryError):
        model.fit(X, np.arange(20000) % 2, optimizer=Adam(), batch_size=32, validation_fraction=0.1,
                  strategy="serial", verbose=0)
    estimate, = asked
    assert estimate > 18000 * 2002 * 4  # the training split alone


def test_available_memory_is_known_on_this_machine():
    available = memory.available_bytes()
    assert available is not None and 0 < available < 2 ** 50
    assert memory.format_bytes(3 * 2 ** 30) == "3.0 GiB"


# ------------------------------------------------------------------------------- threads
def test_predict_from_many_threads_on_one_model_is_correct():
    rng = np.random.default_rng(4)
    model = fastbp.MLP([20, 64, 64, 5], seed=1)
    inputs = [rng.standard_normal((n, 20)) for n in (3, 700, 5000, 1, 2048) * 4]
    expected = [model.predict_proba(x) for x in inputs]
    results = [None] * len(inputs)

    def work(i):
        for _ in range(5):
            results[i] = model.predict_proba(inputs[i])
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_fits_in_two_threads_match_the_same_fits_run_one_after_the_other():
    import scipy.linalg.cython_blas  # noqa: F401  the BLAS a first fit loads, in `before` too
    before = blas_threads()
    rng = np.random.default_rng(5)
    data = [(rng.standard_normal((2000, 30)), rng.integers(0, 3, 2000)) for _ in range(2)]

    def fit(i, out):
        model = fastbp.MLP([30, 128, 128, 3], seed=i)
        model.fit(*data[i], epochs=3, batch_size=64, verbose=0, n_jobs=2,
                  strategy=["columns", "sharded"][i])
        out[i] = model.params.copy()
    alone, together = {}, {}
    for i in range(2):
        fit(i, alone)
    threads = [threading.Thread(target=fit, args=(i, together)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        np.testing.assert_array_equal(together[i], alone[i])
    assert blas_threads() == before  # the process-wide BLAS setting comes back


def test_blas_thread_count_is_set_per_thread_and_restored():
    """Each call sets BLAS's thread count for its own thread (the process-wide setting
    does not take from other threads); a call wanting several BLAS threads runs alone
    among fastbp's calls, and a nested call never waits."""
    from fastbp._threads import kernel_threads
    from fastbp.kernels import blas_threads
    if not blas_threads.AVAILABLE:
        pytest.skip("this BLAS has no thread-local thread count")
    def setting():  # read without changing: set, then put back what was there
        previous = blas_threads.set_local(1)
        blas_threads.set_local(previous)
        return previous
    before = setting()
    first, second = kernel_threads(1, 1), kernel_threads(2, 1)
    first.__enter__()
    second.__enter__()  # single-threaded calls run side by side
    assert setting() == 1
    first.__exit__(None, None, None)  # calls end in any order, not last-in first-out
    entered = threading.Event()
    seen = []

    def alone():
        with kernel_threads(1, 2):
            entered.set()
            seen.append(setting())
    waiting = threading.Thread(target=alone)
    waiting.start()
    assert not entered.wait(0.3), "a call wanting 2 BLAS threads ran beside a running call"
    second.__exit__(None, None, None)
    waiting.join(10)
    assert seen == [2] and setting() == before
    with kernel_threads(1, 2):  # nested calls in the same thread: no wait, then restored
        with kernel_threads(1, 1):
            assert setting() == 1
        assert setting() == 2
    assert setting() == before


@pytest.mark.parametrize("backend", ["threading", "loky"])
def test_grid_search_in_parallel_threads_and_processes(backend):
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV
    X, y = np.random.default_rng(6).standard_normal((300, 6)), np.arange(300) % 3
    grid = {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-2]}

    def search(n_jobs):
        with warnings.catch_warnings(), parallel_backend(backend):
            warnings.simplefilter("ignore")
            return GridSearchCV(fastbp.MLPClassifier(max_iter=20, random_state=0), grid,
                                cv=2, n_jobs=n_jobs).fit(X, y)
    parallel, serial = search(2), search(1)
    # the work is split into the same parts in a worker thread or process: the same bits
    np.testing.assert_array_equal(parallel.cv_results_["mean_test_score"],
                                  serial.cv_results_["mean_test_score"])


def test_workqueue_threading_layer_runs_concurrent_calls_in_turn():
    # Numba's workqueue layer aborts the process on concurrent parallel launches;
    # fastbp serialises its parallel calls under it
    code = """
import threading, numpy as np, numba, fastbp
model = fastbp.MLP([20, 64, 3], seed=0)
X = np.random.default_rng(0).standard_normal((4000, 20))
want = model.predict_proba(X)
out = []
def work():
    m = fastbp.MLP([20, 64, 64, 3], seed=1)
    m.fit(X, np.arange(4000) % 3, epochs=2, batch_size=256, verbose=0, n_jobs=2,
          strategy="sharded")
    out.append(bool(np.array_equal(model.predict_proba(X), want)))
def narrow(i):  # parallel kernels set to one thread still go through the layer
    m = fastbp.MLP([20, 32, 3], seed=i)
    m.fit(X, np.arange(4000) % 3, epochs=1, batch_size=128, verbose=0, n_jobs=1,
          strategy="columns")
threads = [threading.Thread(target=work) for _ in range(3)]
threads += [threading.Thread(target=narrow, args=(i,)) for i in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
# a callback of a parallel fit predicting with another model: the turn is re-entrant
m = fastbp.MLP([20, 64, 3], seed=2)
m.fit(X, np.arange(4000) % 3, epochs=2, batch_size=256, verbose=0, n_jobs=2,
      strategy="columns", callbacks=[lambda e, logs, mm: out.append(
          bool(np.array_equal(model.predict_proba(X), want)))])
print(numba.threading_layer(), out)
"""
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["workqueue"] + ["[True,"] + ["True,"] * 3 + ["True]"]


# ------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("strategy", ["sharded", "columns"])
def test_thread_count_changes_results_only_within_float_tolerance(strategy):
    X, y = np.random.default_rng(8).standard_normal((600, 16)), np.arange(600) % 4
    params = {}
    for n_jobs in (1, 2):
        model = fastbp.MLP([16, 48, 48, 4], dtype="float64", seed=3)
        model.fit(X, y, optimizer=SGD(0.05, momentum=0.9), epochs=3, batch_size=50,
                  verbose=0, n_jobs=n_jobs, strategy=strategy)
        params[n_jobs] = model.params
    np.testing.assert_allclose(params[2], params[1], rtol=1e-9, atol=1e-12)


def fit_and_predict(strategy, n_jobs=2, seed=0):
    """Weights and predictions of a small fit (importable by a process pool's workers).

    Its products are of shapes whose OpenBLAS results change with BLAS's thread
    count (measured: 59% of the weights differ after one epoch with 1 and 2).
    """
    rng = np.random.default_rng(11)
    X, y = rng.standard_normal((800, 500)), rng.integers(0, 4, 800)
    model = fastbp.MLP([500, 128, 64, 4], seed=seed)
    model.fit(X, y, optimizer=SGD(0.05, momentum=0.9), epochs=2, batch_size=32, verbose=0,
              n_jobs=n_jobs, strategy=strategy)
    return model.params.copy(), model.predict_proba(X)


def busy(stop, ready):
    """Fits and predicts that want other thread counts, in a loop until ``stop`` is set."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((3000, 64))
    big = fastbp.MLP([64, 256, 8], seed=1)
    while not stop.is_set():
        big.predict_proba(X)  # several threads, BLAS single-threaded
        fastbp.MLP([64, 32, 8], seed=2).fit(X[:600], np.arange(600) % 8, epochs=1,
                                            verbose=0, n_jobs=2, strategy="blas")  # BLAS: 2
        ready.set()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_results_do_not_depend_on_what_runs_beside_them(strategy):
    """The same fit and predict alone, and in a thread while other threads fit and predict
    with other thread counts (BLAS ones included): the same bits."""
    alone = fit_and_predict(strategy)
    stop, ready = threading.Event(), threading.Event()
    others = [threading.Thread(target=busy, args=(stop, ready)) for _ in range(2)]
    for t in others:
        t.start()
    beside = []
    try:
        ready.wait(60)
        worker = threading.Thread(
            target=lambda: beside.extend(fit_and_predict(strategy) for _ in range(3)))
        worker.start()
        worker.join()
    finally:
        stop.set()
        for t in others:
            t.join()
    for params, predictions in beside:
        np.testing.assert_array_equal(params, alone[0])
        np.testing.assert_array_equal(predictions, alone[1])


def test_results_are_the_same_in_a_process_pool():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    alone = [fit_and_predict(s) for s in STRATEGIES]
    context = multiprocessing.get_context("spawn")  # OpenMP threads do not survive a fork
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        pooled = list(pool.map(fit_and_predict, STRATEGIES))
    for (p0, y0), (p1, y1) in zip(alone, pooled):
        np.testing.assert_array_equal(p1, p0)
        np.testing.assert_array_equal(y1, y0)


@pytest.mark.parametrize("strategy", ["sharded", "columns"])
def test_the_threads_running_the_parts_do_not_change_the_results(strategy):
    """``n_jobs`` None splits the work by the usable cores; Numba's thread count in the
    calling thread (here 1 or all) only decides how many threads run the parts."""
    import numba
    runs = []
    previous = numba.get_num_threads()
    try:
        for threads in (1, numba.config.NUMBA_NUM_THREADS):
            numba.set_num_threads(threads)
            runs.append(fit_and_predict(strategy, n_jobs=None))
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


_UPDATES = """
import sys, numpy as np
from fastbp.optim import SGD, Adam, AdamW
for dtype in (np.float64, np.float32):
    for opt in (AdamW(0.01, weight_decay=0.05), Adam(0.01),
                SGD(0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), SGD(0.05, momentum=0.9)):
        rng = np.random.default_rng(0)
        p = rng.standard_normal(1000).astype(dtype)
        state = opt.init(p, n_decay=700)
        for _ in range(20):
            opt.update(rng.standard_normal(1000).astype(dtype), state, p)
        sys.stdout.write(p.tobytes().hex() + "\\n")
"""


def test_a_process_that_compiles_the_update_rules_agrees_with_one_that_loads_them(tmp_path):
    # With FMA contraction, a float64 AdamW step compiled in the running process
    # and the same step loaded from the cache by the next one differed in the last bit.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"),
               FASTBP_CACHE_DIR=str(tmp_path / "fastbp"))
    runs = [subprocess.run([sys.executable, "-c", _UPDATES], env=env, capture_output=True,
                           text=True, timeout=600) for _ in ("compiles", "loads")]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert list(tmp_path.glob("numba/**/*optimizers*.nbi")), "the second run did not load a cache"
    compiled, loaded = (run.stdout.split() for run in runs)
    assert len(compiled) == 8 and compiled == loaded
