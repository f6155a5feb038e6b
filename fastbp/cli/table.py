"""Reading the data table of a command: a CSV file or, with pyarrow, a Parquet file
(:func:`read_table`), with what real files contain.

- A CSV is parsed by pandas when it is installed (the ``data`` extra): the whole
  file at once when four times it fits in memory, else in chunks of rows. Without
  pandas, NumPy's ``loadtxt`` reads a file whose feature cells are all numbers and
  a streaming reader on the ``csv`` module any other. All read the same cells as
  numbers, the same cells as missing (``NA_TEXT``, pandas' defaults) and give the
  same arrays; the features go into one float64 array allocated once.
- A UTF-8 byte order mark is skipped; the delimiter is ``--delimiter`` or the one
  (of ``,`` ``;`` tab ``|``) that splits the header and the first rows into the
  same number of fields; decimal commas (``1,5``) are read when the delimiter is
  not a comma and the numbers use them.
- A first column without a name is the index pandas writes (``to_csv``'s
  default): it is left out, with a note. Parquet's stored index columns likewise.
- Missing cells are reported by column with the number of rows; ``dropna``
  drops those rows instead.

Problems are :class:`~fastbp.cli.errors.CLIError`, naming the file, the column
and the line.
"""
import csv
import functools
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import CLIError

__all__ = ["Table", "NA_TEXT", "CSV_SUFFIXES", "PARQUET_SUFFIXES", "read_table",
           "csv_engine", "parse_delimiter"]

# the cells read as missing: pandas' default NA strings, used by both CSV readers
NA_TEXT = frozenset(["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                     "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                     "nan", "null"])
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")
_DELIMITERS = (",", ";", "\t", "|")
_NAMED_DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|",
                     "space": " "}
# the cells pandas reads as booleans (then 1 and 0), read alike by the fallback
_BOOLEANS = {"True": 1.0, "TRUE": 1.0, "true": 1.0, "False": 0.0, "FALSE": 0.0, "false": 0.0}
_CHUNK_ROWS = 1 << 18
_SNIFF_LINES = 50
_DECIMAL_COMMA = re.compile(r"-?\d+,\d+(?:[eE][-+]?\d+)?")
_DECIMAL_POINT = re.compile(r"-?\d*\.\d+(?:[eE][-+]?\d+)?")


@dataclass
class Table:
    """The columns a command uses: features ``X`` (float64, one row per data row), the
    target as text (``y``, None when not read), the feature names and the notes to
    print (an index column left out, rows dropped)."""
    X: np.ndarray
    y: object
    feature_names: list
    notes: list = field(default_factory=list)


def parse_delimiter(text):
    """``--delimiter``: one character, or tab/comma/semicolon/pipe/space (``\\t`` too)."""
    if text is None:
        return None
    value = _NAMED_DELIMITERS.get(text.lower(), text)
    if len(value) != 1 or value in "\"\r\n" or value.isalnum() or value == ".":
        raise CLIError(f"--delimiter must be one character or one of "
                       f"{', '.join(_NAMED_DELIMITERS)}, got {text!r}")
    return value


def csv_engine():
    """``'pandas'`` when pandas can be imported, else ``'python'`` (the streaming fallback)."""
    from importlib.util import find_spec
    return "pandas" if find_spec("pandas") is not None else "python"


