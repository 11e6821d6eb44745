"""Tasks: the data and the base model a loss function is learned for.

A :class:`Task` holds fixed train / validation / test splits (60 / 20 / 20,
stratified for classification) drawn from its seed, features standardised with
training statistics, optional label noise (on the training split by default, on
the validation split too if asked; never on the test split), optional class
imbalance, and the name of (or factory for) the base model.

The rules of splits, standardisation and label noise are in :mod:`evomal_sr.data.splits`,
the noise models and imbalance in :mod:`evomal_sr.data.noise`;
kind inference in :func:`evomal_sr.data.arrays.infer_kind`.

Examples
--------
>>> task = Task.builtin("iris", seed=0, label_noise=0.2)
>>> task.kind, task.n_outputs, len(task.y_train), int(task.noisy_mask.sum())
('classification', 3, 90, 18)
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evomal_sr.core.devices import resolve_device
from evomal_sr.data.arrays import validate_arrays
from evomal_sr.data.datasets import get_dataset
from evomal_sr.data.description import describe_task, task_repr
from evomal_sr.data.models import build_model, check_model
from evomal_sr.data.noise import NoiseOptions, imbalanced_rows
from evomal_sr.data.sources import check_split
from evomal_sr.data.splits import check_label_noise, check_task_seed, data_fingerprint, split_rows
from evomal_sr.data.tensors import TENSOR_ATTRIBUTES, split_tensors

BASELINES = {"classification": "-(y * log(fx))", "regression": "square(fx - y)"}


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
        the label noise; ``y_train_clean`` is the same split without it (and
        ``y_val`` / ``y_val_clean`` likewise; they are equal unless ``noisy_splits``
        holds ``"val"``). ``y_test`` is never corrupted.
    kind, name, seed, label_noise, model
        As given; ``model`` is a name of :data:`~evomal_sr.data.models.MODELS` or a factory.
    noise_options : NoiseOptions
        The validated ``noise``, ``noisy_splits``, ``target_noise``, ``noise_df``,
        ``noise_scale`` and ``imbalance`` (see :mod:`evomal_sr.data.noise`).
    n_features, n_outputs : int
        Input width; classes (always >= 2) or regression outputs.
    input_shape : tuple of int
        Shape of one example before flattening (used by the CNN).
    noisy_mask : torch.Tensor
        bool ``[n_train]``, True exactly where the training label was corrupted.
    noisy_mask_val : torch.Tensor
        bool ``[n_val]``, True exactly where the validation label was corrupted.
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
        split: tuple | None = None,
        source: dict | None = None,
        noise="symmetric",
        noisy_splits: tuple[str, ...] = ("train",),
        target_noise: str | None = None,
        noise_df: float = 3.0,
        noise_scale: float = 1.0,
        imbalance: float | None = None,
    ):
        self.name = str(name)
        self.source = dict(source) if source else None
        self.seed = check_task_seed(seed)
        self.label_noise = check_label_noise(label_noise)
        self.model = check_model(model)
        data = validate_arrays(X, y, kind=kind, input_shape=input_shape, feature_names=feature_names)
        X, y, self.kind, self.classes = data.X, data.y, data.kind, data.classes
        self.input_shape, self.feature_names = data.input_shape, data.feature_names
        self.n_features = X.shape[1]
        self.n_outputs = len(self.classes) if self.classes is not None else y.shape[1]
        self.noise_options = NoiseOptions.check(
            kind=self.kind,
            n_classes=self.n_outputs,
            noise=noise,
            noisy_splits=noisy_splits,
            target_noise=target_noise,
            noise_df=noise_df,
            noise_scale=noise_scale,
            imbalance=imbalance,
            label_noise=self.label_noise,
        )
        self.split_indices = split_rows(y, self.kind, self.seed) if split is None else check_split(split, len(y))
        ratio = self.noise_options.imbalance
        if ratio is not None:
            train = self.split_indices["train"]
            self.split_indices["train"] = imbalanced_rows(train, y[train], self.n_outputs, ratio, self.seed)
        self._fingerprint = data_fingerprint(X, y, self.split_indices)
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
        **options,
    ) -> Task:
        """A task on a built-in dataset (see :data:`~evomal_sr.data.datasets.DATASETS`).

        ``model=None`` uses the dataset's default model (``mlp``). ``options`` are
        :class:`Task`'s noise and imbalance keywords: ``noise``, ``noisy_splits``,
        ``target_noise``, ``noise_df``, ``noise_scale``, ``imbalance``.

        Examples
        --------
        >>> Task.builtin("digits", seed=0, model="cnn").input_shape
        (8, 8)
        >>> task = Task.builtin("iris", label_noise=0.2, noise="pair", noisy_splits=("train", "val"))
        >>> int(task.noisy_mask.sum()), int(task.noisy_mask_val.sum())
        (18, 6)
        """
        spec = get_dataset(name)
        X, y = spec.load(seed=check_task_seed(seed))
        return cls(
            X,
            y,
            kind=spec.kind,
            name=spec.name,
            seed=seed,
            label_noise=label_noise,
            model=spec.default_model if model is None else model,
            input_shape=spec.input_shape,
            **options,
        )

    @classmethod
    def from_arrays(cls, X, y, **options) -> Task:
        """A task from in-memory arrays (NumPy, torch or nested lists).

        ``X`` is ``[N, n_features]``, or ``[N, *input_shape]`` (e.g. images), which
        is flattened and sets ``input_shape``. ``y`` is ``[N]`` (labels or values)
        or ``[N, k]`` (multi-output regression). ``kind=None`` infers the kind.
        ``options`` are :class:`Task`'s keywords (``kind``, ``name``, ``seed``,
        ``label_noise``, ``model``, ``input_shape``, ``feature_names``, the noise
        and imbalance keywords of :mod:`evomal_sr.data.noise`) and
        ``split=(train_idx, val_idx, test_idx)`` for one's own split (row indices,
        non-empty, non-overlapping; standardisation uses the given train rows).

        ``model`` is a registry name or a factory: a callable returning a new
        ``nn.Module``, called with those of ``n_features``, ``n_outputs`` and
        ``input_shape`` it accepts, mapping ``[batch, n_features]`` to
        ``[batch, n_outputs]`` (BatchNorm, Dropout and other buffers are fine).

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(50, 2))
        >>> Task.from_arrays(X, X.sum(1) + 0.5, seed=0).kind
        'regression'
        """
        return cls(X, y, **options)

    @classmethod
    def from_npz(cls, path: str | Path, **options) -> Task:
        """A task from an ``.npz`` file: arrays ``X``, ``y``, optionally ``X_test`` / ``y_test``.

        ``input_shape`` is ``X.shape[1:]`` (e.g. ``(C, H, W)`` images). With a test
        set, 25 % of the ``X`` rows (seeded, stratified) are held out for
        validation; without one the usual 60/20/20 split applies. ``options`` are
        :class:`Task`'s keywords; the name defaults to the file's stem.

        Examples
        --------
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "imgs.npz")
        >>> rng = np.random.default_rng(0)
        >>> np.savez(path, X=rng.normal(size=(40, 1, 4, 4)), y=np.arange(40) % 2)
        >>> task = Task.from_npz(path, model="lenet5")
        >>> task.name, task.input_shape, task.describe()["source"]["type"]
        ('imgs', (1, 4, 4), 'npz')
        """
        from evomal_sr.data.sources import npz_arrays

        X, y = npz_arrays(path, options)
        return cls(X, y, **options)

    @classmethod
    def from_dataset(cls, train, val=None, test=None, **options) -> Task:
        """A task from map-style torch ``Dataset`` objects whose items are ``(x, y)``.

        The datasets are materialised in memory as arrays (no streamed path; too
        large a dataset is refused with a :class:`TaskError`). Given ``val`` and
        ``test`` are used as those splits; a missing one is drawn from ``train``
        (seeded: 20 % for test, then 25 % of the rest for validation).
        ``input_shape`` is one ``x``'s shape. ``options`` are :class:`Task`'s keywords.

        Examples
        --------
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> gen = torch.Generator().manual_seed(0)
        >>> train = TensorDataset(torch.randn(60, 3, generator=gen), torch.arange(60) % 2)
        >>> test = TensorDataset(torch.randn(20, 3, generator=gen), torch.arange(20) % 2)
        >>> task = Task.from_dataset(train, test=test)
        >>> task.n_train, len(task.y_val), len(task.y_test)
        (45, 15, 20)
        """
        from evomal_sr.data.sources import dataset_arrays

        X, y = dataset_arrays(train, val, test, options)
        return cls(X, y, **options)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        target: str | list[str],
        kind: str | None = None,
        seed: int = 0,
        label_noise: float = 0.0,
        model: str | Callable[..., nn.Module] = "mlp",
        features: list[str] | None = None,
        drop: list[str] | None = None,
        **options,
    ) -> Task:
        """A task from a CSV file with a header row; ``target`` names the label column(s).

        The delimiter is sniffed (``,``, ``;``, tab, ``|``). The features are
        ``features`` if given, else every column but the target(s) and ``drop``
        (e.g. an id column). Several targets mean multi-output regression.
        String labels are classes, encoded in sorted order. The task's name is
        the file's stem; :meth:`describe` records the file (``source``) so that
        ``evomal-sr evaluate`` can re-open it. ``options`` are :class:`Task`'s
        noise and imbalance keywords (``noise``, ``noisy_splits``, ...).

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
        from evomal_sr.data.sources import csv_arrays

        X, y, names, source = csv_arrays(path, target=target, kind=kind, features=features, drop=drop)
        options.update(kind=kind, seed=seed, label_noise=label_noise, model=model, feature_names=names)
        return cls(X, y, name=Path(path).stem, source=source, **options)

    # --------------------------------------------------------------- building
    def _build_tensors(self, X: np.ndarray, y: np.ndarray) -> None:
        vars(self).update(
            split_tensors(
                X,
                y,
                self.split_indices,
                kind=self.kind,
                n_outputs=self.n_outputs,
                feature_names=self.feature_names,
                noise_options=self.noise_options,
                label_noise=self.label_noise,
                seed=self.seed,
            )
        )

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
            self.model, n_features=self.n_features, n_outputs=self.n_outputs, input_shape=self.input_shape, seed=seed
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
        for attr in TENSOR_ATTRIBUTES:
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
        Noise and imbalance options other than the defaults are recorded too
        (:meth:`NoiseOptions.describe`), so the task can be rebuilt.

        Examples
        --------
        >>> d = Task.builtin("iris").describe()
        >>> d["name"], d["model"], d["n_train"], d["n_val"], d["n_test"]
        ('iris', 'mlp', 90, 30, 30)
        """
        return describe_task(self)

    def __repr__(self) -> str:
        return task_repr(self)
