"""Splits, standardisation and label corruption of a task's rows.

Rules
-----
* **Splits.** ``sklearn.model_selection.train_test_split`` with
  ``random_state=seed``: 20 % test, then 25 % of the rest as validation (20 % of
  all rows), stratified on the class labels for classification. A task needs at
  least :data:`MIN_ROWS` rows, at least 5 rows per class overall
  (``5 * n_classes``) and :data:`MIN_PER_CLASS` rows of every class.
* **Standardisation.** Features (and regression targets) are centred and scaled
  with the mean / standard deviation of the (clean) training split; columns with
  zero variance are only centred.
* **Label noise.** Exactly ``round(label_noise * n)`` (Python's ``round``) rows of each
  corrupted split (``noisy_splits``: the training split by default, optionally the
  validation split too; test labels never), chosen with
  ``numpy.random.default_rng([seed, stream])`` (stream 1 for training, 2 for
  validation), are corrupted. Classification, ``noise="symmetric"`` (default): each
  chosen label moves to one of the *other* classes, uniformly; ``noise="pair"``: class
  ``c`` moves to ``(c + 1) mod C``; a transition matrix ``T`` (``C x C``, rows summing
  to 1) instead redraws *every* label of the split, class ``c`` becoming ``j`` with
  probability ``T[c, j]`` (``label_noise`` must then be 0). Regression: each chosen
  (standardised) target becomes an outlier ``+-U(5, 10)`` (random sign),
  :data:`OUTLIER_RANGE`; ``target_noise="student_t"`` adds heavy-tailed noise to every
  row (see :mod:`evomal_sr.data.noise`). :attr:`Task.noisy_mask` marks the corrupted
  training rows, :attr:`Task.noisy_mask_val` the corrupted validation rows.
* **Kind inference** (``kind=None``), on the target column: string or boolean
  labels -> classification; any non-integer number -> regression; integer values
  with exactly 2 distinct values, or at most 20 distinct values making up at most
  5 % of the rows -> classification; more than 20 distinct values making up
  more than 5 % of the rows -> regression; anything else is ambiguous and raises
  :class:`TaskError` asking for ``kind=``.
"""

from __future__ import annotations

import hashlib
import numbers

import numpy as np

from evomal_sr.core.validation import check_seed
from evomal_sr.data.arrays import infer_kind
from evomal_sr.errors import TaskError


# ---------------------------------------------------------------- validation
def check_task_seed(seed) -> int:
    """A task's seed as an int, or :class:`TaskError` naming the bad value.

    Examples
    --------
    >>> check_task_seed(3)
    3
    """
    return check_seed(seed, error=TaskError)


#: Fractions of the rows in the train, validation and test splits.
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
#: Fewest rows a task may have.
MIN_ROWS = 10
#: Fewest rows of each class (so every split can hold one, stratified).
MIN_PER_CLASS = 3
#: Regression label noise: outliers of magnitude ``U(low, high)`` standardised units.
OUTLIER_RANGE = (5.0, 10.0)
SPLITS = ("train", "val", "test")


def check_label_noise(label_noise) -> float:
    """``label_noise`` as a float in ``[0, 1)``, or :class:`TaskError` naming the bad value.

    Examples
    --------
    >>> check_label_noise(0.2)
    0.2
    """
    if isinstance(label_noise, bool) or not isinstance(label_noise, numbers.Real):
        raise TaskError(f"label_noise must be a number in [0, 1), got {label_noise!r}")
    value = float(label_noise)
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise TaskError(f"label_noise must be in [0, 1) (a fraction of training labels), got {label_noise!r}")
    return value


def split_rows(y: np.ndarray, kind: str, seed: int) -> dict[str, np.ndarray]:
    """Seeded train/val/test row indices (60/20/20), stratified for classification.

    Examples
    --------
    >>> parts = split_rows(np.arange(20) % 2, "classification", seed=0)
    >>> [len(parts[s]) for s in SPLITS]
    [12, 4, 4]
    """
    from sklearn.model_selection import train_test_split

    n = len(y)
    if kind == "classification":
        counts = np.bincount(y)
        needed = max(MIN_ROWS, 5 * len(counts))
        if counts.min() < MIN_PER_CLASS:
            raise TaskError(
                f"class index {int(counts.argmin())} has only {int(counts.min())} "
                f"row(s); every class needs at least {MIN_PER_CLASS} for "
                "stratified train/validation/test splits"
            )
    else:
        needed = MIN_ROWS
    if n < needed:
        raise TaskError(f"too few rows: {n}; at least {needed} are needed for 60/20/20 train/validation/test splits")
    strat = y if kind == "classification" else None
    _, val_frac, test_frac = SPLIT_FRACTIONS
    try:
        rest, test = train_test_split(np.arange(n), test_size=test_frac, random_state=seed, stratify=strat)
        train, val = train_test_split(
            rest,
            test_size=val_frac / (1 - test_frac),
            random_state=seed,
            stratify=None if strat is None else strat[rest],
        )
    except ValueError as exc:
        raise TaskError(f"cannot split {n} rows into train/validation/test: {exc}") from None
    return {"train": train, "val": val, "test": test}


