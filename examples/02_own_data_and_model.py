"""Your own data (numpy arrays, your own split) and your own model factory.

What it shows
-------------
- ``es.Task.from_arrays(X, y, split=..., model=factory)``: features and labels as numpy
  arrays, the train/validation/test rows chosen by you;
- a model factory: a function receiving those of ``n_features``, ``n_outputs`` and
  ``input_shape`` it accepts and returning a new ``nn.Module`` (here with BatchNorm and
  Dropout, which evomal-sr handles per candidate);
- ``LossSearch.fit(task)`` on that task, the front saved as ``pareto.csv`` and the best
  loss saved as ``best_loss.json`` (reload with ``es.LearnedLoss.load``).

The data: two interleaved noisy spirals (three classes), 15% of the training labels flipped.

How long
--------
About 20 s on two idle CPU cores (preset ``quick``: 17 s of CPU time; 50 s on a busy
machine); ``--tiny`` a few seconds.

Run::

    python examples/02_own_data_and_model.py [--out DIR] [--preset standard] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from torch import nn

import evomal_sr as es


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: a new temporary folder)")
    parser.add_argument("--preset", default="quick", help="search budget: tiny, quick, standard or paper")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny",
        action="store_true",
        default=bool(os.environ.get("EVOMAL_EXAMPLES_TINY")),
        help="smoke-test budget (also with EVOMAL_EXAMPLES_TINY=1)",
    )
    args = parser.parse_args()
    if args.tiny:
        args.preset = "tiny"
    args.out = Path(args.out or tempfile.mkdtemp(prefix="evomal-example2-"))
    return args


def spirals(n_per_class: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three noisy spiral arms in 2-D, plus 6 irrelevant noise features."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.0, 1.0, size=(3, n_per_class))
    angle = 4.0 * t + np.arange(3)[:, None] * (2.0 * np.pi / 3.0)
    xy = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=-1).reshape(-1, 2)
    xy += rng.normal(scale=0.05, size=xy.shape)
    X = np.concatenate([xy, rng.normal(size=(len(xy), 6))], axis=1).astype(np.float32)
    y = np.repeat(np.arange(3), n_per_class)
    return X, y


def factory(n_features: int, n_outputs: int) -> nn.Module:
    """A new model per call: ``[batch, n_features] -> [batch, n_outputs]``."""
    return nn.Sequential(
        nn.Linear(n_features, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, n_outputs)
    )


def main() -> None:
    args = parse_args()
    X, y = spirals(300, seed=args.seed)
    rows = np.random.default_rng(args.seed).permutation(len(y))
    train, val, test = rows[:540], rows[540:720], rows[720:]  # your own split, as row indices

    # label noise on the training rows only: validation and test labels stay clean
    noisy = y.copy()
    flip = np.random.default_rng(args.seed + 1).random(len(train)) < 0.15
    noisy[train[flip]] = (y[train[flip]] + 1) % 3

    task = es.Task.from_arrays(X, noisy, split=(train, val, test), model=factory, seed=args.seed)
    print(task)
    search = es.LossSearch(preset=args.preset, seed=args.seed).fit(task)
    print(search.pareto_front_.table())
    print("model execution:", search.evaluator_.model_execution)  # batched (vmap) or one copy at a time

    args.out.mkdir(parents=True, exist_ok=True)
    search.pareto_front_.to_csv(args.out / "pareto.csv")
    search.best_loss_.save(args.out / "best_loss.json")
    again = es.LearnedLoss.load(args.out / "best_loss.json")
    assert str(again.expression) == str(search.best_loss_.expression)
    print(f"best loss: {search.pareto_front_.select(search.model_selection).equation()}")
    print(f"results in {args.out}")


if __name__ == "__main__":
    main()
