"""Built-in datasets (all offline) and the CSV reader behind :meth:`Task.from_csv`.

:data:`DATASETS` is the one registry of built-in datasets. Each entry is a
:class:`DatasetSpec` whose ``loader(seed)`` returns raw ``(X, y)`` NumPy arrays;
splitting, standardisation and label noise are the job of
:class:`~evomal_sr.data.tasks.Task`. Nothing here downloads anything: the
scikit-learn datasets are bundled with scikit-learn, ``mnist1d`` is generated
locally with the ``mnist1d`` package, and the rest are synthetic.

User data from arrays or CSV files is checked and encoded here too
(:mod:`evomal_sr.data.arrays`, :mod:`evomal_sr.data.csv`).

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

import functools
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evomal_sr.errors import TaskError

#: Rows of the synthetic regression datasets.
SYNTHETIC_ROWS = 1000
#: Samples generated for ``mnist1d`` (the package's default ``num_samples``).
MNIST1D_SAMPLES = 5000
#: Standard deviation of the Gaussian noise added to ``sin(x)`` in ``sinusoid``.
SINUSOID_NOISE = 0.1
#: Standard deviation of the noise of ``make_friedman1``.
FRIEDMAN1_NOISE = 1.0

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
    from mnist1d.data import get_dataset_args, make_dataset  # a dependency; imported only when used

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
