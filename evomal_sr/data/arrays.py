"""Validating user arrays: shapes, finiteness, kind inference, label encoding."""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from evomal_sr.core.kinds import check_task_kind
from evomal_sr.data.csv import (  # noqa: F401  (moved; re-exported)
    CSV_SUFFIXES,
    QUOTE_CHARS,
    _check_header,
    _column_list,
    _columns_hint,
    _numeric_targets,
    _parse_rows,
    _parse_target,
    _quote,
    _read_rows,
    _sniffed_reader,
    read_csv,
)
from evomal_sr.errors import TaskError

#: Kind inference: most distinct integer values read as class labels...
MAX_INFERRED_CLASSES = 20
#: ...and the largest fraction of rows they may make up.
MAX_CLASS_FRACTION = 0.05


class ArrayData(NamedTuple):
    """Validated, encoded data returned by :func:`validate_arrays`."""

    X: np.ndarray  #: float64 ``[N, n_features]``
    y: np.ndarray  #: int64 ``[N]`` class indices, or float64 ``[N, k]`` targets
    kind: str
    classes: np.ndarray | None  #: original label of each class index
    input_shape: tuple[int, ...]
    feature_names: list[str]


def validate_arrays(X, y, *, kind: str | None = None, input_shape=None, feature_names=None) -> ArrayData:
    """Check and encode features and targets from NumPy, torch or lists.

    ``X`` is ``[N, n_features]`` or ``[N, *input_shape]`` (flattened). ``kind=None``
    infers the kind with :func:`infer_kind`. Class labels are encoded to
    ``0..C-1`` in sorted order; regression targets become ``[N, k]``.

    Raises
    ------
    TaskError
        Mismatched lengths, non-numeric or non-finite features (the column is
        named), non-finite targets, a single class, an unknown or ambiguous kind.

    Examples
    --------
    >>> d = validate_arrays([[0.0], [1.0], [2.0]], ["b", "a", "b"])
    >>> d.kind, d.y.tolist(), d.classes.tolist()
    ('classification', [1, 0, 1], ['a', 'b'])
    """
    X, shape = _check_features(X, input_shape)
    names = _feature_names(feature_names, X.shape[1])
    _check_finite(X, names)
    raw, y = y, _as_numpy(y, "y")
    _check_label_types(raw, y)
    if y.ndim == 0 or len(y) != len(X):
        raise TaskError(f"X has {len(X)} rows but y has {len(y) if y.ndim else 0}; they must match")
    kind = _check_kind(kind) if kind is not None else infer_kind(y)
    y, classes = _encode_target(y, kind)
    return ArrayData(X, y, kind, classes, shape, names)


