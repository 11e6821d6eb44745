"""Tasks: the data and the base model a loss function is learned for.

A :class:`Task` holds fixed train / validation / test splits (60 / 20 / 20,
stratified for classification) drawn from its seed, features standardised with
training statistics, optional label noise on the training split only, and the
name of (or factory for) the base model.

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
* **Label noise.** Exactly ``round(label_noise * n_train)`` (Python's ``round``) training rows,
  chosen with ``numpy.random.default_rng([seed, 1])``, are corrupted.
  Classification: each chosen label moves to one of the *other* classes,
  uniformly. Regression: each chosen (standardised) target becomes an outlier
  ``+-U(5, 10)`` (random sign), :data:`OUTLIER_RANGE`. Validation and test are
  never corrupted; :attr:`Task.noisy_mask` marks the corrupted training rows.
* **Kind inference** (``kind=None``), on the target column: string or boolean
  labels -> classification; any non-integer number -> regression; integer values
  with exactly 2 distinct values, or at most 20 distinct values making up at most
  5 % of the rows -> classification; more than 20 distinct values making up
  more than 5 % of the rows -> regression; anything else is ambiguous and raises
  :class:`TaskError` asking for ``kind=``.

Examples
--------
>>> task = Task.builtin("iris", seed=0, label_noise=0.2)
>>> task.kind, task.n_outputs, len(task.y_train), int(task.noisy_mask.sum())
('classification', 3, 90, 18)
"""

from __future__ import annotations

import copy
import hashlib
import numbers
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evomal_sr.core.devices import resolve_device
from evomal_sr.core.validation import check_seed
from evomal_sr.data.datasets import get_dataset, read_csv, validate_arrays
from evomal_sr.data.models import build_model, check_model, model_name
from evomal_sr.errors import TaskError

#: Fractions of the rows in the train, validation and test splits.
SPLIT_FRACTIONS = (0.6, 0.2, 0.2)
#: Fewest rows a task may have.
MIN_ROWS = 10
#: Fewest rows of each class (so every split can hold one, stratified).
MIN_PER_CLASS = 3
#: Regression label noise: outliers of magnitude ``U(low, high)`` standardised units.
OUTLIER_RANGE = (5.0, 10.0)

BASELINES = {"classification": "-(y * log(fx))", "regression": "square(fx - y)"}
_SPLITS = ("train", "val", "test")


