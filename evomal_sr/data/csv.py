"""Reading a CSV file into arrays: header checks, delimiter sniffing, column selection, numeric parsing."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evomal_sr.errors import TaskError

#: Characters of a CSV file the delimiter is sniffed from.
SNIFF_CHARS = 65536


def read_csv(
    path: str | Path,
    *,
    target: str | Sequence[str],
    features: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a CSV file with a header row into features, target and feature names.

    The delimiter (``,``, ``;``, tab or ``|``) is sniffed from the file. The
    features are ``features`` if given, else every column that is neither a
    target nor in ``drop`` (e.g. an id column); they must be numeric. One target
    is returned as float64 when every value parses as a number, otherwise as
    strings (class labels); several targets (multi-output regression) must be
    numeric and come back as ``[N, k]``.

    Parameters
    ----------
    path : str or Path
        CSV file with a header row.
    target : str or sequence of str
        Name(s) of the target column(s); a comma-separated string works too.
    features, drop : sequence of str, optional
        Feature columns to use, or columns to leave out (not both).

    Returns
    -------
    X : ndarray of float64, shape (N, n_features)
    y : ndarray of float64 or str, shape (N,) or (N, k)
    feature_names : list of str

    Raises
    ------
    TaskError
        Missing file, no header or rows, duplicate column names, an unknown
        column, ragged rows, empty cells, or a non-numeric value (the column is
        named; at most the offending field is quoted, never other file contents).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> _ = open(path, "w").write("id;a;b;label\\n7;1;2;cat\\n8;3;4;dog\\n")
    >>> X, y, names = read_csv(path, target="label", drop=["id"])
    >>> X.tolist(), y.tolist(), names
    ([[1.0, 2.0], [3.0, 4.0]], ['cat', 'dog'], ['a', 'b'])
    """
    header, rows = _read_rows(Path(path))
    header = [h.strip() for h in header]
    _check_header(header, path)
    targets = _column_list(target, "--target")
    chosen = _column_list(features, "--features") if features is not None else None
    dropped = _column_list(drop, "--drop") if drop is not None else []
    if chosen is not None and dropped:
        raise TaskError(
            "give the feature columns (features / --features) or the columns to drop (drop / --drop), not both"
        )
    for what, names in (("target", targets), ("feature", chosen or []), ("--drop", dropped)):
        missing = [n for n in names if n not in header]
        if missing:
            raise TaskError(f"{what} column {missing[0]!r} not found in {path}{_columns_hint(header, path)}")
    clash = [n for n in (chosen or []) if n in targets]
    if clash:
        raise TaskError(f"column {clash[0]!r} cannot be both a target and a feature")
    names = chosen if chosen is not None else [h for h in header if h not in targets and h not in dropped]
    if not names:
        raise TaskError(f"{path} has no feature columns besides the target(s) {', '.join(map(repr, targets))}")
    X, labels = _parse_rows(
        rows,
        header=header,
        features=[header.index(n) for n in names],
        targets=[header.index(t) for t in targets],
        where=str(path),
    )
    if len(targets) == 1:
        y = _parse_target([row[0] for row in labels])
    else:
        y = _numeric_targets(labels, targets, str(path))
    if y.dtype.kind == "f":
        values = y.reshape(len(y), -1)
        for r, j in zip(*np.nonzero(~(np.abs(values) <= FLOAT32_MAX))):
            _check_number(values[r, j], labels[r][j], f"{path}, line {rows[r][0]}", f"target {targets[j]!r}")
    return X, y, names


#: File suffixes whose header names may be echoed in an error message.
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
#: Longest field quoted in an error message.
QUOTE_CHARS = 40


def _quote(field: str) -> str:
    """``field`` for an error message, cut to :data:`QUOTE_CHARS` characters."""
    return repr(field if len(field) <= QUOTE_CHARS else field[:QUOTE_CHARS] + "...")


def _columns_hint(header: list[str], path) -> str:
    """ "; columns are: ..." for a real CSV file with short names; else only how many there are."""
    try:
        suffix = Path(path).resolve().suffix.lower()
    except OSError:
        suffix = ""
    if suffix in CSV_SUFFIXES and len(header) <= 100 and all(len(h) <= QUOTE_CHARS for h in header):
        return f"; columns are: {', '.join(header)}"
    return f" (its header has {len(header)} column(s))"