def infer_kind(y) -> str:
    """Guess the task kind from the targets; :class:`TaskError` when ambiguous.

    Rules: several target columns -> regression; string, boolean or other
    non-numeric labels -> classification; any non-integer number -> regression.
    Integer values: exactly 2 distinct values, or at most
    :data:`MAX_INFERRED_CLASSES` (20) distinct values making up at most
    :data:`MAX_CLASS_FRACTION` (5 %) of the rows -> classification; more than 20
    distinct values making up more than 5 % of the rows -> regression; anything
    else is ambiguous (pass ``kind=``).

    Examples
    --------
    >>> infer_kind(np.array([0, 1, 1, 0])), infer_kind(np.array([0.5, 1.25, 3.0]))
    ('classification', 'regression')
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return "regression"
    y = y.reshape(-1)
    if y.dtype.kind not in "iuf":
        return "classification"
    if not np.all(np.isfinite(y)):
        raise TaskError("the target contains NaN or infinite values")
    if y.dtype.kind == "f" and np.any(y != np.round(y)):
        return "regression"
    n_unique = len(np.unique(y))
    fraction = n_unique / max(len(y), 1)
    if n_unique == 2 or (n_unique <= MAX_INFERRED_CLASSES and fraction <= MAX_CLASS_FRACTION):
        return "classification"
    if n_unique > MAX_INFERRED_CLASSES and fraction > MAX_CLASS_FRACTION:
        return "regression"
    raise TaskError(
        f"cannot tell whether the integer target ({n_unique} distinct values in {len(y)} rows) "
        "holds class labels or real values; pass kind='classification' or kind='regression'"
    )


def _check_kind(kind) -> str:
    return check_task_kind(kind, error=TaskError, hint=" (or None to infer it)")


def _as_numpy(a, what: str = "X") -> np.ndarray:
    """``a`` as an array; ragged nested lists and complex numbers are refused."""
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().numpy()
    try:
        array = np.asarray(a)
    except ValueError as exc:  # ragged nested lists ("inhomogeneous shape")
        raise TaskError(f"{what} is ragged: its rows have different lengths ({str(exc).splitlines()[0]})") from None
    if array.dtype.kind == "c" or (array.dtype.kind == "O" and any(isinstance(v, complex) for v in array.flat)):
        raise TaskError(
            f"{what} holds complex numbers; give real values (e.g. the real and imaginary parts as separate columns)"
        )
    return array


def _check_label_types(raw, y: np.ndarray) -> None:
    """Refuse labels that mix types (e.g. ``[1, "a", None]``) instead of stringifying them."""
    if isinstance(raw, (list, tuple)):
        values = [v for item in raw for v in (item if isinstance(item, (list, tuple)) else (item,))]
    elif y.dtype.kind == "O":
        values = list(y.flat)
    else:
        return
    kinds = {
        "text" if isinstance(v, str) else "number" if isinstance(v, numbers.Number) else type(v).__name__
        for v in values
    }
    if "NoneType" in kinds:
        raise TaskError("the target has missing values (None); drop or fill those rows first")
    if len(kinds) > 1:
        raise TaskError(
            f"the target mixes value types ({', '.join(sorted(kinds))}); give all labels as text or all as numbers"
        )


def _check_features(X, input_shape) -> tuple[np.ndarray, tuple[int, ...]]:
    """``X`` as float64 ``[N, n_features]`` and the per-example shape."""
    X = _as_numpy(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim < 2 or X.shape[1:].count(0) or len(X) == 0:
        raise TaskError(f"X must be a non-empty [rows, features] array, got shape {X.shape}")
    shape = tuple(int(s) for s in (input_shape or X.shape[1:]))
    X = X.reshape(len(X), -1)
    if math.prod(shape) != X.shape[1]:
        raise TaskError(f"input_shape {shape} has {math.prod(shape)} values, but X has {X.shape[1]} features")
    try:
        return X.astype(np.float64), shape
    except (TypeError, ValueError):
        pass
    for j in range(X.shape[1]):
        for i, value in enumerate(X[:, j]):
            try:
                float(value)
            except (TypeError, ValueError):
                raise TaskError(
                    f"feature column {j} holds a non-numeric value {value!r} (row {i}); encode it as numbers first"
                ) from None
    raise TaskError("X holds non-numeric values")  # pragma: no cover


def _feature_names(names, n: int) -> list[str]:
    if names is None:
        return [f"x{j}" for j in range(n)]
    names = [str(s) for s in names]
    if len(names) != n:
        raise TaskError(f"{len(names)} feature names given for {n} features")
    return names


def _check_finite(X: np.ndarray, names: list[str]) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise TaskError(
            f"feature {names[col]!r} has a NaN or infinite value (row {row}); {int(bad.sum())} such values in all"
        )


def class_names(classes: np.ndarray | None) -> list | None:
    """The original labels of the class indices, JSON-ready, or ``None`` when they are just ``0..C-1``.

    Examples
    --------
    >>> class_names(np.array(["cat", "dog"])), class_names(np.array([0.0, 1.0])), class_names(np.array([1.0, 3.0]))
    (['cat', 'dog'], None, [1, 3])
    """
    if classes is None or (classes.dtype.kind in "biuf" and np.array_equal(classes, np.arange(len(classes)))):
        return None
    if classes.dtype.kind in "iuf":
        return [int(c) if float(c).is_integer() else float(c) for c in classes]
    return [str(c) for c in classes]


#: Data rows named in an error message, at most.
ROWS_SHOWN = 5


def check_float32_splits(a: np.ndarray, splits: dict, names: list[str], what: str) -> None:
    """Refuse standardised values that become infinite as float32, in any split; the column and rows are named.

    ``a`` is ``[N, columns]`` float64 (all data rows, standardised), ``splits``
    maps a split's name to its row indices. A value beyond float32's range
    (about 3.4e38) would silently become ``inf`` in the task's tensors, in a
    validation or test row as much as in a training row.

    Raises
    ------
    TaskError
        Naming the column, the (0-based) data rows and their split.

    Examples
    --------
    >>> a = np.array([[0.0], [1e39], [2.0]])
    >>> try:
    ...     check_float32_splits(a, {"train": [0, 2], "val": [1], "test": []}, ["x0"], "feature")
    ... except TaskError as exc:
    ...     print(str(exc).split(": ")[1])
    data row 1 (val split); rescale that column or fix those values
    """
    for split, rows in splits.items():
        rows = np.asarray(rows, dtype=np.int64)
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~np.isfinite(a[rows].astype(np.float32))
        if not bad.any():
            continue
        column = int(np.flatnonzero(bad.any(axis=0))[0])
        hit = rows[bad[:, column]]
        shown = ", ".join(str(int(r)) for r in hit[:ROWS_SHOWN]) + (", ..." if len(hit) > ROWS_SHOWN else "")
        raise TaskError(
            f"{what} {names[column]!r} has {len(hit)} value(s) that overflow float32 (beyond +-3.4e38 once "
            f"standardised with the training rows' mean and spread): data row{'s' * (len(hit) > 1)} {shown} "
            f"({split} split); rescale that column or fix those values"
        )


def _encode_target(y: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Class indices ``0..C-1`` and the sorted labels, or float64 ``[N, k]`` targets."""
    if kind == "regression":
        if y.dtype.kind not in "biuf":
            raise TaskError("a regression target must be numeric")
        y = y.astype(np.float64).reshape(len(y), -1)
        if not np.all(np.isfinite(y)):
            raise TaskError(f"the target has {int((~np.isfinite(y)).sum())} NaN or infinite values")
        return y, None
    if y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise TaskError(f"class labels must be one column, got shape {y.shape}")
    y = y.reshape(-1)
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise TaskError("the class labels contain NaN or infinite values")
    if y.dtype.kind == "O":
        y = y.astype(str)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise TaskError(
            f"the target has a single class ({classes.tolist()[0]!r}); classification needs at least 2 classes"
        )
    return codes.astype(np.int64).reshape(-1), classes
