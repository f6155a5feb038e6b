"""The command line end to end, through subprocesses."""
import csv
import subprocess
import sys

import numpy as np
import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "fastbp", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def ok(*args, cwd=None):
    result = run(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def user_error(*args, match):
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastbp: error:"), result.stderr
    assert match in lines[0], lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((240, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "up", "down")
    with open(d / "train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "kind", "c"])
        for row, label in zip(X, labels):
            w.writerow([row[0], row[1], label, row[2]])
    np.savez(d / "reg.npz", X=X, y=X[:, 0] * 2.0 - X[:, 2] + 0.5)
    np.savez(d / "features.npz", X=X[:5])
    np.savez(d / "big.npz", X=X, y=1000 * (X[:, 0] * 2.0 - X[:, 2]) + 5000)
    return d


def test_train_on_a_csv_with_a_named_string_target_then_predict_and_info(files):
    model = files / "kind.fastbp"
    out = ok("train", files / "train.csv", "--target", "kind", "--hidden", "16", "--epochs", 40,
             "--lr", "0.01", "--out", model, "--plot", files / "curves.png")
    assert "classification: 192 training / 48 test samples, 2 classes" in out
    accuracy = float(out.split("test accuracy: ")[1].split()[0])
    assert accuracy > 0.9
    assert (files / "curves.png").read_bytes()[:4] == b"\x89PNG"
    preds = ok("predict", model, files / "train.csv").split()
    assert preds[0] == "prediction" and set(preds[1:]) <= {"up", "down"} and len(preds) == 241
    proba = ok("predict", model, files / "train.csv", "--proba", "--out", files / "p.csv")
    assert "240 predictions" in proba
    rows = list(csv.reader(open(files / "p.csv")))
    assert rows[0] == ["p_down", "p_up"]
    assert np.allclose(np.array(rows[1:], dtype=float).sum(axis=1), 1, atol=1e-5)
    info = ok("info", model)
    assert "MLP(3-16[relu]-2[softmax]" in info and "classes: down, up" in info
    assert "history: 40 epochs" in info


def test_train_regression_from_npz_and_an_embedded_and_a_synthetic_set(files):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=2) as pool:  # three independent runs, two at a time
        reg, iris, synthetic = pool.map(lambda args: ok(*args), [
            ("train", files / "reg.npz", "--hidden", "32", "--epochs", 60, "--lr", "0.01",
             "--out", files / "reg.fastbp"),
            ("train", "iris", "--epochs", 5, "--hidden", "8"),
            ("train", "synthetic", "--make-classification", "300,6,3", "--epochs", 3)])
    assert "regression:" in reg and float(reg.split("test r2: ")[1].split()[0]) > 0.8
    preds = ok("predict", files / "reg.fastbp", files / "features.npz").split()
    assert len(preds) == 6
    assert "classification: 120 training / 30 test samples, 3 classes" in iris
    assert "classification: 240 training / 60 test samples, 3 classes" in synthetic


def test_a_regression_target_in_large_units_is_learnt_and_predicted_in_its_units(files):
    out = ok("train", files / "big.npz", "--hidden", "32", "--epochs", 60, "--lr", "0.01",
             "--out", files / "big.fastbp")
    assert float(out.split("test r2: ")[1].split()[0]) > 0.8
    data = np.load(files / "big.npz")
    ok("predict", files / "big.fastbp", files / "big.npz", "--out", files / "big.csv")
    preds = np.loadtxt(files / "big.csv", skiprows=1)
    y = data["y"]
    assert 1 - np.sum((preds - y) ** 2) / np.sum((y - y.mean()) ** 2) > 0.8


def test_default_batch_keeps_enough_steps_per_epoch_on_small_data():
    # 108 fitting rows: the default batch is 6, not 64 (2 steps per epoch underfit: 0.83)
    out = ok("train", "iris")
    assert float(out.split("test accuracy: ")[1].split()[0]) >= 0.9


def each_user_error(*cases):
    """``user_error`` of every ``(args, match)``, two processes at a time."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda case: user_error(*case[0], match=case[1]), cases))


def test_user_mistakes_print_one_line_and_exit_2(files):
    (files / "broken.fastbp").write_bytes(b"not a model")
    each_user_error(
        (("train", files / "missing.csv"), "no such file"),
        (("train", files / "train.csv", "--target", "nope"), "no column 'nope'"),
        (("train", files / "train.csv", "--target", "a"), "'kind'"),  # strings as features
        (("train", files / "train.csv", "--target", "kind", "--hidden", "16,x"), "--hidden"),
        (("train", "synthetic"), "--make-classification"),
        (("train", "digits", "--target", "x"), "digits is neither"),
        (("train", "iris", "--patience", "3", "--val-fraction", "0"),
         "--patience stops on the validation loss: it needs --val-fraction > 0"),
        (("info", files / "broken.fastbp"), "not a readable fastbp model"))
    ok("train", files / "reg.npz", "--epochs", 1, "--out", files / "r1.fastbp")
    np.savez(files / "wide.npz", X=np.zeros((3, 7)))
    each_user_error(
        (("predict", files / "r1.fastbp", files / "wide.npz"), "7 features"),
        # a model trained on an .npz reads every CSV column as a feature: 'kind' is text
        (("predict", files / "r1.fastbp", files / "train.csv"), "not a number"))


def test_version_and_every_option_documented_with_its_default():
    assert ok("--version").strip() == f"fastbp {__import__('fastbp').__version__}"
    from fastbp.cli.parser import build_parser
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, parser in commands.items():
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings[0]} has no help"
    text = ok("train", "--help")
    for shown in ("(default: 20)", "(default: adam)", "(default: 0.001)", "(default: 128)",
                  "(default: 0)"):
        assert shown in text.replace("\n", " ").replace("  ", " ") or shown in text, shown


def test_options_and_output_paths_are_checked_before_any_data_is_read(tmp_path):
    """The file named is missing too: each run reports its option, so it looked at the
    option first (nothing read, nothing trained)."""
    missing = tmp_path / "missing.csv"
    each_user_error(
        (("train", missing, "--epochs", 0), "--epochs must be a positive integer"),
        (("train", missing, "--lr", -1), "--lr must be a positive number"),
        (("train", missing, "--out", tmp_path / "no" / "m.fastbp"),
         f"the directory {tmp_path / 'no'} does not exist"),
        (("train", missing, "--out", tmp_path), "is a directory"),
        (("train", missing, "--plot", tmp_path), "--plot"))
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no test file left behind


def test_a_trained_model_is_never_lost_when_its_output_becomes_unwritable(tmp_path,
                                                                           monkeypatch,
                                                                           capsys):
    """Writable when checked, gone when training ends: the model goes to a fallback file,
    one line says where, status 2; an unwritable plot after a good save: status 2, model kept."""
    import shutil
    import fastbp
    from fastbp.cli import main
    gone = tmp_path / "gone"
    gone.mkdir()
    real_fit = fastbp.MLP.fit

    def fit_then_remove(self, *args, **kwargs):
        history = real_fit(self, *args, **kwargs)
        shutil.rmtree(gone)
        return history
    monkeypatch.setattr(fastbp.MLP, "fit", fit_then_remove)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "iris", "--epochs", "2", "--out", str(gone / "m.fastbp")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the model is saved at" in err[0], err
    (fallback,) = tmp_path.glob("fastbp-model-*.fastbp")
    assert err[0].endswith(str(fallback))
    assert list(fastbp.load(fallback).layer_sizes) == [4, 128, 3]
    gone.mkdir()
    code = main(["train", "iris", "--epochs", "2", "--out", str(tmp_path / "kept.fastbp"),
                 "--plot", str(gone / "curves.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "could not write the plot" in err[0], err
    assert list(fastbp.load(tmp_path / "kept.fastbp").layer_sizes) == [4, 128, 3]


def test_bench_is_not_a_command():
    # the benchmarks run from a checkout (bench/compare.py), not from the installed command
    user_error("bench", match="invalid choice: 'bench'")


def test_ctrl_c_during_training_saves_the_completed_epochs(tmp_path):
    import signal
    out = tmp_path / "partial.fastbp"
    proc = subprocess.Popen([sys.executable, "-m", "fastbp", "train", "synthetic",
                             "--make-classification", "20000,20,3", "--hidden", "256,256",
                             "--epochs", "1000", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("epoch 2/"):
                proc.send_signal(signal.SIGINT)
                break
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted after" in err and "saved:" in err
    import fastbp
    model = fastbp.load(out)
    assert model.history_.n_epochs >= 2 and model.history_.stop_reason == "interrupted"
