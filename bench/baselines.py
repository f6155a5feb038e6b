"""One-epoch runners for every implementation in the benchmarks.

Each ``*_epoch(row, ...)`` builds the model and data of a grid row and returns a
callable that trains one epoch (minibatch SGD, lr 0.01, momentum 0.9, reshuffled).
Optional packages are imported inside, so a missing one only skips its cases.
"""
import warnings

import numpy as np

import fastbp
from bench.grid import LR, MOMENTUM, case, make_data


def fastbp_epoch(row, strategy="auto", n_jobs=None):
    sizes, batch, _ = case(row)
    X, y = make_data(row)
    model = fastbp.MLP(sizes, activation="relu", seed=0)
    opt = fastbp.optim.SGD(lr=LR, momentum=MOMENTUM)
    if strategy == "auto":
        # what a fit of many epochs runs: the choice priced and recorded for this machine
        # (timed one epoch at a time, each fit alone is too short to price and runs serial)
        from fastbp import tuning
        tuning.decide(sizes, batch, "float32", n_jobs)

    def epoch():
        model.fit(X, y, optimizer=opt, epochs=1, batch_size=batch, verbose=0, n_jobs=n_jobs,
                  strategy=strategy)
    epoch.model = model
    return epoch


def numpy_epoch(row):
    """The straightforward per-step NumPy implementation (float32, BLAS via ``@``)."""
    sizes, batch, n = case(row)
    X, y = make_data(row)
    rng = np.random.default_rng(0)
    Ws = [rng.uniform(-1, 1, (a, b)).astype(np.float32) * np.float32(np.sqrt(6 / (a + b)))
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(b, np.float32) for b in sizes[1:]]
    vW = [np.zeros_like(W) for W in Ws]
    vb = [np.zeros_like(b) for b in bs]
    onehot = np.eye(sizes[-1], dtype=np.float32)[y]

    def epoch():
        perm = rng.permutation(n)
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            acts = [X[idx]]
            for i, (W, b) in enumerate(zip(Ws, bs)):
                z = acts[-1] @ W + b
                if i < len(Ws) - 1:
                    acts.append(np.maximum(z, 0))
                else:
                    e = np.exp(z - z.max(axis=1, keepdims=True))
                    acts.append(e / e.sum(axis=1, keepdims=True))
            delta = (acts[-1] - onehot[idx]) / len(idx)
            for i in range(len(Ws) - 1, -1, -1):
                gW, gb = acts[i].T @ delta, delta.sum(axis=0)
                if i > 0:
                    delta = (delta @ Ws[i].T) * (acts[i] > 0)
                vW[i] = MOMENTUM * vW[i] - LR * gW
                vb[i] = MOMENTUM * vb[i] - LR * gb
                Ws[i] += vW[i]
                bs[i] += vb[i]
    return epoch


def sklearn_epoch(row):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    sizes, batch, _ = case(row)
    X, y = make_data(row)
    clf = MLPClassifier(hidden_layer_sizes=sizes[1:-1], solver="sgd", momentum=MOMENTUM,
                        nesterovs_momentum=False, learning_rate_init=LR, batch_size=batch,
                        max_iter=1, alpha=0, tol=0, n_iter_no_change=10 ** 9, random_state=0)
    classes = np.arange(sizes[-1])

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.partial_fit(X, y, classes=classes)
    return epoch


def torch_network(sizes, hidden="relu"):
    import torch
    act = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh}[hidden]
    layers = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [torch.nn.Linear(a, b), act()]
    layers.append(torch.nn.Linear(sizes[-2], sizes[-1]))
    return torch.nn.Sequential(*layers)


def torch_epoch(row, threads=None):
    """nn.Sequential + CrossEntropyLoss + SGD(momentum); ``threads`` None = torch's default."""
    import torch
    sizes, batch, n = case(row)
    X, y = make_data(row)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    torch.manual_seed(0)
    net = torch_network(sizes)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    default = torch.get_num_threads()

    def epoch():
        previous = torch.get_num_threads()
        torch.set_num_threads(threads or default)
        try:
            perm = torch.randperm(n)
            for start in range(0, n, batch):
                idx = perm[start:start + batch]
                opt.zero_grad()
                loss_fn(net(Xt[idx]), yt[idx]).backward()
                opt.step()
        finally:
            torch.set_num_threads(previous)
    return epoch