def read_table(path, target=None, columns=None, need_target=True, delimiter=None,
               decimal=None, dropna=False, engine=None):
    """The features and target of the CSV or Parquet file ``path``.

    Parameters
    ----------
    target : str or None
        The target column (default: the last one).
    columns : list of str or None
        The feature columns (a saved model's); default: every column but the target.
    need_target : bool
        False: no target is read (``columns``, or every column, are the features).
    delimiter, decimal : str or None
        A CSV's field delimiter and decimal mark; None: found from the file.
    dropna : bool
        Drop the rows with a missing cell in a column used, instead of refusing them.
    engine : {'pandas', 'pandas-chunks', 'python'} or None
        The CSV reader (None: pandas when installed). ``'pandas'`` parses the whole
        file at once (pandas then uses several threads) when four times the file
        fits in the memory available, else in chunks (``'pandas-chunks'``: about
        the features array's memory, one thread).
    """
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        header, notes, read = _parquet(path)
    else:
        header, notes, read = _csv(path, delimiter, decimal, engine or csv_engine())
    features, target = _choose_columns(path, header, target, columns, need_target)
    X, y, missing_rows, counts = read(features, target)
    if counts:
        n_missing = int(missing_rows.sum())
        if not dropna:
            listed = ", ".join(f"{name!r}{' (the target)' if name == target else ''} "
                               f"{n} row{'s' * (n > 1)}" for name, n in counts.items())
            first = int(np.flatnonzero(missing_rows)[0])
            raise CLIError(f"{path}: missing values: {listed}; {n_missing} row"
                           f"{'s' * (n_missing > 1)} in all (the first on line {first + 2}); "
                           "--dropna drops them")
        keep = ~missing_rows
        if not keep.any():
            raise CLIError(f"{path}: every row has a missing value; nothing is left to use")
        X = X[keep]
        y = None if y is None else y[keep]
        notes.append(f"{path}: dropped {n_missing} row{'s' * (n_missing > 1)} with missing "
                     f"values, {len(X)} left")
    if len(X) == 0:
        raise CLIError(f"{path}: no data rows after the header")
    return Table(X, y, features, notes)


def _choose_columns(path, header, target, columns, need_target):
    """``(features, target)`` from the header, the target option and a model's columns."""
    seen = set()
    for position, name in enumerate(header, start=1):
        if name == "":
            raise CLIError(f"{path}: column {position} has no name")
        if name in seen:
            raise CLIError(f"{path}: the column name {name!r} appears twice")
        seen.add(name)
    if not header:
        raise CLIError(f"{path}: no columns")
    if not need_target:
        columns = header if columns is None else columns
        absent = [c for c in columns if c not in seen]
        if absent:
            raise CLIError(f"{path}: missing feature column(s) {', '.join(absent)}")
        return list(columns), None
    target = header[-1] if target is None else target
    if target not in seen:
        raise CLIError(f"{path}: no column {target!r}; the columns are {', '.join(header)}")
    features = [h for h in header if h != target]
    if not features:
        raise CLIError(f"{path}: no feature columns besides the target {target!r}")
    return features, target


