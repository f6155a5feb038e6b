"""Property-based checks of the kernels on random networks, data and training runs.

Each example draws a network (input 1-6 units, 0-2 hidden layers of 1-7 units,
a hidden activation per layer, 1-4 outputs), one of the legal (output, loss)
pairs, γ and the prelu slopes, a dtype and the data. The pairs and activations
are enumerated from the registries, so a new one is drawn without editing this
file. Examples are derandomized: CI runs the same ones every time.

A network's own functions are compiled per configuration (its distinct hidden
activations, output and loss; ``fastbp.specialize``), so the draws come from a
fixed catalogue of configurations, ``CONFIGS``, and each network uses exactly its
entry's hidden activations: every activation and pair is drawn, and the suite
compiles each configuration once.
"""
import copy

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from conftest import DTYPES, assert_close, reference_gammas, reference_loss_and_flat_grad
import reference as ref
import fastbp
from fastbp import architecture as arch
from fastbp.kernels.activations import ACTIVATIONS
from fastbp.kernels.losses import LOSSES
from fastbp.optim import SGD
from fastbp.strategy import STRATEGIES


def _legal(output, loss):
    try:
        arch.check_loss(output, loss)
    except ValueError:
        return False
    return True


# the public losses (the estimators' scikit-learn squared error, whose gradient is not
# that of its value, has its own checks in test_kernels and test_estimators)
PAIRS = [(output, loss) for output in arch.OUTPUT_ACTIVATIONS for loss in arch.PUBLIC_LOSSES
         if _legal(output, loss)]
HIDDEN = list(arch.HIDDEN_ACTIVATIONS)
# (output, loss, hidden activations): every pair after tanh layers and every hidden
# activation before a softmax output (the suite's usual configurations), two pairs of
# hidden activations in one network, and two networks without a hidden layer
CONFIGS = ([(output, loss, ("tanh",)) for output, loss in PAIRS]
           + [("softmax", "cross_entropy", (h,)) for h in HIDDEN]
           + [("identity", "squared_error", ("prelu", "relu")),
              ("logistic", "binary_cross_entropy", ("elu", "hard_tanh")),
              ("softmax", "cross_entropy", ()), ("identity", "squared_error", ())])
FIT_STRATEGIES = [s for s in STRATEGIES if s != "auto"]
# Pre-activations where f' jumps (the registry's kinks); elu's f'' jumps at 0 for
# every γ (f' too unless γ = 1), which the fourth-order difference also sees.
KINKS = {name: a.kinks for name, a in ACTIVATIONS.items()}
# A parameter moved by ±2h (h = 1e-4) moves no pre-activation this far in these small nets.
KINK_MARGIN = 0.02
TOLERANCE = 1e-6  # the central-difference tolerance of tests/test_gradients.py

