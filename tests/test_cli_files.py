"""The command line on the files users have: written by pandas, by a spreadsheet in a
European locale, with a byte order mark, blanks, text labels, Parquet; paths that cannot
be written; a data file where a model is expected. Each case: its exit status and the
documented message (docs/cli.md, "Data files"). The CSV readers (pandas and the
fallback) read every file alike."""
from pathlib import Path

import numpy as np
import pytest

import fastbp
from fastbp.cli import main
from fastbp.cli.table import read_table

pd = pytest.importorskip("pandas")


def frame(n=120, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((n, 3)).round(4), columns=["alcohol", "ash", "hue"])
    df["kind"] = np.where(df["alcohol"] + df["ash"] > 0, "red", "white")
    return df


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    df = frame()
    df.to_csv(d / "indexed.csv")  # pandas' default: the index as a first, unnamed column
    df.to_csv(d / "excel.csv", sep=";", decimal=",", index=False)
    df.to_csv(d / "bom.csv", index=False, encoding="utf-8-sig")
    df.to_csv(d / "plain.csv", index=False)
    df.to_csv(d / "tabs.tsv", sep="\t", index=False)
    blanks = df.copy()
    blanks.loc[[3, 9], "ash"] = np.nan
    blanks.to_csv(d / "blanks.csv", index=False)
    label = df.copy()
    label.loc[5, "kind"] = ""
    label.to_csv(d / "blank_label.csv", index=False)
    single = df.copy()
    single.loc[7, "kind"] = "rose"
    single.to_csv(d / "single.csv", index=False)
    text = df.astype({"hue": object})
    text.loc[11, "hue"] = "n.a."
    text.to_csv(d / "text_feature.csv", index=False)
    return d