def standardise(a: np.ndarray, mean: np.ndarray, std: np.ndarray, names: list[str], what: str) -> np.ndarray:
    """``(a - mean) / std``; :class:`TaskError` naming the column if that is not finite (e.g. values near 1e308).

    Examples
    --------
    >>> standardise(np.array([[1.0], [3.0]]), np.array([2.0]), np.array([1.0]), ["a"], "feature").ravel()
    array([-1.,  1.])
    """
    with np.errstate(over="ignore", invalid="ignore"):
        out = (a - mean) / std
    bad = ~np.isfinite(out).all(axis=0) | ~np.isfinite(mean) | ~np.isfinite(std)
    if bad.any():
        column = names[int(np.flatnonzero(bad)[0])]
        raise TaskError(
            f"{what} {column!r} cannot be standardised: its values are too large (the mean or "
            "spread overflows); rescale that column first"
        )
    return out


def train_stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant).

    Examples
    --------
    >>> train_stats(np.array([[1.0, 5.0], [3.0, 5.0]]))
    (array([2., 5.]), array([1., 1.]))
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = a.mean(axis=0)
        std = a.std(axis=0)
    std[~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
    return mean, std


def corrupt_labels(
    y: np.ndarray, *, kind: str, n_classes: int, fraction: float, seed: int, noise="symmetric", stream: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt exactly ``round(fraction * len(y))`` rows (module rules); return the labels and the mask.

    ``noise`` is ``"symmetric"``, ``"pair"`` or a checked ``C x C`` transition
    matrix (then every row is redrawn and ``fraction`` is ignored); ``stream``
    tells the splits' random streams apart (1: training, 2: validation). The
    mask is True exactly where a label changed.

    Examples
    --------
    >>> y, mask = corrupt_labels(np.arange(10) % 2, kind="classification", n_classes=2, fraction=0.3, seed=0)
    >>> int(mask.sum()), bool(((y != np.arange(10) % 2) == mask).all())
    (3, True)
    """
    rng = np.random.default_rng([seed, stream])
    y = y.copy()
    if not isinstance(noise, str):  # a transition matrix: every label redrawn from its class's row
        cumulative = np.cumsum(noise, axis=1)[y]
        drawn = (rng.random(len(y))[:, None] >= cumulative).sum(axis=1)
        drawn = np.minimum(drawn, n_classes - 1)
        mask = drawn != y
        return drawn.astype(y.dtype), mask
    n = len(y)
    chosen = rng.choice(n, size=int(round(fraction * n)), replace=False)
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    if kind == "classification":
        step = 1 if noise == "pair" else rng.integers(1, n_classes, size=len(chosen))
        y[chosen] = (y[chosen] + step) % n_classes
    else:
        low, high = OUTLIER_RANGE
        size = (len(chosen), y.shape[1])
        sign = rng.choice([-1.0, 1.0], size=size)
        y[chosen] = sign * rng.uniform(low, high, size=size)
    return y, mask


def dataset_split(sizes: list[int], has_val: bool, has_test: bool, y: np.ndarray, kind, seed: int) -> tuple:
    """Split indices of concatenated ``train (+ val) (+ test)`` datasets; missing parts come from train.

    Examples
    --------
    >>> train, val, test = dataset_split([8, 2], False, True, np.arange(10) % 2, "classification", 0)
    >>> len(train), len(val), test.tolist()
    (6, 2, [8, 9])
    """
    from sklearn.model_selection import train_test_split

    n_train = sizes[0]
    offset = np.cumsum([0, *sizes])
    val = np.arange(offset[1], offset[2]) if has_val else None
    test = np.arange(offset[-2], offset[-1]) if has_test else None
    kind = kind or infer_kind(y)
    codes = np.unique(y.reshape(len(y), -1)[:, 0], return_inverse=True)[1]
    rows = np.arange(n_train)
    fraction = 0.2 if test is None else 0.25 if val is None else 0.0
    if fraction:
        strat = codes[rows] if kind == "classification" else None
        try:
            rows, held = train_test_split(rows, test_size=fraction, random_state=seed, stratify=strat)
        except ValueError as exc:
            raise TaskError(f"cannot split {n_train} training rows: {exc}") from None
        test, val = (held, val) if test is None else (test, held)
    return rows, val, test


def data_fingerprint(X: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray]) -> bytes:
    """SHA-256 digest of the raw data and the split indices (the noise pattern is added by the task).

    Examples
    --------
    >>> len(data_fingerprint(np.zeros((2, 1)), np.zeros(2), {"train": [0], "val": [1], "test": []}))
    32
    """
    h = hashlib.sha256()
    for a in (X, y, *(splits[s] for s in SPLITS)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.digest()