def jax_params(sizes, seed=0):
    """Glorot-uniform weights and zero biases as a list of ``(W, b)`` float32 arrays."""
    import jax.numpy as jnp
    rng = np.random.default_rng(seed)
    return [(jnp.asarray(rng.uniform(-1, 1, (a, b)).astype(np.float32)
                         * np.float32(np.sqrt(6 / (a + b)))), jnp.zeros(b, jnp.float32))
            for a, b in zip(sizes[:-1], sizes[1:])]


def jax_loss(hidden="relu"):
    """Mean softmax cross-entropy of integer labels, the hidden layers ``hidden``."""
    import jax
    import jax.numpy as jnp
    act = {"relu": jax.nn.relu, "tanh": jnp.tanh}[hidden]

    def loss(params, x, y):
        for W, b in params[:-1]:
            x = act(x @ W + b)
        W, b = params[-1]
        logp = jax.nn.log_softmax(x @ W + b)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
    return loss


def jax_epoch(row):
    """The whole epoch as one jitted ``lax.scan`` over the shuffled minibatches.

    SGD with momentum (``v = μv - lr·g``, ``p += v``) on donated buffers; a
    last, smaller minibatch (when the batch size does not divide the rows) is
    one more jitted step, compiled in the warm-up like the scan.
    """
    import jax
    import jax.numpy as jnp
    sizes, batch, n = case(row)
    X, y = make_data(row)
    Xj, yj = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    grad = jax.grad(jax_loss())

    def step(carry, idx):
        params, velocity = carry
        g = grad(params, Xj[idx], yj[idx])
        velocity = jax.tree_util.tree_map(lambda v, d: MOMENTUM * v - LR * d, velocity, g)
        params = jax.tree_util.tree_map(lambda p, v: p + v, params, velocity)
        return (params, velocity), None

    scan_epoch = jax.jit(lambda carry, batches: jax.lax.scan(step, carry, batches)[0],
                         donate_argnums=0)
    last_step = jax.jit(lambda carry, idx: step(carry, idx)[0], donate_argnums=0)
    params = jax_params(sizes)
    state = {"carry": (params, jax.tree_util.tree_map(jnp.zeros_like, params))}
    rng = np.random.default_rng(0)
    full = n // batch

    def epoch():
        perm = rng.permutation(n).astype(np.int32)
        carry = scan_epoch(state["carry"], perm[:full * batch].reshape(full, batch))
        if full * batch < n:
            carry = last_step(carry, perm[full * batch:])
        state["carry"] = jax.block_until_ready(carry)
    return epoch


# SC: 24-8-2, tanh hidden, batch 200, one loss + gradient evaluation (no update).
SC_SIZES, SC_BATCH = (24, 8, 2), 200


def sc_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((SC_BATCH, SC_SIZES[0]), dtype=np.float32), \
        rng.integers(0, SC_SIZES[-1], SC_BATCH)


def sc_fastbp_kernel():
    """The ``forward_backward`` entry kernel called directly, on prepared buffers."""
    from fastbp import specialize
    X, y = sc_data()
    model = fastbp.MLP(SC_SIZES, activation="tanh", seed=0)
    Y = model.network.check_targets(y, SC_BATCH)
    from fastbp.kernels import records as R
    acts, zs, deltas = model.network.layout.workspace(SC_BATCH, model.dtype)
    work = R.workspace(acts, zs, deltas, grads=np.empty_like(model.params))
    network = model.network.record(model.network.functions())
    settings = R.l2_only(model.dtype)
    forward_backward = specialize.entry("forward_backward", model.dtype)
    return lambda: forward_backward(network, settings, X, Y, float(SC_BATCH), work)


def sc_fastbp_api():
    """``MLP.loss_and_grad``, input checks and a new gradient array included."""
    X, y = sc_data()
    model = fastbp.MLP(SC_SIZES, activation="tanh", seed=0)
    return lambda: model.loss_and_grad(X, y)


def sc_torch():
    import torch
    X, y = sc_data()
    torch.manual_seed(0)
    net = torch_network(SC_SIZES, hidden="tanh")
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def loss_grad():
        net.zero_grad()
        loss_fn(net(Xt), yt).backward()
    return loss_grad


def sc_jax():
    """One jitted ``value_and_grad`` of the SC network."""
    import jax
    import jax.numpy as jnp
    X, y = sc_data()
    Xj, yj = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    params = jax_params(SC_SIZES)
    loss_grad = jax.jit(jax.value_and_grad(jax_loss("tanh")))
    return lambda: jax.block_until_ready(loss_grad(params, Xj, yj))
