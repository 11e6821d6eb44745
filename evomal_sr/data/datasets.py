"""Built-in datasets (all offline) and the CSV reader behind :meth:`Task.from_csv`.

:data:`DATASETS` is the one registry of built-in datasets. Each entry is a
:class:`DatasetSpec` whose ``loader(seed)`` returns raw ``(X, y)`` NumPy arrays;
splitting, standardisation and label noise are the job of
:class:`~evomal_sr.data.tasks.Task`. Nothing here downloads anything: the
scikit-learn datasets are bundled with scikit-learn, ``mnist1d`` is generated
locally with the ``mnist1d`` package, and the rest are synthetic.

User data from arrays or CSV files is checked and encoded here too
(:func:`validate_arrays`, :func:`read_csv`, :func:`infer_kind`).

Examples
--------
>>> from evomal_sr.data.datasets import DATASETS, get_dataset
>>> sorted(DATASETS)[:3]
['breast_cancer', 'diabetes', 'digits']
>>> X, y = get_dataset("iris").load(seed=0)
>>> X.shape, y.shape
((150, 4), (150,))
"""

from __future__ import annotations

import csv
import functools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from evomal_sr.core.kinds import check_task_kind
from evomal_sr.errors import TaskError

#: Rows of the synthetic regression datasets.
SYNTHETIC_ROWS = 1000
#: Samples generated for ``mnist1d`` (the package's default ``num_samples``).
MNIST1D_SAMPLES = 5000
#: Standard deviation of the Gaussian noise added to ``sin(x)`` in ``sinusoid``.
SINUSOID_NOISE = 0.1
#: Standard deviation of the noise of ``make_friedman1``.
FRIEDMAN1_NOISE = 1.0
#: Kind inference: most distinct integer values read as class labels...
MAX_INFERRED_CLASSES = 20
#: ...and the largest fraction of rows they may make up.
MAX_CLASS_FRACTION = 0.05

Loader = Callable[[int], "tuple[np.ndarray, np.ndarray]"]


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in dataset: how to load it and what it is.

    Parameters
    ----------
    name : str
        Registry key, e.g. ``"digits"``.
    kind : str
        ``"classification"`` or ``"regression"``.
    loader : callable
        ``loader(seed) -> (X, y)``: float features ``[N, n_features]`` and targets
        ``[N]`` (class labels or real values). ``seed`` only matters for generated
        datasets.
    default_model : str
        Model used when :meth:`Task.builtin` is given ``model=None``.
    input_shape : tuple of int
        Shape of one example before flattening, used by the CNN, e.g. ``(8, 8)``
        for digits or ``(40,)`` for mnist1d. Its product is ``n_features``.
    description : str
        One line for listings.

    Examples
    --------
    >>> spec = DATASETS["digits"]
    >>> spec.kind, spec.input_shape
    ('classification', (8, 8))
    """

    name: str
    kind: str
    loader: Loader
    default_model: str = "mlp"
    input_shape: tuple[int, ...] = ()
    description: str = ""

    def load(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, y)`` as ``float64 [N, n_features]`` and ``[N]`` arrays.

        Examples
        --------
        >>> X, y = DATASETS["wine"].load(seed=0)
        >>> X.dtype, X.shape
        (dtype('float64'), (178, 13))
        """
        X, y = self.loader(int(seed))
        X = np.asarray(X, dtype=np.float64)
        X = X.reshape(len(X), -1)
        return X, np.asarray(y)


def _sklearn_bundled(name: str) -> Loader:
    """Loader for a dataset bundled with scikit-learn (``load_<name>``)."""

    def load(seed: int) -> tuple[np.ndarray, np.ndarray]:
        from sklearn import datasets as skd

        return getattr(skd, f"load_{name}")(return_X_y=True)

    load.__name__ = f"load_{name}"
    load.__qualname__ = load.__name__
    return load


def load_friedman1(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Friedman #1 regression problem: 10 uniform features, 5 of them relevant."""
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=SYNTHETIC_ROWS, n_features=10, noise=FRIEDMAN1_NOISE, random_state=seed)


