"""A task's noise and imbalance options: which labels are corrupted, how, and class imbalance.

:class:`NoiseOptions` gathers the keywords :class:`~evomal_sr.data.tasks.Task`
takes beside ``label_noise`` (the fraction of rows corrupted). Their defaults
give the task of before they existed, bit for bit: symmetric label noise (or
bounded outliers for regression) on the training split only, nothing else.

* ``noisy_splits``: ``("train",)`` (default) or ``("train", "val")`` (a user with
  noisy labels has no clean validation split either); test labels are never
  corrupted. Each split is corrupted on its own seeded stream, exactly
  ``round(label_noise * n)`` of its rows.
* ``noise`` (classification): ``"symmetric"`` (default: a corrupted label moves
  to one of the other classes, uniformly), ``"pair"`` (class ``c`` moves to
  ``(c + 1) mod C``), or a ``C x C`` transition matrix ``T`` (non-negative rows
  summing to 1), the noise itself: every label of a noisy split is redrawn,
  class ``c`` becoming ``j`` with probability ``T[c, j]``; ``label_noise`` must
  then be 0.
* ``target_noise`` (regression): ``None`` (default) or ``"student_t"``: every row
  of a noisy split gets ``noise_scale * t(noise_df)`` added (Student-t noise,
  heavy-tailed; ``noise_scale`` in units of the target's training standard
  deviation, since targets are standardised), after the outliers of ``label_noise``.
* ``imbalance`` (classification): ``None`` (default) or a ratio ``r >= 1``: the
  training rows are subsampled (seeded) so that class ``c`` keeps
  ``round(m * r ** (-c / (C - 1)))`` rows, ``m`` the smallest class's training
  count: class 0 is the majority, class ``C - 1`` the minority, ``r : 1`` (an
  exponential, "long-tailed" profile). Validation and test rows keep the data's
  own class balance.

Examples
--------
>>> options = NoiseOptions.check(kind="classification", n_classes=3, noise="pair", noisy_splits=("train", "val"))
>>> options.describe()
{'noise': 'pair', 'noisy_splits': ['train', 'val']}
>>> NoiseOptions().describe()
{}
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from evomal_sr.data.splits import corrupt_labels
from evomal_sr.errors import TaskError

#: The classification noise models by name (a transition matrix is the third form).
NOISE_MODELS = ("symmetric", "pair")
#: The regression target noise models by name (``None``: none).
TARGET_NOISE_MODELS = ("student_t",)
#: Splits whose labels may be corrupted.
NOISY_SPLITS = ("train", "val")
#: Random stream of each split's label noise, of its target noise, and of the imbalance subsample.
NOISE_STREAMS = {"train": 1, "val": 2}
TARGET_NOISE_STREAMS = {"train": 3, "val": 4}
IMBALANCE_STREAM = 5
#: Tolerance on a transition matrix's row sums.
ROW_SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class NoiseOptions:
    """Validated noise and imbalance options of a task (module docstring for their meaning).

    Build one with :meth:`check`; the constructor does no validation.

    Examples
    --------
    >>> NoiseOptions.check(kind="regression", n_classes=1, target_noise="student_t", noise_df=2).describe()
    {'target_noise': 'student_t', 'noise_df': 2.0, 'noise_scale': 1.0}
    """

    noise: str | np.ndarray = "symmetric"
    noisy_splits: tuple[str, ...] = ("train",)
    target_noise: str | None = None
    noise_df: float = 3.0
    noise_scale: float = 1.0
    imbalance: float | None = None
    matrix: np.ndarray | None = field(default=None, compare=False, repr=False)

    @classmethod
    def check(
        cls,
        *,
        kind: str,
        n_classes: int,
        noise="symmetric",
        noisy_splits=("train",),
        target_noise=None,
        noise_df=3.0,
        noise_scale=1.0,
        imbalance=None,
        label_noise: float = 0.0,
    ) -> NoiseOptions:
        """Validated options for a task of ``kind`` with ``n_classes`` classes; :class:`TaskError` if invalid."""
        splits = _check_splits(noisy_splits)
        matrix = None
        if isinstance(noise, str):
            if noise not in NOISE_MODELS:
                raise TaskError(
                    f"noise must be one of {', '.join(NOISE_MODELS)} or a C x C transition matrix, got {noise!r}"
                )
            if kind != "classification" and noise != "symmetric":
                raise TaskError(
                    f"noise={noise!r} is for classification; a regression task's label_noise makes "
                    "outliers (use target_noise='student_t' for heavy-tailed noise)"
                )
        else:
            if kind != "classification":
                raise TaskError("a transition matrix (noise=...) is for classification tasks")
            matrix = check_transition_matrix(noise, n_classes)
            if label_noise:
                raise TaskError(
                    f"a transition matrix holds the noise rates itself (its off-diagonal entries); "
                    f"leave label_noise at 0, got {label_noise!r}"
                )
            noise = "matrix"
        if target_noise is not None:
            if target_noise not in TARGET_NOISE_MODELS:
                raise TaskError(
                    f"target_noise must be None or one of {', '.join(TARGET_NOISE_MODELS)}, got {target_noise!r}"
                )
            if kind != "regression":
                raise TaskError("target_noise is for regression tasks; use label_noise (and noise=) for classes")
        df = _positive(noise_df, "noise_df", low=1.0)
        scale = _positive(noise_scale, "noise_scale", low=0.0)
        if imbalance is not None:
            if kind != "classification":
                raise TaskError("imbalance is for classification tasks")
            imbalance = _positive(imbalance, "imbalance", low=1.0)
        return cls(noise, splits, target_noise, df, scale, imbalance, matrix)

    @property
    def model(self) -> str | np.ndarray:
        """What :func:`~evomal_sr.data.splits.corrupt_labels` takes: a name, or the matrix."""
        return self.matrix if self.matrix is not None else self.noise

    def describe(self) -> dict:
        """The options that differ from the defaults, JSON-ready (a matrix as nested lists)."""
        out: dict = {}
        if self.noise != "symmetric":
            out["noise"] = self.matrix.tolist() if self.matrix is not None else self.noise
        if self.noisy_splits != ("train",):
            out["noisy_splits"] = list(self.noisy_splits)
        if self.target_noise is not None:
            out.update(target_noise=self.target_noise, noise_df=self.noise_df, noise_scale=self.noise_scale)
        if self.imbalance is not None:
            out["imbalance"] = self.imbalance
        return out


def recorded_options(description: dict) -> dict:
    """The noise and imbalance keywords a task's :meth:`~evomal_sr.data.tasks.Task.describe` recorded.

    Only the keys present are returned (none for a task with the defaults), as
    :class:`~evomal_sr.data.tasks.Task` takes them; they are validated when the
    task is rebuilt.

    Examples
    --------
    >>> recorded_options({"name": "iris", "noise": "pair", "noisy_splits": ["train", "val"]})
    {'noise': 'pair', 'noisy_splits': ('train', 'val')}
    """
    keys = ("noise", "noisy_splits", "target_noise", "noise_df", "noise_scale", "imbalance")
    options = {key: description[key] for key in keys if key in description}
    if isinstance(options.get("noisy_splits"), list):
        options["noisy_splits"] = tuple(options["noisy_splits"])
    return options


def check_transition_matrix(matrix, n_classes: int) -> np.ndarray:
    """``matrix`` as a float64 ``C x C`` row-stochastic array, or :class:`TaskError` saying what is wrong.

    Examples
    --------
    >>> check_transition_matrix([[0.8, 0.2], [0.0, 1.0]], 2).shape
    (2, 2)
    >>> check_transition_matrix([[0.8, 0.3], [0.0, 1.0]], 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    evomal_sr.errors.TaskError: transition matrix row 0 sums to 1.1; every row must sum to 1 ...
    """
    try:
        T = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise TaskError(
            f"noise must be a name or a {n_classes} x {n_classes} matrix of numbers, got {str(matrix)[:60]!r}"
        ) from None
    if T.shape != (n_classes, n_classes):
        raise TaskError(
            f"transition matrix has shape {T.shape}; the task has {n_classes} classes, so it must be "
            f"{n_classes} x {n_classes}"
        )
    if not np.isfinite(T).all() or (T < 0).any():
        raise TaskError("transition matrix entries must be finite and non-negative (probabilities)")
    sums = T.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if len(bad):
        raise TaskError(
            f"transition matrix row {int(bad[0])} sums to {sums[bad[0]]:.6g}; every row must sum to 1 "
            "(T[c, j] = P(label j | class c))"
        )
    return T


def corrupt_split(
    clean: np.ndarray, split: str, options: NoiseOptions, *, kind: str, n_classes: int, label_noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The labels of ``split`` with its noise (a copy; ``clean`` itself if the split is not noisy) and the mask.

    The mask is True exactly where a label (any output of a target) changed.

    Examples
    --------
    >>> options = NoiseOptions.check(kind="classification", n_classes=2, noisy_splits=("train", "val"))
    >>> labels, mask = corrupt_split(np.arange(10) % 2, "val", options, kind="classification", n_classes=2,
    ...                              label_noise=0.2, seed=0)
    >>> int(mask.sum())
    2
    """
    if split not in options.noisy_splits:
        return clean, np.zeros(len(clean), dtype=bool)
    labels, mask = corrupt_labels(
        clean,
        kind=kind,
        n_classes=n_classes,
        fraction=label_noise,
        seed=seed,
        noise=options.model,
        stream=NOISE_STREAMS[split],
    )
    if options.target_noise is not None:
        labels = add_target_noise(labels, options, seed=seed, split=split)
        mask = mask | (labels != clean).any(axis=1)
    return labels, mask


def add_target_noise(y: np.ndarray, options: NoiseOptions, *, seed: int, split: str) -> np.ndarray:
    """``y`` plus ``noise_scale * t(noise_df)`` on every row (a copy), seeded per split.

    Examples
    --------
    >>> options = NoiseOptions.check(kind="regression", n_classes=1, target_noise="student_t")
    >>> add_target_noise(np.zeros((4, 1)), options, seed=0, split="train").shape
    (4, 1)
    """
    rng = np.random.default_rng([seed, TARGET_NOISE_STREAMS[split]])
    return y + options.noise_scale * rng.standard_t(options.noise_df, size=y.shape)


def imbalanced_rows(train: np.ndarray, labels: np.ndarray, n_classes: int, ratio: float, seed: int) -> np.ndarray:
    """The training rows kept for a majority : minority ratio of ``ratio`` (module docstring), in their order.

    ``labels`` are the class indices of ``train``'s rows.

    Examples
    --------
    >>> kept = imbalanced_rows(np.arange(40), np.arange(40) % 2, 2, 4.0, seed=0)
    >>> np.bincount((np.arange(40) % 2)[kept]).tolist()
    [20, 5]
    """
    counts = np.bincount(labels, minlength=n_classes)
    largest = int(counts.min())
    rng = np.random.default_rng([seed, IMBALANCE_STREAM])
    keep = np.zeros(len(train), dtype=bool)
    for c in range(n_classes):
        share = ratio ** (-c / (n_classes - 1)) if n_classes > 1 else 1.0
        rows = np.flatnonzero(labels == c)
        keep[rng.choice(rows, size=max(1, int(round(largest * share))), replace=False)] = True
    return train[keep]


def _check_splits(noisy_splits) -> tuple[str, ...]:
    if isinstance(noisy_splits, str):
        noisy_splits = (noisy_splits,)
    try:
        splits = tuple(noisy_splits)
    except TypeError:
        raise TaskError(
            f"noisy_splits must be a tuple such as ('train',) or ('train', 'val'), got {noisy_splits!r}"
        ) from None
    if "test" in splits:
        raise TaskError("test labels are never corrupted; noisy_splits may hold 'train' and 'val'")
    if not splits or len(set(splits)) != len(splits) or not set(splits) <= set(NOISY_SPLITS):
        raise TaskError(f"noisy_splits must be ('train',), ('val',) or ('train', 'val'), got {noisy_splits!r}")
    return tuple(s for s in NOISY_SPLITS if s in splits)


def _positive(value, name: str, *, low: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value < low
        or (low == 0.0 and value <= 0)
    ):
        bound = "> 0" if low == 0.0 else f">= {low:g}"
        raise TaskError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)