# ---------------------------------------------------------------------------------- CSV
def _sample(path):
    """The first lines of a CSV as text (a byte order mark skipped)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = [line for line in (f.readline() for _ in range(_SNIFF_LINES + 1)) if line]
    except UnicodeDecodeError as exc:
        raise CLIError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); save it "
                       "as UTF-8") from None
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise CLIError(f"{path}: the file is empty")
    return lines


def _fields(line, delimiter):
    return next(csv.reader([line], delimiter=delimiter), [])


def _sniff_delimiter(path, lines):
    """The delimiter splitting the header into the most fields, and every sampled row into as
    many (a decimal comma splits rows, not the header: it is not the delimiter then)."""
    best, best_fields = ",", 1
    for candidate in _DELIMITERS:
        n = len(_fields(lines[0], candidate))
        if n > best_fields and all(len(_fields(line, candidate)) == n for line in lines[1:]):
            best, best_fields = candidate, n
    return best


def _sniff_decimal(lines, delimiter):
    """``','`` when the delimiter is not a comma and the sampled numbers use decimal commas."""
    if delimiter == ",":
        return "."
    cells = [c.strip() for line in lines[1:] for c in _fields(line, delimiter)]
    commas = any(_DECIMAL_COMMA.fullmatch(c) for c in cells)
    points = any(_DECIMAL_POINT.fullmatch(c) for c in cells)
    return "," if commas and not points else "."


def _csv(path, delimiter, decimal, engine):
    """``(header, notes, read)`` of a CSV: ``read(features, target)`` reads the columns."""
    lines = _sample(path)
    delimiter = delimiter or _sniff_delimiter(path, lines)
    decimal = decimal or _sniff_decimal(lines, delimiter)
    header = [h.strip() for h in _fields(lines[0], delimiter)]
    notes = []
    if decimal == ",":
        notes.append(f"{path}: reading decimal commas (1,5 is 1.5)")
    skip_first = len(header) > 1 and header[0] in ("", "Unnamed: 0")
    if skip_first:
        notes.append(f"{path}: the first column has no name (an index, as pandas writes): "
                     "not used as a feature")
    n_fields = len(header)
    names = header[1:] if skip_first else header

    def read(features, target):
        positions = {name: i + skip_first for i, name in enumerate(names)}
        rows = functools.partial(_count_lines, path)  # counted when a reader needs it
        whole = engine == "pandas" and _fits_whole(path)
        reader = (_read_python if engine == "python" else
                  functools.partial(_read_pandas, whole=whole))
        try:
            return reader(path, delimiter, decimal, n_fields, rows,
                          [positions[f] for f in features], features,
                          None if target is None else positions[target], target)
        except UnicodeDecodeError as exc:
            raise CLIError(f"{path}: not UTF-8 text ({exc.reason}); save it as UTF-8") from None
    return names, notes, read


def _count_bytes(path, text):
    """How many times ``text`` occurs in the file (inside quotes too)."""
    pattern, count = text.encode(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            # a delimiter of several bytes split by two blocks goes uncounted: the count
            # then differs, and the cell-by-cell reader reads the file (as correctly)
            count += block.count(pattern)
    return count


def _count_lines(path):
    """An upper bound of the data rows: the file's line breaks (the header's included),
    one more when the last line has none."""
    with open(path, "rb") as f:
        f.seek(-1, 2)
        unterminated = f.read(1) != b"\n"
    return _count_bytes(path, "\n") + unterminated


class _Filler:
    """The preallocated features, filled chunk by chunk (``rows`` grows it if the line count
    was short: old Mac line breaks), the target's cells and the missing cells."""

    def __init__(self, rows, features, has_target):
        self.X = np.empty((max(rows, 1), len(features)))
        self.features = features
        self.labels = [] if has_target else None
        self.missing = []
        self.n = 0

    def rows(self, k):
        """``(X, missing)`` views of the next ``k`` rows to fill (``missing`` has one more
        column for the target, if any)."""
        if self.n + k > self.X.shape[0]:
            self.X = np.resize(self.X, (max(2 * self.X.shape[0], self.n + k), self.X.shape[1]))
        missing = np.zeros((k, len(self.features) + (self.labels is not None)), dtype=bool)
        self.missing.append(missing)
        self.n += k
        return self.X[self.n - k:self.n], missing

    def room(self, k):
        """Up to ``k`` rows, no more than the preallocated rows left (if any are)."""
        left = self.X.shape[0] - self.n
        return min(k, left) if left > 0 else k

    def result(self, target_name):
        X = self.X[:self.n]
        width = len(self.features) + (self.labels is not None)
        missing = (np.concatenate(self.missing) if self.missing
                   else np.zeros((0, width), dtype=bool))
        names = self.features + ([target_name] if self.labels is not None else [])
        counts = {name: int(n) for name, n in zip(names, missing.sum(axis=0)) if n}
        y = None
        if self.labels is not None:
            y = (np.concatenate(self.labels) if self.labels
                 else np.array([], dtype=object))
            y[missing[:, -1]] = ""
            y = y.astype(str)
        return X, y, missing.any(axis=1), counts


def _not_a_number(path, line, name, value):
    return CLIError(f"{path}: line {line}, column {name!r}: {value!r} is not a number "
                    "(features must be numeric)")


def _fits_whole(path):
    """Whether pandas may parse the file at once: four times its size (its text, the data
    frame, the features array) fits in the memory available."""
    from ..memory import available_bytes
    available = available_bytes()
    return available is not None and 4 * path.stat().st_size < available