def load_sinusoid(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``y = sin(x) + N(0, 0.1^2)`` with ``x ~ U(-2 pi, 2 pi)``, one feature."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2 * np.pi, 2 * np.pi, size=(SYNTHETIC_ROWS, 1))
    y = np.sin(x[:, 0]) + SINUSOID_NOISE * rng.standard_normal(SYNTHETIC_ROWS)
    return x, y


def load_mnist1d(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D generated locally (never downloaded) with the package's defaults.

    ``mnist1d.make_dataset`` seeds and draws from the global ``random`` and
    ``numpy.random`` generators; their states are saved and restored so that the
    caller's global random state is left unchanged. Results are cached per seed.
    """
    X, y = _mnist1d_cached(int(seed))
    return X.copy(), y.copy()


@functools.lru_cache(maxsize=4)
def _mnist1d_cached(seed: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - mnist1d is a dependency
        raise TaskError("the mnist1d dataset needs the 'mnist1d' package: pip install mnist1d") from exc
    args = get_dataset_args()
    args.num_samples = MNIST1D_SAMPLES
    args.seed = seed
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    X = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def _table() -> dict[str, DatasetSpec]:
    C, R, sk = "classification", "regression", _sklearn_bundled
    rows = [
        ("digits", C, sk("digits"), (8, 8), "8x8 handwritten digits, 10 classes, 1797 rows"),
        ("breast_cancer", C, sk("breast_cancer"), (30,), "breast cancer, 2 classes, 569 rows"),
        ("wine", C, sk("wine"), (13,), "wine cultivars, 3 classes, 178 rows"),
        ("iris", C, sk("iris"), (4,), "iris flowers, 3 classes, 150 rows"),
        ("mnist1d", C, load_mnist1d, (40,), "MNIST-1D, 10 classes, 5000 generated signals"),
        ("diabetes", R, sk("diabetes"), (10,), "diabetes progression, 442 rows"),
        ("friedman1", R, load_friedman1, (10,), "make_friedman1, 10 features, 1000 rows"),
        ("sinusoid", R, load_sinusoid, (1,), "y = sin(x) + noise, 1000 rows"),
    ]
    return {name: DatasetSpec(name, kind, load, "mlp", shape, text) for name, kind, load, shape, text in rows}


#: The built-in datasets, by name. Every entry's default model is ``mlp``.
DATASETS: dict[str, DatasetSpec] = _table()


def get_dataset(name: str) -> DatasetSpec:
    """Return the :class:`DatasetSpec` called ``name``; :class:`TaskError` if unknown.

    Examples
    --------
    >>> get_dataset("sinusoid").kind
    'regression'
    """
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise TaskError(f"unknown dataset {name!r}; built-in datasets are: {', '.join(sorted(DATASETS))}") from None


def read_csv(path: str | Path, *, target: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read a CSV file with a header row into features, target and feature names.

    Every column except ``target`` is a feature and must be numeric. The target
    is returned as float64 when every value parses as a number, otherwise as
    strings (class labels).

    Parameters
    ----------
    path : str or Path
        CSV file with a header row; delimiter ``,``.
    target : str
        Name of the target column.

    Returns
    -------
    X : ndarray of float64, shape (N, n_features)
    y : ndarray of float64 or str, shape (N,)
    feature_names : list of str

    Raises
    ------
    TaskError
        Missing file, no header or rows, unknown target (the columns are listed),
        ragged rows, empty cells, or a non-numeric feature value (the column is
        named).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> _ = open(path, "w").write("a,b,label\\n1,2,cat\\n3,4,dog\\n")
    >>> X, y, names = read_csv(path, target="label")
    >>> X.tolist(), y.tolist(), names
    ([[1.0, 2.0], [3.0, 4.0]], ['cat', 'dog'], ['a', 'b'])
    """
    header, rows = _read_rows(Path(path))
    header = [h.strip() for h in header]
    if target not in header:
        raise TaskError(f"target column {target!r} not found in {path}; columns are: {', '.join(header)}")
    t = header.index(target)
    names = [h for i, h in enumerate(header) if i != t]
    if not names:
        raise TaskError(f"{path} has no feature columns besides the target {target!r}")
    X, labels = _parse_rows(rows, header=header, target=t, where=str(path))
    return X, _parse_target(labels), names


def _parse_rows(rows, *, header: list[str], target: int, where: str) -> tuple[np.ndarray, list[str]]:
    """Float features and raw target strings of ``(line, fields)`` rows."""
    names = [h for i, h in enumerate(header) if i != target]
    X = np.empty((len(rows), len(names)), dtype=np.float64)
    labels = []
    for r, (line, row) in enumerate(rows):
        if len(row) != len(header):
            raise TaskError(f"{where}, line {line}: {len(row)} fields, but the header has {len(header)}")
        cells = [c.strip() for c in row]
        if "" in cells:
            raise TaskError(f"{where}, line {line}: empty value in column {header[cells.index('')]!r}")
        labels.append(cells[target])
        for c, cell in enumerate(cells[:target] + cells[target + 1 :]):
            try:
                X[r, c] = float(cell)
            except ValueError:
                raise TaskError(
                    f"{where}, line {line}: non-numeric value {cell!r} in feature column "
                    f"{names[c]!r}; features must be numbers (encode categories first)"
                ) from None
    return X, labels


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` of the non-blank rows of ``path``."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except FileNotFoundError:
        raise TaskError(f"CSV file not found: {path}") from None
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
    y = _as_numpy(y)
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


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor
        return a.detach().cpu().numpy()
    return np.asarray(a)


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