def run(capsys, *argv):
    """``(status, stdout, stderr lines)`` of the command line ``argv``, in this process."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err.strip().splitlines()


def one_error(lines, expected):
    errors = [line for line in lines if line.startswith("fastbp: error:")]
    assert len(errors) == 1 and expected in errors[0], lines
    assert not any("Traceback" in line for line in lines)


TRAIN = ("--epochs", 1, "--hidden", 8)


@pytest.mark.parametrize("name, note", [
    ("indexed.csv", "the first column has no name (an index, as pandas writes)"),
    ("excel.csv", "reading decimal commas"),
    ("bom.csv", None),
    ("tabs.tsv", None),
])
def test_files_written_by_pandas_and_spreadsheets_train_on_their_features(data, capsys, name,
                                                                          note):
    out = data / f"{name}.fastbp"
    status, _, err = run(capsys, "train", data / name, *TRAIN, "--out", out)
    assert status == 0, err
    if note:
        assert any(line.startswith("fastbp: note:") and note in line for line in err), err
    model = fastbp.load(out)
    assert model.feature_names_ == ["alcohol", "ash", "hue"]  # no index, no BOM in a name
    assert list(model.classes_) == ["red", "white"]


def test_a_delimiter_given_reads_what_sniffing_would_not(tmp_path, capsys):
    path = tmp_path / "pipes.csv"
    frame().to_csv(path, sep="|", index=False)
    assert run(capsys, "train", path, *TRAIN, "--delimiter", "pipe")[0] == 0
    status, _, err = run(capsys, "train", path, *TRAIN, "--delimiter", "ab")
    assert status == 2
    one_error(err, "--delimiter must be one character")


@pytest.mark.parametrize("name, expected", [
    ("blanks.csv", "missing values: 'ash' 2 rows; 2 rows in all (the first on line 5); "
                   "--dropna drops them"),
    ("blank_label.csv", "missing values: 'kind' (the target) 1 row"),
    ("single.csv", "1 class with a single row ('rose')"),
    ("text_feature.csv", "line 13, column 'hue': 'n.a.' is not a number"),
])
def test_blanks_lone_labels_and_text_features_are_refused_by_name(data, capsys, name,
                                                                  expected):
    status, _, err = run(capsys, "train", data / name, *TRAIN)
    assert status == 2
    one_error(err, expected)


def test_dropna_drops_the_rows_with_blanks_and_says_so(data, capsys):
    out = data / "dropped.fastbp"
    status, stdout, err = run(capsys, "train", data / "blanks.csv", *TRAIN, "--dropna",
                              "--out", out)
    assert status == 0, err
    assert any("dropped 2 rows with missing values, 118 left" in line for line in err), err
    assert "94 training / 24 test samples" in stdout
    status, _, err = run(capsys, "train", data / "blank_label.csv", *TRAIN, "--dropna")
    assert status == 0 and any("dropped 1 row with" in line for line in err), err


def test_text_labels_are_kept_and_predicted_in_the_original_labels(data, capsys):
    out = data / "labels.fastbp"
    assert run(capsys, "train", data / "plain.csv", "--epochs", 30, "--out", out)[0] == 0
    status, stdout, _ = run(capsys, "predict", out, data / "excel.csv")
    predictions = stdout.split()
    assert status == 0 and predictions[0] == "prediction"
    assert set(predictions[1:]) <= {"red", "white"} and len(predictions) == 121
    truth = frame()["kind"].tolist()
    assert np.mean([p == t for p, t in zip(predictions[1:], truth)]) > 0.9
    status, stdout, _ = run(capsys, "info", out)
    assert status == 0 and "classes: red, white" in stdout


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs a directory nobody can write")
@pytest.mark.parametrize("option", ["--out", "--plot", "--log"])
def test_unwritable_outputs_stop_the_command_before_training(data, capsys, option):
    status, stdout, err = run(capsys, "train", data / "plain.csv", *TRAIN, option,
                              "/proc/fastbp-output")
    assert status == 2 and stdout == ""  # nothing trained
    one_error(err, f"{option} /proc/fastbp-output cannot be written")


def test_an_output_naming_the_data_file_is_refused(data, capsys):
    status, _, err = run(capsys, "train", data / "plain.csv", *TRAIN, "--log",
                         data / "plain.csv")
    assert status == 2
    one_error(err, "an output option names the data file")


def test_a_log_that_becomes_unwritable_never_costs_the_model(tmp_path, capsys, monkeypatch):
    """The log's directory removed after the first epoch: one line says so, training goes
    on, the model is saved, the status is 2."""
    import shutil
    logs = tmp_path / "logs"
    logs.mkdir()
    from fastbp.cli import train_common
    real = train_common.EpochLog.__call__

    def first_then_remove(self, epoch, log, model):
        result = real(self, epoch, log, model)
        if epoch == 0:
            shutil.rmtree(logs)
        return result
    monkeypatch.setattr(train_common.EpochLog, "__call__", first_then_remove)
    out = tmp_path / "m.fastbp"
    status, _, err = run(capsys, "train", "iris", "--epochs", 3, "--log", logs / "h.csv",
                         "--out", out)
    assert status == 2
    one_error(err, f"could not write the log {logs / 'h.csv'}")
    assert fastbp.load(out).history_.n_epochs == 3


def test_the_log_holds_each_epoch(tmp_path, capsys):
    log = tmp_path / "h.csv"
    assert run(capsys, "train", "iris", "--epochs", 3, "--log", log)[0] == 0
    rows = pd.read_csv(log)
    assert list(rows["epoch"]) == [1, 2, 3]
    assert {"loss", "val_loss", "val_accuracy"} <= set(rows.columns)


@pytest.mark.parametrize("command", ["info", "predict"])
def test_a_data_file_where_a_model_is_expected_says_so(data, capsys, command):
    args = [data / "plain.csv"] + ([data / "plain.csv"] if command == "predict" else [])
    status, _, err = run(capsys, command, *args)
    assert status == 2
    one_error(err, "plain.csv is a data file, not a model")


def test_parquet_trains_like_the_csv(data, capsys):
    pytest.importorskip("pyarrow")
    frame().to_parquet(data / "wine.parquet")
    frame().to_parquet(data / "wine_indexed.parquet", index=True)
    out = data / "pq.fastbp"
    status, _, err = run(capsys, "train", data / "wine.parquet", *TRAIN, "--seed", 3,
                         "--out", out)
    assert status == 0, err
    csv_out = data / "csv.fastbp"
    assert run(capsys, "train", data / "plain.csv", *TRAIN, "--seed", 3, "--out",
               csv_out)[0] == 0
    assert np.array_equal(fastbp.load(out).params, fastbp.load(csv_out).params)
    status, stdout, _ = run(capsys, "predict", out, data / "wine.parquet")
    assert status == 0 and len(stdout.split()) == 121


# ------------------------------------------------------------------ the readers agree
ENGINES = ["pandas", "pandas-chunks", "python"]  # a small file: 'pandas' reads it whole


@pytest.mark.parametrize("name", ["indexed.csv", "excel.csv", "bom.csv", "tabs.tsv",
                                  "blanks.csv"])
def test_the_pandas_and_fallback_readers_read_the_same(data, name):
    a, *others = [read_table(data / name, engine=e, dropna=True) for e in ENGINES]
    for b in others:
        assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
        assert a.feature_names == b.feature_names and a.notes == b.notes
    expected = frame()
    keep = ~np.isin(np.arange(len(expected)), [3, 9]) if name == "blanks.csv" else slice(None)
    assert np.array_equal(a.X, expected[["alcohol", "ash", "hue"]].to_numpy()[keep])


@pytest.mark.parametrize("engine", ENGINES)
def test_each_reader_names_the_bad_cell_and_the_missing_ones(data, engine):
    from fastbp.cli.errors import CLIError
    with pytest.raises(CLIError, match=r"line 13, column 'hue': 'n.a.' is not a number"):
        read_table(data / "text_feature.csv", engine=engine)
    with pytest.raises(CLIError, match=r"'ash' 2 rows; 2 rows in all \(the first on line 5\)"):
        read_table(data / "blanks.csv", engine=engine)
    with pytest.raises(CLIError, match=r"line 4 has 5 fields, the header has 4"):
        path = data / f"ragged-{engine}.csv"
        path.write_text("a,b,c,y\n1,2,3,x\n4,5,6,y\n7,8,9,x,10\n")
        read_table(path, engine=engine)
    with pytest.raises(CLIError, match=r"'c' 1 row, 'y' \(the target\) 1 row; 1 row in all "
                                       r"\(the first on line 3\)"):
        path.write_text("a,b,c,y\n1,2,3,x\n4,5\n7,8,9,x\n")  # a short row: its cells missing
        read_table(path, engine=engine)


def test_the_readme_shell_example_runs_on_a_wine_file(tmp_path, capsys, monkeypatch):
    """The README's two commands, as written, on scikit-learn's wine data written by pandas
    (its index column included)."""
    from sklearn.datasets import load_wine
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("From the shell")[1].split("```bash")[1].split("```")[0]
    commands = [line.split("#")[0].split() for line in block.strip().splitlines()]
    assert [c[:2] for c in commands] == [["fastbp", "train"], ["fastbp", "predict"]]
    wine = load_wine(as_frame=True).frame
    wine["target"] = np.array(["barolo", "grignolino", "barbera"])[wine["target"]]
    wine.to_csv(tmp_path / "wine.csv")
    wine.drop(columns="target").head(7).to_csv(tmp_path / "new_wines.csv")
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, *commands[0][1:])
    assert status == 0, err
    assert len(pd.read_csv(tmp_path / "epochs.csv")) == 30
    status, stdout, _ = run(capsys, *commands[1][1:])
    assert status == 0 and stdout.split()[0] == "prediction"
    assert set(stdout.split()[1:]) <= {"barolo", "grignolino", "barbera"}
    assert len(stdout.split()) == 8


EDGE_FILES = {  # each read alike by every reader (the fallback's fast path or its cells)
    "spaces": "a,b,y\n1, 2, red\n3,4 ,white\n5,6,red\n",
    "quoted label with the delimiter": 'a,b,y\n1,2,"red, dark"\n3,4,"white"\n5,6,red\n',
    "quoted numbers": 'a,b,y\n"1",2,red\n3,"4",white\n',
    "blank line": "a,b,y\n1,2,red\n\n3,4,white\n5,6,red\n",
    "NA label": "a,b,y\n1,2,NA\n3,4,white\n5,6,red\n",
    "infinity and booleans": "a,b,y\n1,inf,red\n3,True,white\n5,False,red\n",
    "CRLF, no last line break": "a,b,y\r\n1,2,red\r\n3,4,white",
    "a long row": "a,b,y\n1,2,red\n3,4,white,9\n",
    "a short row": "a,b,y\n1,2,red\n3,4\n",
}


@pytest.mark.parametrize("name", EDGE_FILES)
def test_every_reader_reads_edge_cases_alike(tmp_path, name):
    from fastbp.cli.errors import CLIError
    path = tmp_path / "edge.csv"
    path.write_bytes(EDGE_FILES[name].encode())
    results = []
    for engine in ENGINES:
        try:
            t = read_table(path, engine=engine, dropna=True)
            results.append((t.X.tolist(), t.y.tolist(), t.notes))
        except CLIError as exc:
            results.append(str(exc))
    assert all(r == results[0] for r in results), results
