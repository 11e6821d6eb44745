"""Data a user has: explicit splits, ``.npz`` image arrays and torch ``Dataset`` objects.

These helpers turn each source into plain arrays (and, where the source fixes
them, split indices) for :class:`~evomal_sr.data.tasks.Task`:

* :func:`check_split` validates ``(train_idx, val_idx, test_idx)``;
* :func:`load_npz` reads keys ``X`` / ``y`` (optional ``X_test`` / ``y_test``);
* :func:`materialise` turns a map-style ``Dataset`` into arrays. It is always
  materialised in memory (there is no streamed path): a dataset larger than
  :data:`MAX_DATASET_BYTES` is refused with a :class:`TaskError` saying so.

Examples
--------
>>> import numpy as np
>>> parts = check_split(([0, 1, 2], [3], [4]), 5)
>>> [p.tolist() for p in parts.values()]
[[0, 1, 2], [3], [4]]
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from evomal_sr.data.arrays import infer_kind
from evomal_sr.data.csv import read_csv
from evomal_sr.data.splits import check_task_seed, dataset_split
from evomal_sr.errors import TaskError

#: Largest dataset (features, float32 bytes) :func:`materialise` holds in memory.
MAX_DATASET_BYTES = 4 << 30
#: Fraction of the non-test rows used for validation when a source gives no validation rows.
VAL_FRACTION = 0.25
_SPLITS = ("train", "val", "test")


def check_split(split, n_rows: int) -> dict[str, np.ndarray]:
    """``{"train", "val", "test"}`` row indices from ``(train_idx, val_idx, test_idx)``.

    Each part must be a non-empty 1-D sequence of integer indices in ``[0, n_rows)``,
    with no index repeated within or across the parts (rows left out are unused).

    Examples
    --------
    >>> check_split(([0, 1], [1], [2]), 3)
    Traceback (most recent call last):
    ...
    evomal_sr.errors.TaskError: split: row 1 is in both train and val; the parts must not overlap
    """
    if isinstance(split, dict):
        split = tuple(split.get(s) for s in _SPLITS)
    if not isinstance(split, (tuple, list)) or len(split) != 3:
        raise TaskError("split must be (train_idx, val_idx, test_idx): three sequences of row indices")
    parts, owner = {}, {}
    for name, part in zip(_SPLITS, split):
        index = np.asarray([] if part is None else part)
        if hasattr(part, "detach"):
            index = part.detach().cpu().numpy()
        if index.ndim != 1 or index.size == 0 or index.dtype.kind not in "iu":
            raise TaskError(f"split: the {name} part must be a non-empty 1-D sequence of integer row indices")
        bad = index[(index < 0) | (index >= n_rows)]
        if bad.size:
            raise TaskError(f"split: {name} index {int(bad[0])} is out of range for {n_rows} rows")
        for i in index.tolist():
            if i in owner:
                where = "twice in " + name if owner[i] == name else f"in both {owner[i]} and {name}"
                raise TaskError(f"split: row {i} is {where}; the parts must not overlap")
            owner[i] = name
        parts[name] = index.astype(np.int64)
    return parts


def split_off_val(n_fit: int, n_test: int, y: np.ndarray, kind: str, seed: int) -> tuple:
    """Split rows ``0..n_fit-1`` into train / validation (seeded, stratified); test is ``n_fit..``."""
    from sklearn.model_selection import train_test_split

    rows = np.arange(n_fit)
    strat = y[:n_fit] if kind == "classification" else None
    try:
        train, val = train_test_split(rows, test_size=VAL_FRACTION, random_state=seed, stratify=strat)
    except ValueError as exc:
        raise TaskError(f"cannot split {n_fit} rows into train/validation: {exc}") from None
    return train, val, np.arange(n_fit, n_fit + n_test)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays ``X``, ``y`` and optional ``X_test``, ``y_test`` of an ``.npz`` file (no pickles).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> np.savez(path, X=np.zeros((4, 2, 2)), y=np.arange(4))
    >>> sorted(load_npz(path))
    ['X', 'y']
    """
    path = Path(path)
    if not path.is_file():
        raise TaskError(f"npz file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise TaskError(f"cannot read npz file {path}: {str(exc).splitlines()[0][:200]}") from None
    for key in ("X", "y"):
        if key not in arrays:
            raise TaskError(
                f"npz file {path} has no array {key!r} (it needs X and y; keys: "
                f"{', '.join(sorted(arrays)[:20]) or 'none'})"
            )
    if ("X_test" in arrays) != ("y_test" in arrays):
        raise TaskError(f"npz file {path}: give both X_test and y_test, or neither")
    if "X_test" in arrays and arrays["X_test"].shape[1:] != arrays["X"].shape[1:]:
        raise TaskError(
            f"npz file {path}: X_test examples have shape {arrays['X_test'].shape[1:]}, "
            f"X examples {arrays['X'].shape[1:]}"
        )
    return {k: arrays[k] for k in ("X", "y", "X_test", "y_test") if k in arrays}


def materialise(dataset, what: str = "dataset") -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` arrays of a map-style torch ``Dataset`` whose items are ``(x, y)`` pairs.

    Raises
    ------
    TaskError
        Not map-style (no ``len`` / indexing), empty, items that are not pairs,
        inconsistent item shapes, or too large for memory (:data:`MAX_DATASET_BYTES`).

    Examples
    --------
    >>> import torch
    >>> from torch.utils.data import TensorDataset
    >>> X, y = materialise(TensorDataset(torch.zeros(3, 2), torch.arange(3)))
    >>> X.shape, y.tolist()
    ((3, 2), [0, 1, 2])
    """
    try:
        n = len(dataset)
    except TypeError:
        raise TaskError(
            f"{what} must be a map-style Dataset (with len() and indexing); an IterableDataset is not supported"
        ) from None
    if n == 0:
        raise TaskError(f"{what} is empty")
    first = _item(dataset, 0, what)
    size = math.prod(first[0].shape) * 4 * n
    if size > MAX_DATASET_BYTES:
        raise TaskError(
            f"{what} needs about {size / 2**30:.1f} GiB as float32 tensors, more than the "
            f"{MAX_DATASET_BYTES / 2**30:.0f} GiB evomal-sr materialises; there is no streamed "
            "path: subsample it or use smaller images"
        )
    xs, ys = [first[0]], [first[1]]
    for i in range(1, n):
        x, y = _item(dataset, i, what)
        if x.shape != first[0].shape or y.shape != first[1].shape:
            raise TaskError(
                f"{what}: item {i} has shapes x {list(x.shape)}, y {list(y.shape)}, but item 0 "
                f"has x {list(first[0].shape)}, y {list(first[1].shape)}"
            )
        xs.append(x)
        ys.append(y)
    return np.stack(xs), np.stack(ys)


def _item(dataset, i: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        item = dataset[i]
    except Exception as exc:
        raise TaskError(f"{what}[{i}] failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise TaskError(f"{what}[{i}] must be an (x, y) pair, got {type(item).__name__}")
    x, y = (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v) for v in item)
    return x, y


def npz_arrays(path: str | Path, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """``X, y`` of an ``.npz`` file for :meth:`Task.from_npz`; sets its default name, source and split in ``options``.

    With ``X_test``/``y_test`` the test rows are appended and, unless ``options`` has a
    ``split``, 25 % of the ``X`` rows (seeded, stratified) become the validation split.
    """
    arrays = load_npz(path)
    X, y = arrays["X"], arrays["y"]
    options.setdefault("name", Path(path).stem)
    options.setdefault("source", {"type": "npz", "path": str(Path(path).resolve())})
    if "X_test" in arrays:
        n_fit, n_test = len(X), len(arrays["X_test"])
        X, y = np.concatenate([X, arrays["X_test"]]), np.concatenate([y, arrays["y_test"]])
        if "split" not in options:
            kind = options.get("kind") or infer_kind(y)
            encoded = np.unique(y.reshape(len(y), -1)[:, 0], return_inverse=True)[1]
            options["split"] = split_off_val(n_fit, n_test, encoded, kind, check_task_seed(options.get("seed", 0)))
    return X, y


def dataset_arrays(train, val, test, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """``X, y`` of torch datasets for :meth:`Task.from_dataset`; sets its default name and split in ``options``."""
    parts = [materialise(d, name) for d, name in ((train, "train"), (val, "val"), (test, "test")) if d is not None]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if "split" not in options and (val is not None or test is not None):
        options["split"] = dataset_split(
            [len(p[0]) for p in parts],
            val is not None,
            test is not None,
            y,
            options.get("kind"),
            check_task_seed(options.get("seed", 0)),
        )
    options.setdefault("name", "dataset")
    return X, y


def csv_arrays(path: str | Path, *, target, kind: str | None, features, drop) -> tuple:
    """``X, y, feature names, source`` of a CSV file for :meth:`Task.from_csv` (``source`` lets it be re-opened)."""
    X, y, names = read_csv(path, target=target, features=features, drop=drop)
    if kind == "regression" and y.dtype.kind != "f":
        raise TaskError(
            f"target column {target!r} is not numeric, so it cannot be a regression target; use kind='classification'"
        )
    source = {
        "type": "csv",
        "path": str(Path(path).resolve()),
        "target": target if isinstance(target, str) else ",".join(target),
        "features": names,
        **({"kind": kind} if kind else {}),
    }
    return X, y, names, source