PROPERTY = settings(deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def test_every_activation_and_loss_is_drawn_and_known_to_the_reference():
    """The draws below cover everything the library offers, and can be checked."""
    assert {o for o, _ in PAIRS} == set(arch.OUTPUT_ACTIVATIONS)
    assert {l for _, l in PAIRS} == set(arch.PUBLIC_LOSSES)
    assert {h for _, _, hidden in CONFIGS for h in hidden} == set(HIDDEN)
    z = np.linspace(-3, 3, 12).reshape(3, 4)
    for name in arch.OUTPUT_ACTIVATIONS:
        a = ref.activate(z, name, 0.3)
        ref.chain(np.ones_like(z), z, a, name, 0.3)
    rng = np.random.default_rng(0)
    for output, loss in PAIRS:
        model = fastbp.MLP([1, 4], output=output, loss=loss)
        Y = model.network.check_targets(targets(loss, 3, 4, rng), 3).astype(np.float64)
        a = ref.activate(z, output, 0.3)
        ref.loss_value(a, Y, loss)
        ref.loss_grad_a(a, Y, loss)


def targets(loss, n, k, rng):
    """Targets of the kinds ``MLP._check_targets`` accepts for ``loss`` (by its registry kind)."""
    kind = LOSSES[loss].targets
    if kind == "labels":  # labels, or rows of class probabilities
        return rng.integers(0, k, n) if rng.random() < 0.7 else rng.dirichlet(np.ones(k), n)
    if kind == "unit":  # 0/1 indicators, or soft labels
        return rng.integers(0, 2, (n, k)) if rng.random() < 0.7 else rng.uniform(0, 1, (n, k))
    if kind == "nonnegative":  # counts, zeros included
        return rng.poisson(1.0, (n, k))
    return rng.standard_normal((n, k))


@st.composite
def networks(draw):
    """Keyword arguments of an MLP, plus the seed of its data and prelu slopes."""
    output, loss, config_hidden = draw(st.sampled_from(CONFIGS))
    # every hidden activation of the entry (one alone: in one or two layers), in any order
    hidden = [h for h in config_hidden
              for _ in range(draw(st.integers(1, 2 if len(config_hidden) == 1 else 1)))]
    hidden = draw(st.permutations(hidden))
    n_hidden = len(hidden)
    sizes = ([draw(st.integers(1, 6))] + [draw(st.integers(1, 7)) for _ in range(n_hidden)]
             + [draw(st.integers(2 if output == "softmax" else 1, 4))])
    gamma = draw(st.one_of(st.none(), st.floats(0.0, 1.5)))
    return dict(layer_sizes=sizes, activation=hidden, output=output, loss=loss, gamma=gamma,
                seed=draw(st.integers(0, 2 ** 16)))


def build(net, dtype, n):
    """The model and ``n`` rows of data ``(X, y)``; prelu slopes spread over both signs."""
    model = fastbp.MLP(dtype=dtype, **net)
    rng = np.random.default_rng(net["seed"])
    for slopes in model.slopes_.values():
        slopes[...] = rng.uniform(-0.5, 1.0, slopes.shape)
    X = rng.standard_normal((n, model.layer_sizes[0]))
    return model, X, targets(model.loss, n, model.layer_sizes[-1], rng)


def forward64(model, X):
    """The reference's pre-activations and activations of ``model`` on ``X``, in float64."""
    return ref.forward(model.network.check_X(X).astype(np.float64),
                       [W.astype(np.float64) for W in model.coefs_],
                       [b.astype(np.float64) for b in model.intercepts_],
                       model.network.layout.activations, reference_gammas(model))


# ---------------------------------------------------------------- loss and gradient
@settings(PROPERTY, max_examples=200)
@given(net=networks(), dtype=st.sampled_from(DTYPES), n=st.integers(1, 7),
       l2=st.sampled_from([0.0, 0.1]))
def test_backprop_matches_reference_and_central_differences(net, dtype, n, l2):
    """``loss_and_grad`` against the NumPy chain rule in ``dtype``, then (on a float64
    copy) against fourth-order central differences of the kernel's own loss.

    Rows with a kinked unit near its kink are left out of the difference check:
    there the difference quotient straddles two slopes. Rows are independent, so
    this keeps the rest of the draw instead of rejecting it.
    """
    model, X, y = build(net, dtype, n)
    value, grad = model.loss_and_grad(X, y, l2=l2)
    expected_value, expected_grad = reference_loss_and_flat_grad(
        model, model.network.check_X(X), model.network.check_targets(y, n), l2)
    assert_close(value, expected_value, dtype, "loss")
    assert_close(grad, expected_grad, dtype, "gradient")

    zs, _ = forward64(model, X)
    smooth = np.ones(n, dtype=bool)
    for z, name in zip(zs, model.network.layout.activations):
        for kink in KINKS[name]:
            smooth &= np.all(np.abs(z - kink) > KINK_MARGIN, axis=1)
    assume(smooth.any())
    # rounding makes the difference quotient about 1e-12·|loss| off, so a gradient of
    # exactly 0 (a dead unit) reads as that noise: the floor scales with the loss
    floor = 1e-5 * max(1.0, abs(value))
    assert fastbp.check_gradients(model, X[smooth], y[smooth], l2=l2, floor=floor) <= TOLERANCE


# ---------------------------------------------------------------- prediction, evaluation
@settings(PROPERTY, max_examples=150)
@given(net=networks(), dtype=st.sampled_from(DTYPES), n=st.integers(1, 13),
       parallel=st.booleans(), chunk=st.integers(1, 5))
def test_prediction_and_evaluation_match_reference(net, dtype, n, parallel, chunk):
    """Outputs and mean loss, in chunks of ``chunk`` rows (a short last chunk),
    on one thread or spread over two."""
    import fastbp.network as M
    from fastbp import specialize
    model, X, y = build(net, dtype, n)
    _, acts = forward64(model, X)
    Y = model.network.check_targets(y, n).astype(np.float64)
    entry, calls = specialize.entry, []

    def spy(name, dtype):  # proves the parallel path ran when it should
        calls.append(name)
        return entry(name, dtype)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(M, "PREDICT_CHUNK", chunk)
        mp.setattr(M, "PARALLEL_PREDICT_MIN_MACS", 0 if parallel else 10 ** 18)
        mp.setattr(specialize, "entry", spy)
        out = model.network.forward(model.network.check_X(X))
        scores = model.evaluate(X, y)
    parallel_ran = parallel and n > chunk and numba.get_num_threads() > 1
    assert calls.count("predict_rows_parallel") == parallel_ran
    assert_close(out, acts[-1], dtype, "outputs")
    assert_close(scores["loss"], ref.loss_value(acts[-1], Y, model.loss), dtype, "loss")


# ---------------------------------------------------------------- training
OPTIMIZERS = ref.OPTIMIZER_EXAMPLES


def reference_fit(model, opt, X, Y, batch, orders):
    """The reference minibatch loop: one epoch per row order, batches in order.

    Returns the epoch losses (each batch's loss, L2 included, weighted by its
    rows) and the final parameters. Coupled decay (``opt.l2``) is in the loss
    and the weight gradient; AdamW's decoupled decay shrinks the weights only.
    """
    expected = model.astype("float64")
    p = expected.params  # the views reference_loss_and_flat_grad reads
    buffers = np.zeros((2, p.size))
    step, losses = 0, []
    for order in orders:
        total = 0.0
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            step += 1
            value, g = reference_loss_and_flat_grad(expected, X[rows], Y[rows], opt.l2)
            total += value * len(rows)
            p[...], buffers[...] = ref.optimizer_step(opt, p, g, buffers, step, model.n_coefs)
        losses.append(total / len(order))
    return losses, p


@st.composite
def batching(draw):
    """``(n_samples, batch_size)``: full batches plus a short one, or a batch larger than
    the data (no full batch)."""
    # sampled_from draws uniformly, where integers() would favour 1-row batches
    batch_size = draw(st.sampled_from(range(1, 9)))
    short = draw(st.sampled_from(range(batch_size)[::-1]))  # mostly not 0
    n = draw(st.sampled_from(range(4))) * batch_size + short
    return max(n, 1), batch_size


@settings(PROPERTY, max_examples=300)
@given(net=networks(), dtype=st.sampled_from(DTYPES), strategy=st.sampled_from(FIT_STRATEGIES),
       batching=batching(), epochs=st.integers(1, 2), shuffle=st.booleans(),
       optimizer=st.sampled_from(sorted(OPTIMIZERS)), weight_decay=st.sampled_from([0.0, 0.01]))
def test_fit_matches_reference_minibatch_loop(net, dtype, strategy, batching, epochs, shuffle,
                                              optimizer, weight_decay):
    """``fit`` with every strategy on 2 threads against the reference loop.

    Batches that leave a short last batch, a batch larger than the data (fit
    caps it), one-row batches (an empty shard), hidden layers of one unit (a
    thread without columns), the model's own shuffling replayed from a copy of
    its generator.
    """
    n, batch_size = batching
    model, X, y = build(net, dtype, n)
    opt = OPTIMIZERS[optimizer](weight_decay)
    rng = copy.deepcopy(model._rng)
    orders = [rng.permutation(n) if shuffle else np.arange(n) for _ in range(epochs)]
    Xc, Y = model.network.check_X(X), model.network.check_targets(y, n)
    losses, p = reference_fit(model, opt, Xc.astype(np.float64), Y.astype(np.float64),
                              min(batch_size, n), orders)
    # a run that blows up (exp outputs can) tests fit's divergence handling, not the kernels
    assume(np.all(np.abs(losses) < 1e4) and np.all(np.abs(p) < 1e4))
    history = model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=batch_size,
                        shuffle=shuffle, verbose=0, n_jobs=2, strategy=strategy)
    has_hidden = len(model.layer_sizes) > 2
    assert model.strategy_ == (strategy if has_hidden or strategy != "columns" else "serial")
    assert history.n_epochs == epochs
    assert_close(history.loss, losses, dtype, "epoch losses")
    assert_close(model.params, p, dtype, "parameters")


def test_columns_with_a_one_unit_upper_hidden_layer_matches_reference():
    """A hidden layer above the first with fewer units than threads: thread 0 owns
    none of it but one unit below it, whose δ it must still propagate. Two steps per
    epoch, so a δ left stale by one step would be read by the next."""
    rng = np.random.default_rng(0)
    model = fastbp.MLP([2, 2, 1, 2], activation="tanh", output="identity", dtype="float64",
                       seed=0)
    X, y = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    losses, p = reference_fit(model, SGD(0.1), X, y, 3, [np.arange(6)] * 2)
    history = model.fit(X, y, optimizer=SGD(0.1), epochs=2, batch_size=3, shuffle=False,
                        verbose=0, n_jobs=2, strategy="columns")
    assert model.strategy_ == "columns"
    assert_close(history.loss, losses, np.float64, "epoch losses")
    assert_close(model.params, p, np.float64, "parameters")
