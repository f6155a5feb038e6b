"""The default job of ``fastbp`` (and ``python -m fastbp``) with no arguments:
:func:`main_job` trains an MLP on scikit-learn's digits and reports accuracy and time."""
import time

__all__ = ["main_job"]


def main_job():
    """Train on digits, print the model, the test scores and the fit time."""
    # imported here: `python -m fastbp train ...` needs neither scikit-learn nor the model yet
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import fastbp
    X, y = load_digits(return_X_y=True)
    X = X / 16.0  # pixel intensities 0..16 → [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)

    start = time.perf_counter()
    # a one-epoch fit on a few rows compiles the kernels (or loads them from the cache)
    fastbp.MLP([64, 128, 10], seed=0).fit(X_train[:64], y_train[:64], epochs=1, verbose=0)
    compile_time = time.perf_counter() - start

    model = fastbp.MLP([64, 128, 10], activation="relu", seed=0)
    start = time.perf_counter()
    model.fit(X_train, y_train, optimizer=fastbp.optim.Adam(lr=1e-3), epochs=40,
              batch_size=32)
    fit_time = time.perf_counter() - start
    scores = model.evaluate(X_test, y_test)
    print(f"{model}")
    print(f"digits: {X_train.shape[0]} training / {X_test.shape[0]} test samples")
    print(f"test accuracy: {scores['accuracy']:.4f}  test loss: {scores['loss']:.4f}")
    print(f"fit time: {fit_time:.3f} s for 40 epochs "
          f"(kernel compile or cache load before it: {compile_time:.1f} s)")
