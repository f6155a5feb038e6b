"""The worked examples of the source documents, reproduced to their printed digits."""
import numpy as np
import pytest

import fastbp

# Seed 002: a 3-2-1 network, logistic hidden and output layers, squared error.
X = np.array([[0.5, 0.1, -0.2]])
TARGET = 0.6
W_INPUT_HIDDEN = np.array([[0.5, -0.6], [0.1, -0.2], [0.1, 0.7]])
W_HIDDEN_OUTPUT = np.array([[0.1], [-0.3]])
LEARN_RATE = 0.5


def seed_002_model():
    model = fastbp.MLP([3, 2, 1], activation="logistic", output="logistic",
                       loss="squared_error", dtype="float64")
    model.coefs_[0][...] = W_INPUT_HIDDEN
    model.coefs_[1][...] = W_HIDDEN_OUTPUT
    for b in model.intercepts_:
        b[...] = 0
    return model


def seed_002_hidden_changes():
    """The input→hidden changes by the document's own formulas."""
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    hidden = sigmoid(X[0] @ W_INPUT_HIDDEN)
    output = sigmoid(hidden @ W_HIDDEN_OUTPUT[:, 0])
    output_error_term = (TARGET - output) * output * (1 - output)
    hidden_error_term = W_HIDDEN_OUTPUT[:, 0] * output_error_term * hidden * (1 - hidden)
    return LEARN_RATE * hidden_error_term * X[0][:, None]


def test_seed_002_forward_output():
    assert seed_002_model().predict(X)[0] == pytest.approx(0.48497343, abs=5e-9)


@pytest.mark.parametrize("how", ["fit", "update"])
def test_seed_002_one_sgd_step(how):
    model = seed_002_model()
    before = [W.copy() for W in model.coefs_]
    if how == "fit":
        model.fit(X, [TARGET], optimizer=fastbp.optim.SGD(lr=LEARN_RATE), epochs=1,
                  batch_size=1, shuffle=False, verbose=0)
    else:
        opt = fastbp.optim.SGD(lr=LEARN_RATE)
        state = opt.init(model.params, n_decay=model.n_coefs)
        _, grads = model.loss_and_grad(X, [TARGET])
        opt.update(grads, state, model.params)
    delta_hidden_output = model.coefs_[1][:, 0] - before[1][:, 0]
    np.testing.assert_allclose(delta_hidden_output, [0.00804047, 0.00555918], atol=5e-9)
    np.testing.assert_allclose(model.coefs_[0] - before[0], seed_002_hidden_changes(),
                               rtol=1e-10, atol=1e-15)


def test_seed_000_parameter_count():
    """8 inputs, 15 hidden, 10 outputs: 120 + 15 + 150 + 10 = 295 parameters."""
    model = fastbp.MLP([8, 15, 10])
    assert model.n_params == 295
    assert model.params.size == 295