class Task:
    """A dataset split for loss learning, plus the base model to train on it.

    Build one with :meth:`builtin`, :meth:`from_arrays` or :meth:`from_csv` (the
    constructor takes the same arguments as :meth:`from_arrays`). All tensors
    live on :attr:`device` (CPU unless :meth:`to` moved them).

    Attributes
    ----------
    X_train, X_val, X_test : torch.Tensor
        float32 ``[n, n_features]``, standardised with training statistics.
    y_train, y_val, y_test : torch.Tensor
        int64 ``[n]`` class indices ``0..C-1`` (classification) or float32
        ``[n, n_outputs]`` standardised targets (regression). ``y_train`` carries
        the label noise; ``y_train_clean`` is the same split without it.
    kind, name, seed, label_noise, model
        As given; ``model`` is a name of :data:`~evomal_sr.data.models.MODELS` or a factory.
    n_features, n_outputs : int
        Input width; classes (always >= 2) or regression outputs.
    input_shape : tuple of int
        Shape of one example before flattening (used by the CNN).
    noisy_mask : torch.Tensor
        bool ``[n_train]``, True where the training label was corrupted.
    split_indices : dict of str to numpy.ndarray
        Row indices into the original data of ``"train"``, ``"val"``, ``"test"``.
    classes : numpy.ndarray or None
        Original class label of each class index (classification).
    feature_names : list of str
    feature_mean, feature_std, target_mean, target_std : numpy.ndarray or None
        Training statistics used for standardisation (targets: regression only).

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(100, 3))
    >>> task = Task(X, X[:, 0] > 0, seed=1)
    >>> task.kind, task.n_outputs, task.make_model(seed=0)(task.X_val).shape
    ('classification', 2, torch.Size([20, 2]))
    """

    def __init__(
        self,
        X,
        y,
        *,
        kind: str | None = None,
        name: str = "arrays",
        seed: int = 0,
        label_noise: float = 0.0,
        model: str | Callable[..., nn.Module] = "mlp",
        input_shape: tuple | None = None,
        feature_names: list[str] | None = None,
    ):
        self.name = str(name)
        self.seed = _check_seed(seed)
        self.label_noise = _check_noise(label_noise)
        self.model = check_model(model)
        data = validate_arrays(X, y, kind=kind, input_shape=input_shape, feature_names=feature_names)
        X, y, self.kind, self.classes = data.X, data.y, data.kind, data.classes
        self.input_shape, self.feature_names = data.input_shape, data.feature_names
        self.n_features = X.shape[1]
        self.n_outputs = len(self.classes) if self.classes is not None else y.shape[1]
        self.split_indices = _split(y, self.kind, self.seed)
        self._fingerprint = _fingerprint(X, y, self.split_indices)
        self._build_tensors(X, y)

    # ------------------------------------------------------------ constructors
    @classmethod
    def builtin(
        cls,
        name: str,
        *,
        seed: int = 0,
        label_noise: float = 0.0,
        model: str | Callable[..., nn.Module] | None = None,
    ) -> Task:
        """A task on a built-in dataset (see :data:`~evomal_sr.data.datasets.DATASETS`).

        ``model=None`` uses the dataset's default model (``mlp``).

        Examples
        --------
        >>> Task.builtin("digits", seed=0, model="cnn").input_shape
        (8, 8)
        """
        spec = get_dataset(name)
        X, y = spec.load(seed=_check_seed(seed))
        return cls(
            X,
            y,
            kind=spec.kind,
            name=spec.name,
            seed=seed,
            label_noise=label_noise,
            model=spec.default_model if model is None else model,
            input_shape=spec.input_shape,
        )

    @classmethod
    def from_arrays(cls, X, y, **options) -> Task:
        """A task from in-memory arrays (NumPy, torch or nested lists).

        ``X`` is ``[N, n_features]``, or ``[N, *input_shape]`` (e.g. images), which
        is flattened and sets ``input_shape``. ``y`` is ``[N]`` (labels or values)
        or ``[N, k]`` (multi-output regression). ``kind=None`` infers the kind.
        ``options`` are :class:`Task`'s keywords (``kind``, ``name``, ``seed``,
        ``label_noise``, ``model``, ``input_shape``, ``feature_names``).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(50, 2))
        >>> Task.from_arrays(X, X.sum(1) + 0.5, seed=0).kind
        'regression'
        """
        return cls(X, y, **options)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        target: str,
        kind: str | None = None,
        seed: int = 0,
        label_noise: float = 0.0,
        model: str | Callable[..., nn.Module] = "mlp",
    ) -> Task:
        """A task from a CSV file with a header row; ``target`` names the label column.

        Every other column is a numeric feature. String labels are classes,
        encoded in sorted order. The task's name is the file's stem.

        Examples
        --------
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "toy.csv")
        >>> rows = "".join(f"{i},{i % 3},{'ab'[i % 2]}\\n" for i in range(60))
        >>> _ = open(path, "w").write("a,b,label\\n" + rows)
        >>> task = Task.from_csv(path, target="label")
        >>> task.name, task.kind, task.classes.tolist()
        ('toy', 'classification', ['a', 'b'])
        """
        X, y, names = read_csv(path, target=target)
        if kind == "regression" and y.dtype.kind != "f":
            raise TaskError(
                f"target column {target!r} is not numeric, so it cannot be a "
                "regression target; use kind='classification'"
            )
        return cls(
            X,
            y,
            kind=kind,
            name=Path(path).stem,
            seed=seed,
            label_noise=label_noise,
            model=model,
            feature_names=names,
        )

    # --------------------------------------------------------------- building
    def _build_tensors(self, X: np.ndarray, y: np.ndarray) -> None:
        idx = self.split_indices
        self.feature_mean, self.feature_std = _train_stats(X[idx["train"]])
        Xs = (X - self.feature_mean) / self.feature_std
        self.target_mean = self.target_std = None
        if self.kind == "regression":
            self.target_mean, self.target_std = _train_stats(y[idx["train"]])
            y = (y - self.target_mean) / self.target_std
        y_train_clean = y[idx["train"]]
        y_train, mask = _corrupt(
            y_train_clean, kind=self.kind, n_classes=self.n_outputs, fraction=self.label_noise, seed=self.seed
        )
        ydtype = torch.int64 if self.kind == "classification" else torch.float32

        def tensor(a, dtype):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)

        self.X_train, self.X_val, self.X_test = (tensor(Xs[idx[s]], torch.float32) for s in _SPLITS)
        self.y_train, self.y_train_clean = tensor(y_train, ydtype), tensor(y_train_clean, ydtype)
        self.y_val, self.y_test = tensor(y[idx["val"]], ydtype), tensor(y[idx["test"]], ydtype)
        self.noisy_mask = torch.as_tensor(mask, dtype=torch.bool)

    # ----------------------------------------------------------------- public
    @property
    def device(self) -> torch.device:
        """The device all the task's tensors are on."""
        return self.X_train.device

    @property
    def baseline_expression(self) -> str:
        """The standard loss as an expression: cross-entropy or squared error.

        Examples
        --------
        >>> Task.builtin("iris").baseline_expression
        '-(y * log(fx))'
        """
        return BASELINES[self.kind]

    @property
    def n_train(self) -> int:
        """Rows in the training split."""
        return len(self.split_indices["train"])

    def make_model(self, *, seed: int | None = None) -> nn.Module:
        """A fresh base model for this task on :attr:`device`; ``seed`` makes it reproducible.

        Examples
        --------
        >>> task = Task.builtin("wine", model="linear")
        >>> task.make_model(seed=0)(task.X_test).shape
        torch.Size([36, 3])
        """
        net = build_model(
            self.model,
            n_features=self.n_features,
            n_outputs=self.n_outputs,
            input_shape=self.input_shape,
            seed=seed,
        )
        return net.to(self.device)

    def to(self, device: str | torch.device) -> Task:
        """A copy of this task whose tensors are on ``device`` (``self`` if already there).

        Examples
        --------
        >>> task = Task.builtin("iris")
        >>> task.to("cpu").X_train.device
        device(type='cpu')
        """
        device = resolve_device(device)
        if device == self.device:
            return self
        moved = copy.copy(self)
        for attr in (
            "X_train",
            "y_train",
            "y_train_clean",
            "X_val",
            "y_val",
            "X_test",
            "y_test",
            "noisy_mask",
        ):
            setattr(moved, attr, getattr(self, attr).to(device))
        return moved

    def train_and_val(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Training (with its label noise) and validation rows together, for meta-testing.

        Examples
        --------
        >>> X, y = Task.builtin("iris").train_and_val()
        >>> len(X), len(y)
        (120, 120)
        """
        return torch.cat([self.X_train, self.X_val]), torch.cat([self.y_train, self.y_val])

    def describe(self) -> dict:
        """JSON-ready summary, used to tell whether a checkpoint belongs to this task.

        ``fingerprint`` hashes the raw data, the split indices and the noise
        pattern, so two tasks with the same description hold the same data.

        Examples
        --------
        >>> d = Task.builtin("iris").describe()
        >>> d["name"], d["model"], d["n_train"], d["n_val"], d["n_test"]
        ('iris', 'mlp', 90, 30, 30)
        """
        noisy = np.flatnonzero(self.noisy_mask.cpu().numpy())
        return {
            "name": self.name,
            "kind": self.kind,
            "seed": self.seed,
            "label_noise": self.label_noise,
            "model": model_name(self.model),
            "n_features": self.n_features,
            "n_outputs": self.n_outputs,
            "input_shape": list(self.input_shape),
            "n_train": self.n_train,
            "n_val": len(self.split_indices["val"]),
            "n_test": len(self.split_indices["test"]),
            "fingerprint": hashlib.sha256(self._fingerprint + noisy.tobytes()).hexdigest()[:16],
        }

    def __repr__(self) -> str:
        d = self.describe()
        return (
            f"Task(name={d['name']!r}, kind={d['kind']!r}, seed={d['seed']}, "
            f"label_noise={d['label_noise']}, model={d['model']!r}, "
            f"n_features={d['n_features']}, n_outputs={d['n_outputs']}, "
            f"splits={d['n_train']}/{d['n_val']}/{d['n_test']})"
        )


# ---------------------------------------------------------------- validation
def _check_seed(seed) -> int:
    return check_seed(seed, error=TaskError)


def _check_noise(label_noise) -> float:
    if isinstance(label_noise, bool) or not isinstance(label_noise, numbers.Real):
        raise TaskError(f"label_noise must be a number in [0, 1), got {label_noise!r}")
    value = float(label_noise)
    if not 0.0 <= value < 1.0:  # also rejects NaN
        raise TaskError(f"label_noise must be in [0, 1) (a fraction of training labels), got {label_noise!r}")
    return value


def _split(y: np.ndarray, kind: str, seed: int) -> dict[str, np.ndarray]:
    """Seeded train/val/test row indices, stratified for classification."""
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


def _train_stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant)."""
    mean = a.mean(axis=0)
    std = a.std(axis=0)
    std[~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
    return mean, std


def _corrupt(y: np.ndarray, *, kind: str, n_classes: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt exactly ``round(fraction * len(y))`` rows; return them and the mask."""
    rng = np.random.default_rng([seed, 1])
    n = len(y)
    chosen = rng.choice(n, size=int(round(fraction * n)), replace=False)
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    y = y.copy()
    if kind == "classification":
        y[chosen] = (y[chosen] + rng.integers(1, n_classes, size=len(chosen))) % n_classes
    else:
        low, high = OUTLIER_RANGE
        size = (len(chosen), y.shape[1])
        sign = rng.choice([-1.0, 1.0], size=size)
        y[chosen] = sign * rng.uniform(low, high, size=size)
    return y, mask


def _fingerprint(X: np.ndarray, y: np.ndarray, splits: dict[str, np.ndarray]) -> bytes:
    h = hashlib.sha256()
    for a in (X, y, *(splits[s] for s in _SPLITS)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.digest()