def _check_header(header: list[str], path) -> None:
    seen: set[str] = set()
    for i, name in enumerate(header):
        if not name:
            raise TaskError(f"{path}: column {i + 1} of the header has no name")
        if name in seen:
            raise TaskError(f"{path}: the header repeats the column name {_quote(name)}; column names must be unique")
        seen.add(name)


def _column_list(names, option: str) -> list[str]:
    """Column names from a list or a comma-separated string; refuses empty or repeated names."""
    items = names.split(",") if isinstance(names, str) else list(names)
    items = [str(n).strip() for n in items]
    if not items or "" in items:
        raise TaskError(f"{option}: give one or more column names separated by commas")
    if len(set(items)) != len(items):
        raise TaskError(f"{option} names a column twice")
    return items


def _parse_rows(
    rows, *, header: list[str], features: list[int], targets: list[int], where: str
) -> tuple[np.ndarray, list[list[str]]]:
    """Float features and raw target strings of ``(line, fields)`` rows."""
    X = np.empty((len(rows), len(features)), dtype=np.float64)
    labels = []
    for r, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise TaskError(f"{where}, line {line}: {len(row)} fields, but the header has {len(header)}")
        cells = [c.strip() for c in row]
        for j in (*features, *targets):
            if not cells[j]:
                raise TaskError(f"{where}, line {line}: empty value in column {header[j]!r}")
        labels.append([cells[j] for j in targets])
        for c, j in enumerate(features):
            try:
                X[r, c] = float(cells[j])
            except ValueError:
                raise TaskError(
                    f"{where}, line {line}: non-numeric value {_quote(cells[j])} in feature column "
                    f"{header[j]!r}; features must be numbers (encode categories first)"
                ) from None
            _check_number(X[r, c], cells[j], f"{where}, line {line}", f"feature {header[j]!r}")
    return X, labels


#: Largest magnitude a value may have: the tensors a task trains on are float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def _check_number(value: float, cell: str, at: str, column: str) -> None:
    """Refuse a NaN, an infinity or a value beyond float32's range, naming the file line and column."""
    if not np.isfinite(value):
        raise TaskError(f"{at}: {column} has a NaN or infinite value ({_quote(cell)}); drop or fill that row")
    if abs(value) > FLOAT32_MAX:
        raise TaskError(
            f"{at}: {column} has the value {_quote(cell)}, beyond the +-3.4e38 range of the float32 "
            "tensors a task trains on; rescale that column or fix the value"
        )


def _numeric_targets(labels: list[list[str]], targets: list[str], where: str) -> np.ndarray:
    try:
        return np.array([[float(v) for v in row] for row in labels], dtype=np.float64)
    except ValueError:
        for row in labels:
            for name, v in zip(targets, row):
                try:
                    float(v)
                except ValueError:
                    raise TaskError(
                        f"{where}: target column {name!r} holds a non-numeric value {_quote(v)}; "
                        "several targets mean multi-output regression"
                    ) from None
        raise  # pragma: no cover


def _sniffed_reader(text: str):
    """A ``csv.reader`` over ``text`` with the delimiter sniffed from its start (``,`` if unclear)."""
    import io

    try:
        dialect = csv.Sniffer().sniff(text[:SNIFF_CHARS], delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    return csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` of the non-blank rows of ``path``."""
    # bounded read of a regular file only: a FIFO or /dev/zero must not hang or exhaust memory
    from evomal_sr.core.fileio import read_csv_text

    try:
        reader = _sniffed_reader(read_csv_text(path, TaskError))
        lines = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TaskError(f"cannot read CSV file {path}: {exc}") from None
    if not lines:
        raise TaskError(f"CSV file {path} is empty; it needs a header row and data rows")
    header, rows = lines[0][1], lines[1:]
    if not rows:
        raise TaskError(f"CSV file {path} has a header but no data rows")
    return header, rows


def _parse_target(labels: list[str]) -> np.ndarray:
    """Float64 array if every label is a number, else the labels as strings."""
    try:
        return np.array([float(v) for v in labels], dtype=np.float64)
    except ValueError:
        return np.array(labels, dtype=str)