def _read_pandas(path, delimiter, decimal, n_fields, rows, feature_pos, features, target_pos,
                 target, whole):
    import pandas as pd
    try:
        # columns named by position: the header was read already, and a name pandas
        # would change (a blank one, spaces) cannot miss; every column parsed (usecols
        # would hide a row with too many fields); the target as Python text
        parsed = pd.read_csv(path, sep=delimiter, decimal=decimal, encoding="utf-8-sig",
                             header=None, skiprows=1, names=list(range(n_fields)),
                             na_values=sorted(NA_TEXT), keep_default_na=False,
                             dtype=None if target_pos is None else {target_pos: object},
                             chunksize=None if whole else _CHUNK_ROWS, on_bad_lines="error")
        # a whole frame is copied out in slices of rows, as chunks are: never a second
        # copy of it, and one pass over the features array
        chunks = ((parsed.iloc[i:i + _CHUNK_ROWS] for i in range(0, len(parsed), _CHUNK_ROWS))
                  if whole else parsed)
        fill = _Filler(len(parsed) if whole else rows(), features, target_pos is not None)
        start = 0
        for chunk in chunks:
            X, missing = fill.rows(len(chunk))
            numbers = [chunk[pos].dtype.kind in "fiub" for pos in feature_pos]
            bulk = all(numbers)  # parsed as numbers, NaN where missing: in one copy
            if bulk:
                X[:] = chunk[feature_pos].to_numpy(dtype=np.float64)
                missing[:, :len(features)] = np.isnan(X)
            for j, (pos, name) in enumerate(zip(feature_pos, features)):
                column = chunk[pos]
                if numbers[j]:
                    if not bulk:
                        X[:, j] = column.to_numpy(dtype=np.float64)
                        # assigned, not out=: NumPy 2.4's isnan into a strided bool view
                        # left most of it unwritten
                        missing[:, j] = np.isnan(X[:, j])
                    continue
                # text: decimal commas and booleans read as the fallback reads them
                text = column.str.replace(",", ".") if decimal == "," else column
                text = text.map(lambda v: _BOOLEANS.get(v, v))
                values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64,
                                                                        na_value=np.nan)
                missing[:, j] = column.isna().to_numpy()
                bad = np.isnan(values) & ~missing[:, j]
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise _not_a_number(path, start + i + 2, name, column.iloc[i])
                X[:, j] = values
            if target_pos is not None:
                labels = chunk[target_pos].to_numpy(dtype=object)
                missing[:, -1] = pd.isna(labels)
                fill.labels.append(labels)
            start += len(chunk)
    except pd.errors.ParserError as exc:
        raise CLIError(f"{path}: {_parser_message(exc, n_fields)}") from None
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path}: the file is empty") from None
    return fill.result(target)


def _parser_message(exc, n_fields):
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
    if found:
        return f"line {found.group(2)} has {found.group(3)} fields, the header has {n_fields}"
    return f"cannot be read as CSV ({exc})"


def _read_loadtxt(path, delimiter, decimal, n_fields, feature_pos, target_pos, target):
    """The fallback's fast path: NumPy's C reader (``np.loadtxt``), about 3x faster than
    the ``csv`` module, for files it reads as the cell-by-cell reader would: decimal
    points, every feature cell a number. None otherwise (a blank or text cell, a ragged
    row), and the cell-by-cell reader then reads the file and names what it met."""
    if decimal != ".":
        return None
    options = dict(delimiter=delimiter, skiprows=1, encoding="utf-8-sig", comments=None,
                   quotechar='"')
    try:
        with warnings.catch_warnings():  # blank lines: skipped, as both readers skip them
            warnings.simplefilter("ignore", UserWarning)
            X = np.loadtxt(path, usecols=feature_pos, dtype=np.float64, ndmin=2, **options)
            y = (np.loadtxt(path, usecols=[target_pos], dtype=str, ndmin=1, **options)
                 if target_pos is not None else None)
    except ValueError:
        return None
    # "nan", "NA" and the like are missing cells, which the cell-by-cell reader counts;
    # loadtxt does not see a row with more fields than the columns it reads
    if (np.isnan(X).any() or (y is not None and y.shape[0] != X.shape[0])
            or _count_bytes(path, delimiter) != (n_fields - 1) * (X.shape[0] + 1)):
        return None
    counts, missing = {}, np.zeros(X.shape[0], dtype=bool)
    if y is not None:
        missing = np.isin(y, sorted(NA_TEXT))
        if missing.any():
            counts[target] = int(missing.sum())
        y = np.where(missing, "", y)
    return X, y, missing, counts


def _read_python(path, delimiter, decimal, n_fields, rows, feature_pos, features, target_pos,
                 target):
    fast = _read_loadtxt(path, delimiter, decimal, n_fields, feature_pos, target_pos, target)
    if fast is not None:
        return fast
    fill = _Filler(rows(), features, target_pos is not None)
    X = missing = None  # the chunk being filled
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        next(reader)
        labels = []
        k = 0
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line, as pandas skips it
            if len(row) > n_fields:
                raise CLIError(f"{path}: line {reader.line_num} has {len(row)} fields, the "
                               f"header has {n_fields}")
            if len(row) < n_fields:  # its last cells are missing, as pandas reads it
                row += [""] * (n_fields - len(row))
            if X is None or k == len(X):
                if X is not None and fill.labels is not None:
                    fill.labels.append(np.array(labels, dtype=object))
                X, missing = fill.rows(fill.room(_CHUNK_ROWS))
                k, labels = 0, []
            for j, pos in enumerate(feature_pos):
                cell = row[pos]
                if cell in NA_TEXT:
                    X[k, j], missing[k, j] = np.nan, True
                    continue
                try:
                    X[k, j] = _BOOLEANS[cell] if cell in _BOOLEANS else float(
                        cell.replace(",", ".") if decimal == "," else cell)
                except ValueError:
                    raise _not_a_number(path, reader.line_num, features[j], row[pos]) from None
            if target_pos is not None:
                cell = row[target_pos]
                missing[k, -1] = cell in NA_TEXT
                labels.append(cell)
            k += 1
    if X is not None:
        fill.n -= len(X) - k  # the last chunk's rows not filled
        fill.missing[-1] = fill.missing[-1][:k]
        if fill.labels is not None:
            fill.labels.append(np.array(labels, dtype=object))
    return fill.result(target)


# ------------------------------------------------------------------------------ Parquet
def _parquet(path):
    """``(header, notes, read)`` of a Parquet file (needs pyarrow)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CLIError(f"{path}: reading Parquet needs pyarrow (pip install "
                       "'fastbp[data]')") from None
    try:
        schema = pq.read_schema(path)
    except Exception as exc:
        raise CLIError(f"{path}: not a readable Parquet file ({exc})") from None
    index = [n for n in schema.names if n.startswith("__index_level_")]
    notes = ([f"{path}: the stored index column(s) are not used as features"]
             if index else [])
    header = [n for n in schema.names if n not in index]

    def read(features, target):
        import pyarrow as pa
        table = pq.read_table(path, columns=features + ([target] if target else []))
        X = np.empty((table.num_rows, len(features)))
        missing = np.zeros((table.num_rows, len(features) + (target is not None)), dtype=bool)
        for j, name in enumerate(features):
            column = table.column(name)
            if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                    or pa.types.is_boolean(column.type) or pa.types.is_decimal(column.type)):
                raise CLIError(f"{path}: column {name!r} holds {column.type}, not numbers "
                               "(features must be numeric)")
            values = column.cast(pa.float64()).to_numpy()
            missing[:, j] = np.isnan(values)
            X[:, j] = values
        y = None
        if target is not None:
            cells = table.column(target).to_pylist()
            missing[:, -1] = [v is None for v in cells]
            y = np.array(["" if v is None else str(v) for v in cells], dtype=str)
        names = features + ([target] if target else [])
        counts = {n: int(c) for n, c in zip(names, missing.sum(axis=0)) if c}
        return X, y, missing.any(axis=1), counts
    return header, notes, read

